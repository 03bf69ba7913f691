"""gThumb opening a folder of photos (issue 15, "thumbnails desktop apps use
without reading originals"), part of `make bench`.

A photo app shows a folder by finding each file's thumbnail in
$XDG_CACHE_HOME/thumbnails (the freedesktop.org Thumbnail Managing
Standard), or by reading the file and making one.  Three runs of gThumb
under Xvfb, each with a fresh home, on the same N photos:

  local     a local folder, no thumbnails yet: gThumb makes them
  mount     mvaultfs on S3 (s3rver) with a cold block cache (a fresh data
            folder) and -o desktop_thumbnails: the thumbnails it wrote from
            the thumb variants are there
  mount-off the same mount without them: gThumb makes its own from the
            originals, downloaded

Times, from gThumb's start: until its file grid shows pictures (a
screenshot of the grid every ~0.1 s), and until it has opened (or written)
a thumbnail for every photo (inotify on the thumbnail folders).  A fourth
run opens the local folder again, its thumbnails made by the first.  GETs: object GETs
the store was sent meanwhile (a proxy in front of s3rver counts them).  A
screenshot of each run goes to build/bench/thumbs-*.png.

Writes build/bench_thumbs.txt.  Every process started here is stopped.
"""

import ctypes
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "mount"))
sys.path.insert(0, str(REPO / "tests" / "s3"))
sys.path.insert(0, str(REPO / "tests" / "bench"))

from pgtest import Daemon, PgServer, default_bin  # noqa: E402
from s3server import S3rver  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from bench_variants import photos  # noqa: E402

N = int(os.environ.get("BENCH_THUMB_IMAGES", "200"))
W, H = 3000, 2000
IN_OPEN, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x20, 0x08, 0x80, 0x100


class Watch:
    """Distinct .png names opened, written or moved into the thumbnail folders."""

    def __init__(self, dirs):
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
            self.libc.inotify_add_watch(self.fd, str(d).encode(),
                                        IN_OPEN | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)
        self.names = set()

    def drain(self):
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return len(self.names)
            off = 0
            while off < len(buf):
                _, mask, _, n = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + n].rstrip(b"\0").decode()
                off += 16 + n
                if name.endswith(".png") and not name.startswith("."):
                    self.names.add(name)

    def close(self):
        os.close(self.fd)


