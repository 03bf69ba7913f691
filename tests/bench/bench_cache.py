"""Block cache and write-back benchmarks (issue 5).

1. Sequential read of one big file (default 1 GiB) through the mount:
   cold (a fresh data_dir: every block from the store), warm (remount on the
   same data_dir, page cache dropped: from the block cache) and hot (page
   cache), against `cat` of the same bytes from a local file (page cache
   dropped first; hot against a hot local cat). Ratios are throughput
   mount / local (aim: hot >= 0.9, warm >= 0.8).
2. `rsync -a` of N files of 2 MiB (default 1,000) into the mount: until
   rsync returns, and until `mvaultfs sync` returns (everything in the
   store), against rsync to a local folder (and that plus sync(1)); the
   same on S3 (s3rver) against s3fs-fuse and rclone mount
   (--vfs-cache-mode writes) on the same s3rver when they are installed.
3. Peak RSS (VmHWM) of each daemon over each run.

MVFS_BENCH_CACHE_BIG_MIB, MVFS_BENCH_CACHE_FILES and
MVFS_BENCH_CACHE_S3_FILES (default: FILES, at most 300) scale it.
Prints a table and appends it to build/bench.txt. Needs root for dropping
the page cache (without it the cold/warm rows say so).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "mount"))
sys.path.insert(0, str(REPO / "tests" / "s3"))

from pgtest import Daemon, PgServer, default_bin  # noqa: E402
from benchutil import drop_caches, sh, timed  # noqa: E402

MiB = 1 << 20
BIG_MIB = int(os.environ.get("MVFS_BENCH_CACHE_BIG_MIB", "1024"))
NFILES = int(os.environ.get("MVFS_BENCH_CACHE_FILES", "1000"))
# s3rver (node) and the rivals are slow: fewer files on S3 keep the run near 6 min
S3_FILES = int(os.environ.get("MVFS_BENCH_CACHE_S3_FILES", str(min(NFILES, 300))))
FILE_MIB = 2
# s3fs and rclone cannot chown, and s3fs cannot set the mode or times of its
# root: into a new folder under it
RIVAL_RSYNC = "-a --no-o --no-g --omit-dir-times"


def hwm(pid):
    """VmHWM of pid in bytes (None when gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, TypeError):
        pass
    return None


def stats(mnt):
    out = {}
    for line in os.getxattr(str(mnt), "user.mvault.stats").decode().splitlines():
        k, v = line.split()
        try:
            out[k] = float(v)
        except ValueError:        # a word ("store local")
            out[k] = v
    return out


def wait_mount(mnt, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["mountpoint", "-q", str(mnt)]).returncode == 0:
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("mount of %s exited %s" % (mnt, proc.returncode))
        time.sleep(0.1)
    raise RuntimeError("%s did not mount" % mnt)


def fuse_unmount(mnt, proc=None, timeout=300):
    subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if subprocess.run(["mountpoint", "-q", str(mnt)]).returncode == 0:
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)


