"""One big file through mvaultfs on s3rver, over http or https (issue 16):
ingest until `mvaultfs sync` returns (and the upload alone), a cold read
from the store (fresh data folder), a read from the block cache (page cache
dropped) and a hot read, each with the daemon's CPU seconds and peak RSS,
next to curl's single PUT and GET of the same object and boto3's parallel
multipart upload (s3transfer, the AWS CLI's engine) with mvaultfs's part
size and concurrency, over the same endpoint.  Run as root to drop the page
cache and to let the daemon raise the kernel's readahead.

    python3 tests/bench/bench_bigfile.py                 # 256 MiB over http
    MVFS_BENCH_TLS=1 python3 tests/bench/bench_bigfile.py    # over https (stunnel)
    MVFS_BENCH_MIB=4096 MVFS_BENCH_OPTS=read_ahead_kb=128,s3_signed_payload ...
    MVFS_BENCH_BINS="old=/tmp/old/mvaultfs new=build/mvaultfs:s3_concurrency=8" MVFS_BENCH_ROUNDS=2 ...
    MVFS_BENCH_PUT_DELAY=1 ...    # a store far away: every PUT waits 1 s (faultproxy)
    MVFS_BENCH_STORE=local ...    # the local backend (a folder on this disk) instead of s3rver
    MVFS_BENCH_READS_ONLY=1 MVFS_BENCH_BINS="ra128=build/mvaultfs:read_ahead_kb=128 ra4m=build/mvaultfs" ...
    MVFS_BENCH_PERF=/tmp/prof ...  # perf record -g of the daemon during each cold read, into that folder
    MVFS_BENCH_PERF_STAT=/tmp/prof ...  # perf stat of the daemon (instructions, cycles, context switches) instead

MVFS_BENCH_FIRST=1 (root) runs everything in a CPU cgroup of the highest
share, so other work on a shared machine does not decide the rows.

MVFS_BENCH_BINS names builds (and extra -o options) to measure in turns,
ROUNDS times each, on the same s3rver and baselines: on a shared machine
only same-run comparisons mean anything.  Each turn has its own database
and store prefix (the same bytes would otherwise be found already stored)
and removes its objects and data folder after it, so a 4 GiB run needs
about four times the size on disk.

MVFS_BENCH_PUT_DELAY puts tests/s3/faultproxy.py between s3rver and
mvaultfs and boto3 (over http only), holding every PUT that long before
passing it on: a store whose every request waits, where only more parts in
flight raise the rate (the proxy, in Python, bounds the reads; curl's rows
stay direct).

MVFS_BENCH_READS_ONLY ingests the file once (with the first build) and
measures only the reads in turns.  The baselines of the read rows (curl's
GET, the local file with the page cache dropped and hot) are measured in
every round, in turn with the builds; under the table each read row's median
is set against its baseline's median with issue 16's target (cold >= 0.9 of
curl's GET, or of the local file on the local store; block cache >= 0.8 and
hot >= 0.9 of the local file).  The hot row is also set against the
fuse-floor's: the same file read hot through libfuse's passthrough_ll
example (-o cache=always, as mvaultfs keeps a read-only file's pages), what
the kernel's FUSE page cache allows any daemon.

Prints one table (MB/s, CPU seconds and per GB, peak RSS) and appends it to
build/bench.txt.  `make bench` runs it over http and over https.
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
from benchutil import drop_caches, first_in_line, sh, timed  # noqa: E402
from s3server import S3rver, KEY, SECRET  # noqa: E402
from tlsfront import TlsFront  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

MiB = 1 << 20
SIZE_MIB = int(os.environ.get("MVFS_BENCH_MIB", "256"))
TLS = os.environ.get("MVFS_BENCH_TLS") == "1"
OPTS = [o for o in os.environ.get("MVFS_BENCH_OPTS", "").split(",") if o]
ROUNDS = int(os.environ.get("MVFS_BENCH_ROUNDS", "1"))
PUT_DELAY = float(os.environ.get("MVFS_BENCH_PUT_DELAY", "0"))
LOCAL = os.environ.get("MVFS_BENCH_STORE") == "local"
READS_ONLY = os.environ.get("MVFS_BENCH_READS_ONLY") == "1"
PERF = os.environ.get("MVFS_BENCH_PERF")       # a folder: perf record of the daemon during each cold read
PERF_STAT = os.environ.get("MVFS_BENCH_PERF_STAT")  # a folder: perf stat (instructions, cycles, switches) of it
# mvaultfs's multipart defaults (-o s3_part_size, s3_concurrency), for the boto3 row
PART_MIB, CONCURRENCY = 16, 4

# boto3's managed upload (s3transfer) of argv[1] to bucket argv[2], key argv[3]: endpoint, CA file,
# part MiB, concurrency, key id, secret
BOTO3_PUT = r"""
import sys, boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
c = boto3.client("s3", endpoint_url=sys.argv[4], region_name="us-east-1", verify=sys.argv[5] or None,
                 aws_access_key_id=sys.argv[8], aws_secret_access_key=sys.argv[9],
                 config=Config(s3={"addressing_style": "path"}, max_pool_connections=int(sys.argv[7]) + 2))