class Bench:
    def __init__(self):
        self.work = REPO / "build" / "bench-thumbs"
        self.shots = REPO / "build" / "bench"
        self.groups = []      # process groups started here
        self.daemons = []
        self.lines = []

    def say(self, line):
        print(line, flush=True)
        self.lines.append(line)

    def spawn(self, argv, log, env=None):
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.groups.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()

    def cleanup(self):
        for d in self.daemons:
            d.cleanup(grace=10)
        for p in reversed(self.groups):
            self.stop(p)

    def mount(self, pg, dsn, store, s3, proxy, name, extra=()):
        data = self.work / ("data-" + name)
        data.mkdir(parents=True)
        mnt = self.work / "mnt"    # one path: the thumbnails' URIs name it
        opts = ["db=" + dsn, "store=" + store, "data_dir=%s" % data, "s3_endpoint=" + proxy.endpoint,
                "jobs_interval=1"] + list(extra)
        env = dict(os.environ, **s3.env(), XDG_CACHE_HOME=str(self.work / ("home-" + name) / "cache"))
        env.pop("MVAULT_DB", None)
        d = Daemon([default_bin(), "-f", "-o", ",".join(opts), str(mnt)], mnt,
                   self.work / ("mvaultfs-%s.log" % name), env=env)
        self.daemons.append(d)
        d.start()
        d.wait_mounted(60)
        return d

    def painted(self, disp):
        """Whether gThumb's file grid shows pictures: a fifth of its pixels
        (sampled) are coloured (the photos are; the grid's background and
        the placeholder icons are grey; the first window of a fresh home is
        laid out the same every time, 1280x900)."""
        raw = subprocess.run(["import", "-display", disp, "-window", "root", "-crop", "738x548+292+92",
                              "-depth", "8", "rgb:-"], capture_output=True, timeout=30).stdout
        px = [raw[i:i + 3] for i in range(0, len(raw) - 2, 3 * 7)]
        # colour, not the grey of a theme's placeholder icons
        return px and sum(max(p) - min(p) > 40 for p in px) > len(px) // 5

    def gthumb(self, name, folder, proxy, want, home=None):
        """Seconds until gThumb's grid shows pictures, seconds until it has a
        thumbnail for WANT photos, how many it has, the GETs meanwhile and
        the screenshot."""
        home = home or self.work / ("home-" + name)
        cache = home / "cache" / "thumbnails"
        watch = Watch([cache / "normal", cache / "large"])
        disp = ":%d" % (90 + len(self.lines) % 9)
        xvfb = self.spawn(["Xvfb", disp, "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                          self.work / ("xvfb-%s.log" % name))
        time.sleep(1)
        env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / "cache"),
                   XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"), DISPLAY=disp)
        gets0 = proxy.injected.get("delay", 0) if proxy else 0
        t0 = time.monotonic()
        g = self.spawn(["dbus-run-session", "--", "gthumb", folder], self.work / ("gthumb-%s.log" % name), env=env)
        got, last, t_last, t_paint = 0, 0, t0, None
        while time.monotonic() - t0 < 600:
            got = watch.drain()
            if got != last:
                last, t_last = got, time.monotonic()
            if t_paint is None and self.painted(disp):
                t_paint = time.monotonic() - t0
            if (got >= want and t_paint is not None) or time.monotonic() - t_last > 20:
                break
            time.sleep(0.05)
        secs = t_last - t0
        gets = (proxy.injected.get("delay", 0) if proxy else 0) - gets0
        shot = self.shots / ("thumbs-%s.png" % name)
        subprocess.run(["import", "-display", disp, "-window", "root", str(shot)], check=False,
                       capture_output=True, timeout=60)
        self.stop(g)
        self.stop(xvfb)
        watch.close()
        return t_paint or float("nan"), secs, got, gets, shot

    def run(self, pg):
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.shots.mkdir(parents=True, exist_ok=True)
        src = self.work / "photos"
        t0 = time.monotonic()
        photos(src, N, W, H)
        mb = sum(p.stat().st_size for p in src.iterdir()) / 1e6
        self.say("gThumb on %d JPEGs of %dx%d (%.0f MB), under Xvfb; made in %.0f s" %
                 (N, W, H, mb, time.monotonic() - t0))

        s3 = S3rver(folder=self.work / "s3rver").start()
        proxy = FaultProxy(s3.port).start()
        proxy.add("delay", method="GET", path=r"/sha256/", seconds=0)     # counts object GETs
        try:
            rows = [("local folder, gThumb makes them",) + self.gthumb("local", src, None, N),
                    ("local folder again, its thumbnails made",) +
                    self.gthumb("local-again", src, None, N, self.work / "home-local")]
            db = pg.create_db("bench_thumbs")
            dsn = pg.dsn(db)
            store = s3.url("thumbs")
            # the photos into the store, their variants and desktop thumbnails made
            d = self.mount(pg, dsn, store, s3, proxy, "load", ["desktop_thumbnails"])
            lib = d.mnt / "library" / "photos"
            lib.mkdir()
            t0 = time.monotonic()
            subprocess.run(["cp"] + sorted(str(p) for p in src.iterdir()) + [str(lib)], check=True)
            subprocess.run([default_bin(), "sync", str(d.mnt)], check=True, capture_output=True)
            while int(pg.sql(db, "SELECT count(*) FROM background_jobs WHERE type = 'process_assets'"
                                 " AND status IN ('completed', 'failed')")[0]) < N:
                if time.monotonic() - t0 > 3600:
                    raise SystemExit("bench: variants not made after an hour")
                time.sleep(0.5)
            made = self.work / "home-load" / "cache" / "thumbnails"
            while len(list((made / "normal").glob("*.png"))) < N and time.monotonic() - t0 < 3600:
                time.sleep(0.5)
            self.say("  cp into the mount, variants and desktop thumbnails made: %.0f s" % (time.monotonic() - t0))
            d.unmount(120)
            # the same thumbnails in the next run's home (a person's own cache)
            shutil.copytree(made, self.work / "home-mount" / "cache" / "thumbnails")
            for name, extra in (("mount", ["desktop_thumbnails", "workers=0"]),
                                ("mount-off", ["desktop_thumbnails=off", "workers=0"])):
                d = self.mount(pg, dsn, store, s3, proxy, name, extra)
                label = ("mvaultfs on S3, cold cache, -o desktop_thumbnails" if name == "mount" else
                         "mvaultfs on S3, cold cache, without them")
                rows.append((label,) + self.gthumb(name, d.mnt / "library" / "photos", proxy, N))
                d.unmount(120)
        finally:
            proxy.stop()
            s3.stop()
        self.say("")
        self.say("| gThumb opens the folder | first screen shown, s | every thumbnail, s | thumbnails |"
                 " store GETs |")
        self.say("|---|---|---|---|---|")
        for label, paint, secs, got, gets, shot in rows:
            self.say("| %s | %.1f | %.1f | %d/%d | %s |" % (label, paint, secs, got, N,
                                                          gets if "mvaultfs" in label else "-"))
        for label, _, _, _, _, shot in rows:
            self.say("screenshot (%s): %s" % (label, shot))


def main():
    b = Bench()
    pg = PgServer().start()
    try:
        b.run(pg)
    finally:
        b.cleanup()
        pg.stop()
    (REPO / "build" / "bench_thumbs.txt").write_text("\n".join(b.lines) + "\n")


if __name__ == "__main__":
    main()
