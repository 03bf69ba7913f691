"""S3 benchmarks: mvaultfs on s3rver against curl, s3fs-fuse and rclone
mount on the same s3rver.

Ingest of one big file (default 1 GiB) and of N files of 4 MiB (default
200) through each mount, then reads of them back after a remount (so no
page cache helps), against curl doing the same PUTs and GETs, 8 in
parallel.  MVFS_BENCH_S3_BIG_MIB and MVFS_BENCH_S3_FILES scale it down.
Prints a table and appends it to build/bench.txt.
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
from benchutil import sh, timed  # noqa: E402
from s3server import S3rver, KEY, SECRET  # noqa: E402

MiB = 1 << 20
BIG_MIB = int(os.environ.get("MVFS_BENCH_S3_BIG_MIB", "1024"))
NFILES = int(os.environ.get("MVFS_BENCH_S3_FILES", "200"))
PAR = 8


def wait_mount(mnt, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["mountpoint", "-q", str(mnt)]).returncode == 0:
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("mount of %s exited %s" % (mnt, proc.returncode))
        time.sleep(0.2)
    raise RuntimeError("%s did not mount" % mnt)


def unmount(mnt, proc=None):
    subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    subprocess.run(["fusermount", "-u", str(mnt)], capture_output=True)
    if proc is not None:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


class Bench:
    def __init__(self, work):
        self.work = work
        self.src = work / "src"
        self.rows = {}

    def make_sources(self):
        self.src.mkdir()
        sh("dd if=/dev/urandom of=%s/big.bin bs=1M count=%d status=none" % (self.src, BIG_MIB))
        (self.src / "small").mkdir()
        sh("for i in $(seq 1 %d); do head -c %d /dev/urandom > %s/small/f$i.bin; done"
           % (NFILES, 4 * MiB, self.src))

    def record(self, who, what, secs):
        self.rows.setdefault(what, {})[who] = secs

    # -- curl: the floor -------------------------------------------------------
    def curl(self, s3):
        base = "%s/%s/curl" % (s3.endpoint, s3.bucket)
        sig = "--aws-sigv4 aws:amz:us-east-1:s3 -u %s:%s -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'" % (KEY, SECRET)
        self.record("curl", "ingest 1 big file", timed("curl -sf %s -T %s/big.bin %s/big.bin" % (sig, self.src, base)))
        self.record("curl", "ingest %d x 4 MiB" % NFILES, timed(
            "ls %s/small | xargs -P %d -I{} curl -sf %s -T %s/small/{} %s/small/{}"
            % (self.src, PAR, sig, self.src, base)))
        self.record("curl", "read 1 big file", timed("curl -sf %s %s/big.bin -o /dev/null" % (sig, base)))
        self.record("curl", "read %d x 4 MiB" % NFILES, timed(
            "ls %s/small | xargs -P %d -I{} curl -sf %s %s/small/{} -o /dev/null" % (self.src, PAR, sig, base)))

    # -- a mount: cp in, remount, cat out -----------------------------------------------
    def through_mount(self, who, mount, umount, subdir="", settle=""):
        """SETTLE, a shell command run after each ingest and timed with it,
        waits until the bytes are in the store (mvaultfs writes back)."""
        mnt = self.work / ("mnt-" + who)
        mnt.mkdir()
        h = mount(mnt)
        dest = mnt / subdir if subdir else mnt
        then = (" && " + settle % mnt) if settle else ""
        try:
            self.record(who, "ingest 1 big file", timed("cp %s/big.bin %s/%s" % (self.src, dest, then)))
            self.record(who, "ingest %d x 4 MiB" % NFILES, timed(
                "ls %s/small | xargs -P %d -I{} cp %s/small/{} %s/s-{}%s" % (self.src, PAR, self.src, dest, then)))
        finally:
            umount(mnt, h)
        h = mount(mnt)
        try:
            self.record(who, "read 1 big file", timed("cat %s/big.bin > /dev/null" % dest))
            self.record(who, "read %d x 4 MiB" % NFILES, timed(
                "ls %s/small | xargs -P %d -I{} cat %s/s-{} > /dev/null" % (self.src, PAR, dest)))
            sh("cmp %s/big.bin %s/big.bin" % (self.src, dest))
        finally:
            umount(mnt, h)

    def mvaultfs(self, s3, pg):
        self.mvaultfs_on("mvaultfs", pg, s3.url("mvaultfs"), s3.env(), "s3_endpoint=" + s3.endpoint)

    def mvaultfs_on(self, who, pg, store, env_extra, opts=""):
        """mvaultfs on STORE (ENV_EXTRA: its credentials; OPTS: more -o),
        timed as WHO."""
        dsn = pg.dsn(pg.create_db("bench_" + who.replace("-", "_")))
        env = dict(os.environ, **env_extra)
        env.pop("MVAULT_DB", None)
        mounts = [0]

        def mount(mnt):
            # a fresh data folder each mount: reads come from the store, not the block cache
            mounts[0] += 1
            data = self.work / ("%s-data%d" % (who, mounts[0]))
            data.mkdir()
            d = Daemon([default_bin(), "-f", "-o", "db=%s,store=%s,data_dir=%s%s"
                        % (dsn, store, data, "," + opts if opts else ""), str(mnt)],
                       mnt, self.work / ("%s.log" % who), env=env)
            d.start()
            d.wait_mounted(60)
            return d

        def umount(mnt, d):
            d.unmount(120)

        self.through_mount(who, mount, umount, "library",
                           settle="%s sync %%s >/dev/null 2>&1" % default_bin())

    def s3fs(self, s3):
        pw = self.work / "s3fs.passwd"
        pw.write_text("%s:%s\n" % (KEY, SECRET))
        pw.chmod(0o600)

        def mount(mnt):
            sh("s3fs %s:/s3fs %s -o url=%s,use_path_request_style,passwd_file=%s,"
               "parallel_count=%d,multipart_size=16" % (s3.bucket, mnt, s3.endpoint, pw, PAR))
            wait_mount(mnt, None)
            return None

        self.through_mount("s3fs", mount, unmount)

    def rclone(self, s3):
        env = dict(os.environ, RCLONE_CONFIG_B_TYPE="s3", RCLONE_CONFIG_B_PROVIDER="Other",
                   RCLONE_CONFIG_B_ACCESS_KEY_ID=KEY, RCLONE_CONFIG_B_SECRET_ACCESS_KEY=SECRET,
                   RCLONE_CONFIG_B_ENDPOINT=s3.endpoint, RCLONE_CONFIG_B_FORCE_PATH_STYLE="true")
        env.pop("AWS_CA_BUNDLE", None)   # rclone 1.60 fails on it ("unsupported transport") even for http

        def mount(mnt):
            p = subprocess.Popen(["rclone", "mount", "b:%s/rclone" % s3.bucket, str(mnt),
                                  "--vfs-cache-mode", "off", "--transfers", str(PAR)],
                                 env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=open(self.work / "rclone.log", "ab"))
            wait_mount(mnt, p)
            return p

        self.through_mount("rclone", mount, unmount)

    def table(self, s3_note):
        who = ["mvaultfs", "curl", "s3fs", "rclone"]
        lines = ["", "S3 (s3rver on 127.0.0.1, %d MiB big file, %d x 4 MiB files, %d in parallel)"
                 % (BIG_MIB, NFILES, PAR),
                 "%-22s %10s %10s %10s %10s %9s %9s %9s" % ("measure (MB/s)", *who,
                                                             "vs curl", "vs s3fs", "vs rclone")]
        for what, r in self.rows.items():
            mb = BIG_MIB if "big" in what else NFILES * 4
            rate = {w: (mb * MiB / 1e6 / r[w]) if r.get(w) else None for w in who}
            cells = ["%10.1f" % rate[w] if rate[w] else "%10s" % "-" for w in who]
            ratios = []
            for other in ("curl", "s3fs", "rclone"):
                ratios.append("%9.2f" % (rate["mvaultfs"] / rate[other])
                              if rate.get("mvaultfs") and rate.get(other) else "%9s" % "-")
            lines.append("%-22s %s %s" % (what, " ".join(cells), " ".join(ratios)))
        lines.append(s3_note)
        return "\n".join(lines)


def run(prefix, contenders, table):
    """Makes the sources in a work folder under build/, starts PostgreSQL,
    then CONTENDERS(bench, pg) -> [(name, fn), ...] inside the servers it
    starts (a generator: it yields them); each fn runs, one failing does not
    hide the others; TABLE(bench, notes) is printed and appended to
    build/bench.txt."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=str(REPO / "build")))
    b = Bench(work)
    pg = PgServer()
    notes = []
    try:
        b.make_sources()
        pg.start()
        for name, fn in contenders(b, pg):
            try:
                fn()
            except Exception as e:  # one rival failing does not hide the others
                notes.append("%s: %s" % (name, e))
        text = table(b, "notes: " + ("; ".join(notes) if notes else "none"))
        print(text)
        with open(REPO / "build" / "bench.txt", "a") as f:
            f.write(text + "\n")
    finally:
        pg.stop()
        for m in work.glob("mnt-*"):
            unmount(m)
        shutil.rmtree(work, ignore_errors=True)


def main():
    def contenders(b, pg):
        with S3rver(folder=b.work / "s3rver") as s3:
            yield from (("curl", lambda: b.curl(s3)), ("mvaultfs", lambda: b.mvaultfs(s3, pg)),
                        ("s3fs", lambda: b.s3fs(s3)), ("rclone", lambda: b.rclone(s3)))
    run("mvfs-bench-s3.", contenders, lambda b, note: b.table(note))


if __name__ == "__main__":
    main()