mib = int(sys.argv[6]) << 20
c.upload_file(sys.argv[1], sys.argv[2], sys.argv[3],
              Config=TransferConfig(multipart_threshold=mib, multipart_chunksize=mib,
                                    max_concurrency=int(sys.argv[7])))
"""


def variants():
    """[(label, binary, extra -o options)] from MVFS_BENCH_BINS, or this build."""
    out = []
    for item in os.environ.get("MVFS_BENCH_BINS", "").split():
        label, _, rest = item.partition("=")
        path, _, opts = rest.partition(":")
        out.append((label, str(Path(path).resolve()), [o for o in opts.split(",") if o]))
    return out or [("", default_bin(), [])]


def measured(cmd):
    """Wall seconds of CMD, the user + system seconds its processes used,
    and the peak RSS (MiB) of the biggest of them (GNU time)."""
    out = Path(tempfile.mktemp(prefix="mvfs-time."))
    c = os.times()
    t = timed("/usr/bin/time -o %s -f %%M %s" % (out, cmd))
    d = os.times()
    try:
        rss = int(out.read_text().split()[-1]) / 1024
    finally:
        out.unlink()
    return t, (d.children_user - c.children_user) + (d.children_system - c.children_system), rss


def cpu(pid):
    """User + system seconds of PID and its threads so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid):
    """VmHWM of PID in MiB: its peak resident set since it started."""
    with open("/proc/%d/status" % pid) as f:
        return [int(x.split()[1]) for x in f if x.startswith("VmHWM:")][0] / 1024