class Bench:
    def __init__(self, work):
        self.work = work
        self.src = work / "src"
        self.read_rows = []      # (what, seconds, note)
        self.rsync_rows = []     # (who, store, rsync s, in store s, peak RSS)
        self.notes = []
        self.daemons = []
        self.n = 0
        self.dropped = True

    # -- set-up ---------------------------------------------------------------
    def make_sources(self):
        self.src.mkdir()
        sh("dd if=/dev/urandom of=%s/big.bin bs=1M count=%d status=none" % (self.src, BIG_MIB))
        small = self.src / "small"
        small.mkdir()
        for i in range(max(NFILES, S3_FILES)):
            (small / ("p%04d.jpg" % i)).write_bytes(os.urandom(FILE_MIB * MiB))

    def subset(self, n):
        """A folder of the first n small files (hard links)."""
        d = self.work / ("small-%d" % n)
        if not d.exists():
            d.mkdir()
            for i in range(n):
                os.link(self.src / "small" / ("p%04d.jpg" % i), d / ("p%04d.jpg" % i))
        return d

    def mvaultfs(self, dsn, store, data, env=None, opts=()):
        self.n += 1
        mnt = self.work / ("mnt%d" % self.n)
        o = "db=%s,store=%s,data_dir=%s" % (dsn, store, data)
        if opts:
            o += "," + ",".join(opts)
        e = dict(os.environ, **(env or {}))
        e.pop("MVAULT_DB", None)
        d = Daemon([default_bin(), "-f", "-o", o, str(mnt)], mnt, self.work / ("mvaultfs%d.log" % self.n), env=e)
        d.start()
        self.daemons.append(d)
        d.wait_mounted(60)
        return d

    def unmount(self, d):
        st = d.unmount(300)
        if st != 0:
            raise RuntimeError("mvaultfs exited %s at unmount; see %s" % (st, d.log))

    def mvsync(self, d):
        sh("%s sync %s" % (default_bin(), d.mnt), timeout=1800)

    # -- 1. sequential read ---------------------------------------------------------
    def reads(self, pg):
        dsn = pg.dsn(pg.create_db("bench_cache_read"))
        store = self.work / "store"
        big = self.src / "big.bin"
        w = self.mvaultfs(dsn, store, self.work / "data-writer")
        t = timed("cp %s %s/library/big.bin" % (big, w.mnt))
        t_sync = t + timed("%s sync %s" % (default_bin(), w.mnt), timeout=1800)
        self.read_rows.append(("write: cp in (close returned)", t, None, hwm(w.pid)))
        self.read_rows.append(("write: cp in + mvaultfs sync", t_sync, None, hwm(w.pid)))
        self.unmount(w)

        self.dropped = drop_caches()
        local = timed("cat %s > /dev/null" % big)
        local_hot = min(timed("cat %s > /dev/null" % big) for _ in range(2))

        data = self.work / "data-reader"
        r = self.mvaultfs(dsn, store, data)
        drop_caches()
        cold = timed("cat %s/library/big.bin > /dev/null" % r.mnt)
        gets_cold = stats(r.mnt)["store_gets"]
        self.read_rows.append(("read cold (from the store)", cold, local, hwm(r.pid)))
        self.unmount(r)

        r = self.mvaultfs(dsn, store, data)
        drop_caches()
        warm = timed("cat %s/library/big.bin > /dev/null" % r.mnt)
        gets_warm = stats(r.mnt)["store_gets"]
        self.read_rows.append(("read warm (block cache)", warm, local, hwm(r.pid)))
        hot = min(timed("cat %s/library/big.bin > /dev/null" % r.mnt) for _ in range(2))
        self.read_rows.append(("read hot (page cache)", hot, local_hot, hwm(r.pid)))
        sh("cmp %s %s/library/big.bin" % (big, r.mnt))
        self.unmount(r)
        self.notes.append("store GETs: %d cold, %d warm" % (gets_cold, gets_warm))

    # -- 2. rsync of many files -----------------------------------------------------
    def rsync_local(self, n):
        src = self.subset(n)
        dst = self.work / "rsync-local"
        drop_caches()
        t = timed("rsync -a %s/ %s/" % (src, dst))
        t_sync = t + timed("sync")
        self.rsync_rows.append(("local folder", "disk", n, t, t_sync, None))
        shutil.rmtree(dst)

    def rsync_mvaultfs(self, pg, n, store, label, env=None, opts=()):
        src = self.subset(n)
        dsn = pg.dsn(pg.create_db("bench_cache_rsync_%s" % label))
        d = self.mvaultfs(dsn, store, self.work / ("data-rsync-%s" % label), env=env, opts=opts)
        try:
            drop_caches()
            t0 = time.monotonic()
            sh("rsync -a %s/ %s/library/" % (src, d.mnt), timeout=3600)
            t = time.monotonic() - t0
            self.mvsync(d)
            t_sync = time.monotonic() - t0
            self.rsync_rows.append(("mvaultfs", label, n, t, t_sync, hwm(d.pid)))
        finally:
            self.unmount(d)

    def rsync_s3fs(self, s3, n):
        from s3server import KEY, SECRET
        src = self.subset(n)
        pw = self.work / "s3fs.passwd"
        pw.write_text("%s:%s\n" % (KEY, SECRET))
        pw.chmod(0o600)
        mnt = self.work / "mnt-s3fs"
        mnt.mkdir()
        p = subprocess.Popen(["s3fs", "%s:/s3fs" % s3.bucket, str(mnt), "-f", "-o",
                              "url=%s,use_path_request_style,passwd_file=%s,parallel_count=4,multipart_size=16"
                              % (s3.endpoint, pw)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(self.work / "s3fs.log", "ab"))
        try:
            wait_mount(mnt, p)
            drop_caches()
            t0 = time.monotonic()
            sh("rsync %s %s %s/" % (RIVAL_RSYNC, src, mnt), timeout=3600)   # into mnt/small-N/
            t = time.monotonic() - t0
            self.wait_keys(s3, "s3fs/", n, t0)   # s3fs uploads at close: already there
            t_sync = time.monotonic() - t0
            self.rsync_rows.append(("s3fs-fuse", "s3rver", n, t, t_sync, hwm(p.pid)))
        finally:
            fuse_unmount(mnt, p)

    def rsync_rclone(self, s3, n):
        from s3server import KEY, SECRET
        src = self.subset(n)
        env = dict(os.environ, RCLONE_CONFIG_B_TYPE="s3", RCLONE_CONFIG_B_PROVIDER="Other",
                   RCLONE_CONFIG_B_ACCESS_KEY_ID=KEY, RCLONE_CONFIG_B_SECRET_ACCESS_KEY=SECRET,
                   RCLONE_CONFIG_B_ENDPOINT=s3.endpoint, RCLONE_CONFIG_B_FORCE_PATH_STYLE="true")
        env.pop("AWS_CA_BUNDLE", None)   # rclone 1.60 fails on it ("unsupported transport") even for http
        mnt = self.work / "mnt-rclone"
        mnt.mkdir()
        p = subprocess.Popen(["rclone", "mount", "b:%s/rclone" % s3.bucket, str(mnt),
                              "--vfs-cache-mode", "writes", "--cache-dir", str(self.work / "rclone-cache"),
                              "--transfers", "4"],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(self.work / "rclone.log", "ab"))
        try:
            wait_mount(mnt, p)
            drop_caches()
            t0 = time.monotonic()
            sh("rsync %s %s %s/" % (RIVAL_RSYNC, src, mnt), timeout=3600)   # into mnt/small-N/
            t = time.monotonic() - t0
            self.wait_keys(s3, "rclone/", n, t0)
            t_sync = time.monotonic() - t0
            self.rsync_rows.append(("rclone mount", "s3rver", n, t, t_sync, hwm(p.pid)))
        finally:
            fuse_unmount(mnt, p)

    def wait_keys(self, s3, prefix, n, t0, timeout=1800):
        """Until the bucket holds n objects under prefix (final names)."""
        while True:
            try:
                keys = [k for k in s3.keys(prefix) if k.endswith(".jpg") and not k.rsplit("/", 1)[-1].startswith(".")]
            except Exception:   # s3rver sometimes answers a listing with InternalError under load
                keys = []
            if len(keys) >= n:
                return
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("%s: only %d of %d objects after %d s" % (prefix, len(keys), n, timeout))
            time.sleep(0.5)

    # -- the report -----------------------------------------------------------------
    def table(self, secs):
        mb = lambda n_mib, s: n_mib * MiB / 1e6 / s if s else 0  # noqa: E731
        rss = lambda b: "%.1f" % (b / MiB) if b else "-"  # noqa: E731
        lines = ["", "block cache and write-back (%s, %s; %d MiB file, %d x %d MiB files; %.0f s)"
                 % (time.strftime("%Y-%m-%d %H:%M"), default_bin(), BIG_MIB, NFILES, FILE_MIB, secs),
                 "%-34s %9s %9s %10s %10s %9s" % ("sequential read/write", "s", "MB/s", "local MB/s",
                                                  "vs local", "peak RSS")]
        for what, s, local, peak in self.read_rows:
            r = mb(BIG_MIB, s)
            lr = mb(BIG_MIB, local) if local else None
            lines.append("%-34s %9.2f %9.0f %10s %10s %9s" % (
                what, s, r, "%.0f" % lr if lr else "-", "%.2f" % (r / lr) if lr else "-", rss(peak)))
        lines.append("%-22s %-8s %6s %10s %12s %12s %9s" % ("rsync -a N x 2 MiB", "store", "N", "rsync s",
                                                           "in store s", "MB/s(store)", "peak RSS"))
        for who, store, n, t, t_sync, peak in self.rsync_rows:
            lines.append("%-22s %-8s %6d %10.2f %12.2f %12.0f %9s" % (
                who, store, n, t, t_sync, mb(n * FILE_MIB, t_sync), rss(peak)))
        if not self.dropped:
            self.notes.append("page cache NOT dropped (not root): cold/warm rows are optimistic")
        lines.append("(s3fs, rclone: rsync %s; rclone's 'in store' = all objects listed in the bucket)"
                     % RIVAL_RSYNC)
        lines.append("notes: " + ("; ".join(self.notes) if self.notes else "none"))
        return "\n".join(lines)


def main():
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mvfs-bench-cache.", dir=str(REPO / "build")))
    b = Bench(work)
    pg = PgServer()
    s3 = None
    try:
        b.make_sources()
        pg.start()
        b.reads(pg)
        b.rsync_local(NFILES)
        b.rsync_mvaultfs(pg, NFILES, work / "store-rsync", "local")
        try:
            from s3server import S3rver, BIN
            if not BIN.exists():
                raise RuntimeError("s3rver is not installed")
            s3 = S3rver(folder=work / "s3rver").start()
            b.rsync_mvaultfs(pg, S3_FILES, s3.url("mvaultfs"), "s3rver", env=s3.env(),
                             opts=["s3_endpoint=" + s3.endpoint])
            for tool, fn in (("s3fs", b.rsync_s3fs), ("rclone", b.rsync_rclone)):
                if not shutil.which(tool):
                    b.notes.append("%s is not installed" % tool)
                    continue
                try:
                    fn(s3, S3_FILES)
                except Exception as e:  # one rival failing does not hide the others
                    b.notes.append("%s: %s" % (tool, e))
        except Exception as e:
            b.notes.append("S3: %s" % e)
        text = b.table(time.monotonic() - t_start)
        print(text)
        if os.environ.get("MVFS_BENCH_CACHE_NO_REPORT") != "1":
            with open(REPO / "build" / "bench.txt", "a") as f:
                f.write(text + "\n")
    finally:
        for d in b.daemons:
            d.cleanup(grace=30)
        for m in work.glob("mnt-*"):
            fuse_unmount(m)
        if s3:
            s3.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
