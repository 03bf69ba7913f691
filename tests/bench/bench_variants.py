"""Variant benchmarks (issue 6), part of `make bench`.

  1. variants per second: 200 camera-sized JPEGs (4000x3000, made here)
     already in a mount's store, processed by `mvaultfs worker` (one job
     thread, then two), against `vipsthumbnail` making the same two
     variants of the same files from the command line, in the same run;
  2. time from `cp` of the 200 photos into a mount (its own worker, the
     default one thread) until .display/ and .thumb/ list all of them;
  3. peak RSS of the worker process and of its image helper;
  4. display as AVIF against WebP: seconds per image, and bytes.

Writes build/bench_variants.txt.  Every daemon, worker and server started
here is stopped, whatever happens.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "mount"))

from pgtest import Daemon, PgServer, default_bin  # noqa: E402

N = int(os.environ.get("BENCH_VARIANT_IMAGES", "200"))
N_AVIF = 10
W, H = 4000, 3000


def photos(dst, n, w=W, h=H):
    """N distinct W x H JPEGs (4000x3000 unless told) with a photo's detail
    (shapes, texture, noise), about 2-3 MB each like a phone camera's."""
    from PIL import Image, ImageDraw, ImageFilter
    import random

    rnd = random.Random(6)
    base = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(base)
    for _ in range(600):
        x, y, r = rnd.randrange(w), rnd.randrange(h), rnd.randrange(10, 500)
        d.ellipse([x - r, y - r, x + r, y + r],
                  fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    base = base.filter(ImageFilter.GaussianBlur(2))
    noise = Image.effect_noise((w, h), 40).convert("RGB")
    base = Image.blend(base, noise, 0.18)
    dst.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = base.copy()
        ImageDraw.Draw(im).rectangle([i * 17 % w, i * 29 % h, i * 17 % w + 300, i * 29 % h + 200],
                                     fill=(i % 256, 255 - i % 256, 90))
        im.save(dst / ("IMG_%04d.jpg" % i), "JPEG", quality=92)


def sh(args, **kw):
    return subprocess.run([str(a) for a in args], check=True, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, **kw)


class Bench:
    def __init__(self):
        self.work = REPO / "build" / "bench-variants"
        self.daemons, self.workers = [], []
        self.lines = []
        self.n = 0

    def say(self, line):
        print(line, flush=True)
        self.lines.append(line)

    def mount(self, pg, db, store, extra=()):
        self.n += 1
        mnt, data = self.work / ("mnt%d" % self.n), self.work / ("data%d" % self.n)
        data.mkdir(parents=True, exist_ok=True)
        opts = ["db=" + pg.dsn(db), "store=%s" % store, "data_dir=%s" % data, "jobs_interval=1"] + list(extra)
        d = Daemon([default_bin(), "-f", "-o", ",".join(opts), str(mnt)], mnt,
                   self.work / ("mvaultfs%d.log" % self.n))
        self.daemons.append(d)
        d.start()
        d.wait_mounted(60)
        return d

    def worker(self, pg, db, store, threads, extra=()):
        self.n += 1
        log = self.work / ("worker%d.log" % self.n)
        opts = ["db=" + pg.dsn(db), "store=%s" % store, "data_dir=%s" % (self.work / ("wdata%d" % self.n)),
                "workers=%d" % threads, "jobs_interval=1"] + list(extra)
        p = subprocess.Popen([default_bin(), "worker", "-o", ",".join(opts)], stdout=open(log, "wb"),
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.workers.append(p)
        return p, log

    def stop_worker(self, p, log):
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(60)
        m = re.search(r"peak RSS: this process (\d+) KiB, image helper (\d+) KiB", log.read_text())
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    def cleanup(self):
        for p in self.workers:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for d in self.daemons:
            d.cleanup(grace=10)

    def wait_jobs(self, pg, db, n, timeout=3600):
        """Seconds until N process_assets jobs are completed (or failed)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            done = int(pg.sql(db, "SELECT count(*) FROM background_jobs WHERE type = 'process_assets'"
                                  " AND status IN ('completed', 'failed')")[0])
            if done >= n:
                return time.monotonic() - t0
            time.sleep(0.2)
        raise SystemExit("bench: variants not done after %d s" % timeout)

    # ------------------------------------------------------------------

    def vipsthumbnail(self, src, files):
        out = self.work / "cli"
        out.mkdir()
        t0 = time.monotonic()
        # niced like mvaultfs' image helpers, so both get the same share of
        # a machine that is busy with something else
        sh(["nice", "-n", "10", "vipsthumbnail", "-s", "2048", "--export-profile", "srgb",
            "-o", "%s/%%s.display.webp[Q=80,strip]" % out] + files, timeout=3600)
        sh(["nice", "-n", "10", "vipsthumbnail", "-s", "512", "--export-profile", "srgb",
            "-o", "%s/%%s.thumb.webp[Q=72,strip]" % out] + files, timeout=3600)
        return time.monotonic() - t0

    def run(self, pg):
        src = self.work / "src"
        t0 = time.monotonic()
        photos(src, N)
        files = sorted(str(p) for p in src.iterdir())
        mb = sum(os.path.getsize(f) for f in files) / 1e6
        self.say("made %d JPEGs of %dx%d (%.0f MB) in %.0f s" % (N, W, H, mb, time.monotonic() - t0))

        # the same images in a store, every variant still to make
        store = self.work / "store"
        store.mkdir()
        db = pg.create_db("bench_variants")
        d = self.mount(pg, db, store, ["workers=0"])
        sh(["cp"] + files + [d.mnt / "library"], timeout=3600)
        sh([default_bin(), "sync", d.mnt], timeout=3600)

        t_cli = self.vipsthumbnail(src, files)
        results = {}
        for threads in (1, 2):
            if threads == 2:
                pg.sql(db, "DELETE FROM memory_assets WHERE variant_of_asset_id IS NOT NULL")
                pg.sql(db, "UPDATE memory_assets SET processing_status = 'pending', width = NULL,"
                           " height = NULL, megapixels = NULL")
                pg.sql(db, "UPDATE background_jobs SET status = 'pending', run_at = now()")
            p, log = self.worker(pg, db, store, threads)
            secs = self.wait_jobs(pg, db, N)
            rss = self.stop_worker(p, log)
            failed = pg.sql(db, "SELECT count(*) FROM background_jobs WHERE status = 'failed'")[0]
            results[threads] = (secs, rss, failed)
        d.unmount()

        cli_rate = 2 * N / t_cli
        self.say("")
        self.say("variants of %d camera JPEGs (display 2048 WebP Q80 + thumb 512 WebP Q72):" % N)
        self.say("  vipsthumbnail CLI, same outputs      %6.1f s  %5.2f variants/s" % (t_cli, cli_rate))
        for threads, (secs, rss, failed) in results.items():
            rate = 2 * N / secs
            self.say("  mvaultfs worker, %d job thread%s      %6.1f s  %5.2f variants/s  ratio %.2f"
                     "  (failed: %s)" % (threads, " " if threads == 1 else "s", secs, rate, rate / cli_rate,
                                         failed))
        self.say("  peak RSS, 1 thread: worker %.0f MiB, image helper %.0f MiB" %
                 (results[1][1][0] / 1024, results[1][1][1] / 1024))
        self.say("  peak RSS, 2 threads: worker %.0f MiB, image helper %.0f MiB (each)" %
                 (results[2][1][0] / 1024, results[2][1][1] / 1024))

        # a user copying photos into a mount with its default worker
        store2 = self.work / "store2"
        store2.mkdir()
        db2 = pg.create_db("bench_variants_cp")
        d = self.mount(pg, db2, store2)
        lib = d.mnt / "library"
        t0 = time.monotonic()
        sh(["cp"] + files + [lib], timeout=3600)
        t_cp = time.monotonic() - t0
        want = {os.path.basename(f) + ".webp" for f in files}
        while True:
            ls_d = set(os.listdir(lib / ".display")) if (lib / ".display").exists() else set()
            ls_t = set(os.listdir(lib / ".thumb")) if (lib / ".thumb").exists() else set()
            if want <= ls_d and want <= ls_t:
                break
            if time.monotonic() - t0 > 3600:
                raise SystemExit("bench: variants not listed after an hour")
            time.sleep(0.5)
        t_all = time.monotonic() - t0
        d.unmount()
        self.say("")
        self.say("cp of %d photos into a mount (default: 1 job thread): cp returned after %.1f s,"
                 " all variants listed after %.1f s" % (N, t_cp, t_all))

        # AVIF against WebP for the display variant
        sizes = {}
        for fmt in ("webp", "avif"):
            st = self.work / ("store-" + fmt)
            st.mkdir()
            dbf = pg.create_db("bench_variants_" + fmt)
            d = self.mount(pg, dbf, st, ["workers=0"])
            sh(["cp"] + files[:N_AVIF] + [d.mnt / "library"], timeout=600)
            sh([default_bin(), "sync", d.mnt], timeout=600)
            p, log = self.worker(pg, dbf, st, 1, ["display_format=" + fmt])
            secs = self.wait_jobs(pg, dbf, N_AVIF)
            self.stop_worker(p, log)
            size = pg.sql(dbf, "SELECT avg(bytes) FROM memory_assets WHERE variant_type = 'display'")[0]
            sizes[fmt] = (secs / N_AVIF, float(size))
            d.unmount()
        self.say("")
        self.say("display variant format, %d images, 1 job thread (display + thumb per image):" % N_AVIF)
        for fmt, (spi, size) in sizes.items():
            self.say("  %-4s  %5.2f s per image, display %6.0f KB on average" % (fmt, spi, size / 1000))
        self.say("  AVIF takes %.1fx the time of WebP" % (sizes["avif"][0] / sizes["webp"][0]))


def main():
    b = Bench()
    if b.work.exists():
        shutil.rmtree(b.work)
    b.work.mkdir(parents=True)
    pg = PgServer()
    try:
        pg.start()
        b.run(pg)
    finally:
        b.cleanup()
        pg.stop()
    out = REPO / "build" / "bench_variants.txt"
    out.write_text("\n".join(b.lines) + "\n")
    print("report: %s" % out)
    shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