def bdi_read_ahead_kb(mnt):
    st = os.stat(mnt)
    try:
        return int(Path("/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(st.st_dev), os.minor(st.st_dev)))
                   .read_text())
    except OSError:
        return None


FLOOR_SRC = Path("/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c")


def floor_bin():
    """libfuse's passthrough_ll example, built as bench_peers.py builds it
    (build/bench), or None without libfuse3-dev's examples."""
    out = REPO / "build" / "bench" / "passthrough_ll"
    if not out.exists() and FLOOR_SRC.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        sh("cc -O2 -I%s -o %s %s $(pkg-config fuse3 --cflags --libs)" % (FLOOR_SRC.parent, out, FLOOR_SRC))
    return out if out.exists() else None


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main():
    work = Path(tempfile.mkdtemp(prefix="mvfs-bigfile."))
    os.chmod(work, 0o755)
    rows, notes = [], []
    line = first_in_line()
    if line:
        notes.append(line)
    # (row, variant label) -> [seconds per round]: the medians and ratios under the table
    reads = {}
    # (row, variant label) -> [s3rver's CPU seconds during it]: what the store itself costs
    store_cpu = {}
    pg = PgServer()
    s3 = None if LOCAL else S3rver()
    tls = proxy = None
    daemons = []
    dropped = True
    try:
        pg.start()
        env = dict(os.environ)
        env.pop("MVAULT_DB", None)
        opts = list(OPTS)
        endpoint = direct = None
        if s3:
            s3.start()
            endpoint = s3.endpoint
            env.update(s3.env())
        if TLS:
            tls = TlsFront(s3.port, work / "tls").start()
            endpoint = tls.endpoint
            opts.append("s3_ca_file=%s" % tls.ca)
        direct = endpoint
        if PUT_DELAY and s3 and not TLS:
            proxy = FaultProxy(s3.port).start()
            proxy.add("delay", seconds=PUT_DELAY, method="PUT")
            endpoint = proxy.endpoint
            notes.append("every PUT to mvaultfs and boto3 held %g s by a proxy (curl's rows direct)" % PUT_DELAY)
        n = [0]

        def mount(binary, dsn, store, data, extra):
            n[0] += 1
            mnt = work / ("mnt%d" % n[0])
            o = ",".join(["db=" + dsn, "store=%s" % store, "data_dir=%s" % data]
                         + (["s3_endpoint=" + endpoint] if s3 else []) + opts + extra)
            d = Daemon([binary, "-f", "-o", o, str(mnt)], mnt, work / ("mvaultfs%d.log" % n[0]), env=env)
            d.start()
            daemons.append(d)
            d.wait_mounted(60)
            return d

        def unmount(d):
            st = d.unmount(600)
            daemons.remove(d)
            if st != 0:
                raise RuntimeError("mvaultfs exited %s; see %s" % (st, d.log))

        def drop_objects(prefix):
            if not s3:
                shutil.rmtree(work / prefix, ignore_errors=True)
                return
            c = s3.client()
            for k in s3.keys(prefix):
                c.delete_object(Bucket=s3.bucket, Key=k)

        def store_of(prefix):
            return s3.url(prefix) if s3 else work / prefix

        def stored(prefix):
            if s3:
                return [k for k in s3.keys(prefix) if k.endswith(sha)]
            return [f for f in (work / prefix).rglob("*") if f.name.endswith(sha)]

        def read_row(label, what, cmd, cpu_of=None, also=None):
            """Times CMD as row WHAT of variant LABEL (CPU and peak RSS of
            daemon CPU_OF), keeping its seconds for the medians."""
            c0 = cpu(cpu_of.pid) if cpu_of else 0
            s0 = cpu(s3.proc.pid) if s3 and also is None else None
            t = timed(cmd) if also is None else also
            if s0 is not None:
                store_cpu.setdefault((what, label), []).append(cpu(s3.proc.pid) - s0)
            tag = ("[%s] " % label) if label else ""
            rows.append((tag + what, t, cpu(cpu_of.pid) - c0 if cpu_of else None,
                         peak_rss(cpu_of.pid) if cpu_of else None))
            reads.setdefault((what, label), []).append(t)

        src = work / "big.bin"
        sh("dd if=/dev/urandom of=%s bs=1M count=%d status=none" % (src, SIZE_MIB))
        size = SIZE_MIB * MiB
        sha = sh("sha256sum %s" % src).split()[0]
        dd = "dd if=%s of=/dev/null bs=1M status=none"

        curl_ca = "--cacert %s" % tls.ca if tls else ""
        sig = ("--aws-sigv4 aws:amz:us-east-1:s3 -u %s:%s -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'"
               % (KEY, SECRET))
        url = "%s/%s/curl-put.bin" % (direct, s3.bucket) if s3 else None
        curl_get = "curl -sS -f %s -o /dev/null '%s'" % (curl_ca, url)
        if s3:
            rows.append(("curl PUT, one request",)
                        + measured("curl -sS -f %s %s -T %s '%s'" % (curl_ca, sig, src, url)))
            if not READS_ONLY:
                script = work / "boto3_put.py"
                script.write_text(BOTO3_PUT)
                rows.append(("boto3 multipart, %d MiB x %d" % (PART_MIB, CONCURRENCY),)
                            + measured("/usr/bin/python3 %s %s %s boto3.bin '%s' '%s' %d %d %s %s" % (
                                script, src, s3.bucket, endpoint, tls.ca if tls else "", PART_MIB, CONCURRENCY,
                                KEY, SECRET)))
                drop_objects("boto3.bin")

        def ingest(label, binary, extra, dsn, prefix, rnd):
            tag = ("[%s] " % label) if label else ""
            drop_caches()
            w = mount(binary, dsn, store_of(prefix), work / "data-w", extra)
            c0 = cpu(w.pid)
            t_cp = timed("cp %s %s/library/big.bin" % (src, w.mnt))
            t_sync = timed("%s sync %s" % (default_bin(), w.mnt))
            rows.append((tag + "ingest: cp + mvaultfs sync", t_cp + t_sync, cpu(w.pid) - c0, peak_rss(w.pid)))
            rows.append((tag + "... of which the upload (sync)", t_sync, None, None))
            unmount(w)
            if s3:
                grown = [x.split("': ", 1)[1] for x in w.log_text().splitlines() if "parts in flight, grown" in x]
                notes.append("%sround %d: %s" % (tag, rnd + 1, "; ".join(grown) or "parts in flight stayed at the start"))
            shutil.rmtree(work / "data-w")
            if not stored(prefix):
                raise RuntimeError("the file's object is not in the store under %s" % prefix)

        if READS_ONLY:
            label, binary, extra = variants()[0]
            dsn = pg.dsn(pg.create_db("bench_bigfile_0"))
            ingest(label, binary, extra, dsn, "big0/", 0)
        floor = floor_bin()
        turn = 0
        for rnd in range(ROUNDS):
            # the baselines in every round, in turn with the builds
            if s3:
                drop_caches()
                read_row("", "curl GET (s3rver%s)" % (" via stunnel" if TLS else ""), curl_get)
            dropped = drop_caches()
            read_row("", "local file, page cache dropped", dd % src)
            read_row("", "local file, hot (page cache)", None,
                     also=min(timed(dd % src) for _ in range(2)))
            if floor:
                n[0] += 1
                fm = work / ("mnt%d" % n[0])
                f = Daemon([str(floor), "-f", "-o", "source=%s,cache=always" % src.parent, str(fm)], fm,
                           work / "floor.log")
                f.start()
                daemons.append(f)
                f.wait_mounted(60)
                sh(dd % (fm / src.name))
                read_row("", "fuse-floor (passthrough_ll), hot", None,
                         also=min(timed(dd % (fm / src.name)) for _ in range(2)))
                unmount(f)
            for label, binary, extra in variants():
                turn += 1
                if READS_ONLY:
                    prefix = "big0/"
                else:
                    dsn = pg.dsn(pg.create_db("bench_bigfile_%d" % turn))
                    prefix = "big%d/" % turn
                    ingest(label, binary, extra, dsn, prefix, rnd)

                r = mount(binary, dsn, store_of(prefix), work / "data-r", extra)
                ra = "%skernel read_ahead_kb of the mount: %s" % (("[%s] " % label) if label else "",
                                                                  bdi_read_ahead_kb(r.mnt))
                if ra not in notes:
                    notes.append(ra)
                drop_caches()
                cold = dd % (r.mnt / "library/big.bin")
                if PERF:
                    cold = "perf record -q -F 999 -g -p %d -o %s/%s-cold-%d.data -- %s" % (
                        r.pid, PERF, label or "mvaultfs", rnd + 1, cold)
                elif PERF_STAT:
                    cold = "perf stat -x, -e instructions,cycles,context-switches -p %d -o %s/%s-cold-%d.txt -- %s" % (
                        r.pid, PERF_STAT, label or "mvaultfs", rnd + 1, cold)
                read_row(label, "read cold (from the store)", cold, r)
                unmount(r)

                r = mount(binary, dsn, store_of(prefix), work / "data-r", extra)
                drop_caches()
                read_row(label, "read warm (block cache, page cache dropped)", dd % (r.mnt / "library/big.bin"), r)
                read_row(label, "read hot (page cache)", None,
                         also=min(timed(dd % (r.mnt / "library/big.bin")) for _ in range(2)))
                if rnd == 0:
                    sh("cmp %s %s/library/big.bin" % (src, r.mnt))
                unmount(r)
                shutil.rmtree(work / "data-r")
                if not READS_ONLY:
                    drop_objects(prefix)
        if not dropped:
            notes.append("page cache NOT dropped (not root): warm rows are optimistic")
    finally:
        for d in daemons:
            d.cleanup(60)
        if tls:
            tls.stop()
        if proxy:
            proxy.stop()
        if s3:
            s3.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    head = "bench_bigfile: %d MiB, %s%s%s%s" % (
        SIZE_MIB, "local store (a folder on this disk)" if LOCAL else "s3rver over https (stunnel)" if TLS
        else "s3rver over http", (", -o " + ",".join(OPTS)) if OPTS else "",
        (", %d rounds" % ROUNDS) if ROUNDS > 1 else "",
        "".join("; %s = %s%s" % (lb, b, (" -o " + ",".join(x)) if x else "") for lb, b, x in variants() if lb))
    lines = [head, "%-52s %8s %7s %7s %8s %8s" % ("", "seconds", "MB/s", "CPU s", "CPU s/GB", "peak MiB")]
    for what, secs, c, rss in rows:
        lines.append("%-52s %8.2f %7.0f %7s %8s %8s" % (
            what, secs, size / secs / 1e6, "%.2f" % c if c is not None else "-",
            "%.2f" % (c / (size / 1e9)) if c is not None else "-", "%.0f" % rss if rss is not None else "-"))
    lines += ["  " + x for x in notes]
    for (what, label), secs in sorted(store_cpu.items()):
        lines.append("  s3rver's CPU during %s%s: %.2f s/GB (median)" % (
            ("[%s] " % label) if label else "", what, median(secs) / (size / 1e9)))
    # issue 16's read targets: each row's median against its baseline's median, over the rounds
    base_cold = ("curl GET (s3rver%s)" % (" via stunnel" if TLS else "")) if not LOCAL \
        else "local file, page cache dropped"
    targets = [("read cold (from the store)", base_cold, 0.9),
               ("read warm (block cache, page cache dropped)", "local file, page cache dropped", 0.8),
               ("read hot (page cache)", "local file, hot (page cache)", 0.9),
               ("read hot (page cache)", "fuse-floor (passthrough_ll), hot", 0.9)]
    lines.append("read rows against their baselines (medians of %d round%s, MB/s; ratio, target):"
                 % (ROUNDS, "s" if ROUNDS > 1 else ""))
    for what, base, want in targets:
        b = median(reads.get((base, ""), [0])) or None
        for label, _, _ in variants():
            secs = reads.get((what, label))
            if not secs or not b:
                continue
            ratio = b / median(secs)
            lines.append("  %-60s %6.0f vs %6.0f  %.2f (>= %.1f%s)" % (
                ("[%s] " % label if label else "") + what + (", of the fuse-floor" if "floor" in base else ""),
                size / median(secs) / 1e6, size / b / 1e6, ratio,
                want, "" if ratio >= want else ", below"))
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "build" / "bench.txt"
    if out.parent.exists():
        with open(out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
