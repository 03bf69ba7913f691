"""One big file through mvaultfs on s3rver, over http or https (issue 16):
ingest until `mvaultfs sync` returns (and the daemon's CPU for it), a cold
read from the store (fresh data folder), a read from the block cache (page
cache dropped) and a hot read, next to curl's GET of the same object over
the same endpoint.  Run as root to drop the page cache and to let the
daemon raise the kernel's readahead.

    python3 tests/bench/bench_bigfile.py                 # 256 MiB over http
    MVFS_BENCH_TLS=1 python3 tests/bench/bench_bigfile.py    # over https (stunnel)
    MVFS_BENCH_MIB=64 MVFS_BENCH_OPTS=read_ahead_kb=128,s3_signed_payload ...

Prints one table (MB/s, CPU seconds of the daemon or of curl, and per GB)
and appends it to build/bench.txt.  `make bench` runs it over http and
over https.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "mount"))
sys.path.insert(0, str(REPO / "tests" / "s3"))

from pgtest import Daemon, PgServer, default_bin  # noqa: E402
from benchutil import drop_caches, sh, timed  # noqa: E402
from s3server import S3rver, KEY, SECRET  # noqa: E402
from tlsfront import TlsFront  # noqa: E402

MiB = 1 << 20
SIZE_MIB = int(os.environ.get("MVFS_BENCH_MIB", "256"))
TLS = os.environ.get("MVFS_BENCH_TLS") == "1"
OPTS = [o for o in os.environ.get("MVFS_BENCH_OPTS", "").split(",") if o]


def timed_cpu(cmd):
    """Seconds CMD took and the user + system seconds its processes used."""
    c = os.times()
    t = timed(cmd)
    d = os.times()
    return t, (d.children_user - c.children_user) + (d.children_system - c.children_system)


def cpu(pid):
    """User + system seconds of PID and its threads so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bdi_read_ahead_kb(mnt):
    st = os.stat(mnt)
    try:
        return int(Path("/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(st.st_dev), os.minor(st.st_dev)))
                   .read_text())
    except OSError:
        return None


def main():
    work = Path(tempfile.mkdtemp(prefix="mvfs-bigfile."))
    rows, notes = [], []
    pg = PgServer()
    s3 = S3rver()
    tls = None
    daemons = []
    try:
        pg.start()
        s3.start()
        endpoint = s3.endpoint
        opts = list(OPTS)
        env = dict(os.environ, **s3.env())
        env.pop("MVAULT_DB", None)
        if TLS:
            tls = TlsFront(s3.port, work / "tls").start()
            endpoint = tls.endpoint
            opts.append("s3_ca_file=%s" % tls.ca)
        dsn = pg.dsn(pg.create_db("bench_bigfile"))
        store = s3.url("big")
        n = [0]

        def mount(data):
            n[0] += 1
            mnt = work / ("mnt%d" % n[0])
            o = ",".join(["db=" + dsn, "store=" + store, "data_dir=%s" % data, "s3_endpoint=" + endpoint] + opts)
            d = Daemon([default_bin(), "-f", "-o", o, str(mnt)], mnt, work / ("mvaultfs%d.log" % n[0]), env=env)
            d.start()
            daemons.append(d)
            d.wait_mounted(60)
            return d

        def unmount(d):
            st = d.unmount(300)
            daemons.remove(d)
            if st != 0:
                raise RuntimeError("mvaultfs exited %s; see %s" % (st, d.log))

        src = work / "big.bin"
        sh("dd if=/dev/urandom of=%s bs=1M count=%d status=none" % (src, SIZE_MIB))
        size = SIZE_MIB * MiB

        curl_ca = "--cacert %s" % tls.ca if tls else ""
        sig = ("--aws-sigv4 aws:amz:us-east-1:s3 -u %s:%s -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'"
               % (KEY, SECRET))
        t, c = timed_cpu("curl -sS -f %s %s -T %s '%s/%s/curl-put.bin'" % (curl_ca, sig, src, endpoint, s3.bucket))
        rows.append(("curl PUT, one request", t, c))

        w = mount(work / "data-w")
        c0 = cpu(w.pid)
        t = timed("cp %s %s/library/big.bin && %s sync %s" % (src, w.mnt, default_bin(), w.mnt))
        rows.append(("ingest: cp + mvaultfs sync", t, cpu(w.pid) - c0))
        unmount(w)

        sha = sh("sha256sum %s" % src).split()[0]
        key = [k for k in s3.keys("big/") if k.endswith(sha)][0]
        drop_caches()
        t, c = timed_cpu("curl -sS -f %s -o /dev/null '%s/%s/%s'" % (curl_ca, endpoint, s3.bucket, key))
        rows.append(("curl GET (s3rver%s)" % (" via stunnel" if TLS else ""), t, c))

        r = mount(work / "data-r")
        notes.append("kernel read_ahead_kb of the mount: %s" % bdi_read_ahead_kb(r.mnt))
        dropped = drop_caches()
        c0 = cpu(r.pid)
        t = timed("dd if=%s/library/big.bin of=/dev/null bs=1M status=none" % r.mnt)
        rows.append(("read cold (from the store)", t, cpu(r.pid) - c0))
        unmount(r)

        r = mount(work / "data-r")
        drop_caches()
        c0 = cpu(r.pid)
        t = timed("dd if=%s/library/big.bin of=/dev/null bs=1M status=none" % r.mnt)
        rows.append(("read warm (block cache, page cache dropped)", t, cpu(r.pid) - c0))
        t = min(timed("dd if=%s/library/big.bin of=/dev/null bs=1M status=none" % r.mnt) for _ in range(2))
        rows.append(("read hot (page cache)", t, None))
        sh("cmp %s %s/library/big.bin" % (src, r.mnt))
        unmount(r)

        drop_caches()
        t = timed("dd if=%s of=/dev/null bs=1M status=none" % src)
        rows.append(("local file, page cache dropped", t, None))
        if not dropped:
            notes.append("page cache NOT dropped (not root): warm rows are optimistic")
    finally:
        for d in daemons:
            d.unmount(60)
        if tls:
            tls.stop()
        s3.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    head = "bench_bigfile: %d MiB over %s%s" % (SIZE_MIB, "https (stunnel)" if TLS else "http",
                                              (", -o " + ",".join(OPTS)) if OPTS else "")
    lines = [head, "%-46s %8s %9s %9s %9s" % ("", "seconds", "MB/s", "CPU s", "CPU s/GB")]
    for what, secs, c in rows:
        lines.append("%-46s %8.2f %9.0f %9s %9s" % (what, secs, size / secs / 1e6, "%.2f" % c if c is not None else "-",
                                                    "%.2f" % (c / (size / 1e9)) if c is not None else "-"))
    lines += ["  " + x for x in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "build" / "bench.txt"
    if out.parent.exists():
        with open(out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
