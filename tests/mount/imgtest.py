"""Images for the variant and job tests, made on the spot (PIL from
python3-pil, the vips CLI from libvips-tools), and a runner for
`mvaultfs worker` processes that never outlive their test."""

import io
import os
import signal
import subprocess
import time
from pathlib import Path

from PIL import Image, ImageDraw

from pgtest import default_bin
from mvtest import poll, q, sql

JOBS_FAST = ["jobs_interval=1"]


def picture(w, h, seed=0):
    """A w x h RGB picture with shapes (compresses like a photo, not like
    noise or a flat colour)."""
    im = Image.new("RGB", (w, h), (20 + seed % 200, 90, 160))
    d = ImageDraw.Draw(im)
    for i in range(40):
        x, y = (i * 7919 + seed * 31) % w, (i * 104729 + seed * 17) % h
        r = max(4, (w + h) // (8 + i % 9))
        d.ellipse([x - r, y - r, x + r, y + r],
                  fill=((i * 37 + seed) % 256, (i * 91) % 256, (i * 53 + seed * 7) % 256))
    return im


def jpeg(w, h, seed=0, **kw):
    buf = io.BytesIO()
    picture(w, h, seed).save(buf, "JPEG", quality=88, **kw)
    return buf.getvalue()


def png(w, h, seed=0, mode="RGB"):
    buf = io.BytesIO()
    picture(w, h, seed).convert(mode).save(buf, "PNG")
    return buf.getvalue()


def exif_rotated_jpeg(w, h):
    """A w x h JPEG whose EXIF says: rotate 90 degrees to show it (6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg(w, h, exif=exif.tobytes())


def cmyk_jpeg(w, h):
    buf = io.BytesIO()
    picture(w, h).convert("CMYK").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def broken_icc_jpeg(w, h):
    buf = io.BytesIO()
    picture(w, h).save(buf, "JPEG", quality=90, icc_profile=b"\x00\x00\x02\x0cnot really a profile" * 20)
    return buf.getvalue()


def animated(fmt, w, h, frames=4):
    buf = io.BytesIO()
    ims = [picture(w, h, seed=i) for i in range(frames)]
    ims[0].save(buf, fmt, save_all=True, append_images=ims[1:], duration=100, loop=0)
    return buf.getvalue()


def vips_make(tmp, name, *args):
    """Runs `vips ARGS` writing tmp/name and returns its bytes."""
    out = Path(tmp) / name
    subprocess.run(["vips"] + [str(a).replace("OUT", str(out)) for a in args], check=True,
                   capture_output=True, timeout=120)
    return out.read_bytes()


def png16(tmp, w, h):
    """A 16-bit RGB PNG."""
    src = Path(tmp) / "src16.png"
    src.write_bytes(png(w, h))
    return vips_make(tmp, "p16.png", "colourspace", src, "OUT", "rgb16")


def huge_png(tmp, w, h):
    """A w x h PNG of one colour: small file, many pixels."""
    return vips_make(tmp, "huge.png", "black", "OUT", w, h)


def heic(tmp, w, h):
    src = Path(tmp) / "src.jpg"
    src.write_bytes(jpeg(w, h))
    return vips_make(tmp, "x.heic", "copy", src, "OUT")


def size_of(data):
    """(width, height, format) of image bytes, as PIL reads them."""
    im = Image.open(io.BytesIO(data))
    return im.size[0], im.size[1], im.format


def is_webp(data):
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def is_avif(data):
    return data[4:12] == b"ftypavif"


def listing(d):
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


def wait_listed(d, names, timeout=60):
    """Polls folder d until it lists every one of names; returns the listing."""
    poll(lambda: set(names) <= set(listing(d)), timeout=timeout, interval=0.2)
    return listing(d)


def processing(m, name):
    """processing_status|processing_error of the original called name."""
    rows = sql(m, "SELECT a.processing_status || '|' || coalesce(a.processing_error, '')"
                  " FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id"
                  " WHERE i.display_name = %s" % q(name))
    return rows[0] if rows else None


def wait_processed(m, name, timeout=60):
    """Waits until the original called name is completed or failed for good."""
    def done():
        p = processing(m, name)
        return p if p and p.split("|")[0] in ("completed", "failed") else None
    return poll(done, timeout=timeout, interval=0.2)


def jobs(m, where="true"):
    return sql(m, "SELECT type, status, retry_count, coalesce(error, '') FROM background_jobs"
                  " WHERE %s ORDER BY created_at" % where)


class Worker:
    """`mvaultfs worker` for a test, in its own process group."""

    def __init__(self, m, tmp, extra_opts=(), env=None, name="w", s3=None):
        """s3: the s3_server fixture, for a mount whose store is in it."""
        self.log = Path(tmp) / ("%s.log" % name)
        opts = ["db=" + m.dsn, "store=%s" % m.store, "data_dir=%s" % (Path(tmp) / (name + "-data"))]
        e = dict(os.environ)
        e.pop("MVAULT_DB", None)
        if str(m.store).startswith("s3://"):
            opts.append("s3_endpoint=" + s3.endpoint)
            e.update(s3.env())
        opts += JOBS_FAST + list(extra_opts)
        e.update(env or {})
        self.proc = subprocess.Popen([default_bin(), "worker", "-o", ",".join(opts)],
                                     stdin=subprocess.DEVNULL, stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT, env=e, start_new_session=True)

    def text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(15)

    def stop(self):
        """SIGTERM; its exit status (0 expected)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        return self.kill(signal.SIGTERM)


def helper_alive_pids():
    """Pids of running image helpers (mvaultfs __media)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path("/proc", d, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(cmd) > 1 and cmd[1] == b"__media":
                out.append(int(d))
    return out


def wait_job(m, where, statuses=("completed", "failed"), timeout=60):
    def done():
        rows = sql(m, "SELECT status FROM background_jobs WHERE %s" % where)
        return rows if rows and all(r in statuses for r in rows) else None
    return poll(done, timeout=timeout, interval=0.2)


def sleep_until(fn, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.2)
    return False
