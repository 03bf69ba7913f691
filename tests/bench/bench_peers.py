"""mvaultfs against the peers a user would otherwise pick, in one run.

Systems (the same work on each, one after the other):
  local          a folder on the same disk: the baseline, ratios are against it
  fuse-floor     libfuse's passthrough_ll example over a local folder: what FUSE itself costs
  mvaultfs       the embedded default (its own PostgreSQL, durable commits) + a local-folder store
  mvaultfs-s3    the same, store on s3rver (tests/s3/s3server.py)
  s3fs           s3fs-fuse on the same s3rver bucket
  rclone-full    rclone mount --vfs-cache-mode full on the same s3rver
  rclone-writes  rclone mount --vfs-cache-mode writes on the same s3rver

Work items, each in seconds:
  write BIG MiB + fsync (and, for write-back systems, until the bytes are in
  the store); read it cold (fresh mount: its block cache removed, page
  cache dropped) and warm; create N x 4 KiB files (until return, and until in
  the store); ls -l of that folder cold (remount) and warm; rsync -a of M x
  1 MiB in (until return, until in the store), a no-change rerun warm and
  one after a remount; a folder of K files: ls -l cold and warm, find cold
  and warm.  "In the store": local = + sync(1); mvaultfs = + `mvaultfs sync`;
  s3fs and rclone = until a bucket listing shows every object at its size.

Each system's mvaultfs user (or sub-folder) per item group keeps listings to
the item's own files.  A system that fails (an item, or its mount) is shown
as "failed: reason" in its cells; the others go on.

MVFS_BENCH_SCALE (default 1) shrinks every size and count;
MVFS_BENCH_PEERS=local,mvaultfs,... picks systems; MVFS_BENCH_GROUPS=big,small,
rsync,many picks item groups (default all: "many" alone is the folder of K
files, its listings and finds); MVFS_BENCH_PEERS_BUDGET
(seconds, default 1500) skips what is left once the run is over it.
MVFS_BENCH_FIRST=1 (root) runs everything in a CPU cgroup of the highest
share: on a shared machine each system then gets the CPU it asks for.
Writes build/bench/peers.txt, peers.json, peers.dat and peers.png
(gnuplot), and appends the table to build/bench.txt when that exists.
Everything mounted is unmounted and every process started is stopped, by PID.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "mount"))
sys.path.insert(0, str(REPO / "tests" / "s3"))

from benchutil import drop_caches as drop_all_caches, first_in_line  # noqa: E402

MiB = 1 << 20
SCALE = float(os.environ.get("MVFS_BENCH_SCALE", "1"))
BIG_MIB = max(1, int(round(256 * SCALE)))
N_SMALL = max(10, int(round(1000 * SCALE)))
N_RSYNC = max(5, int(round(200 * SCALE)))
N_MANY = max(20, int(round(10000 * SCALE)))
MANY_PAR = 4     # writers making the big folder (set-up: one writer took ~5 min on mvaultfs and s3fs)
SMALL = 4096
BUDGET = float(os.environ.get("MVFS_BENCH_PEERS_BUDGET", "1500"))
GROUPS = os.environ.get("MVFS_BENCH_GROUPS", "big,small,rsync,many").split(",")
OUT = REPO / "build" / "bench"
CMD_TIMEOUT = 900
# s3fs and rclone cannot chown, and s3fs cannot set its root's times (as bench_cache.py)
RIVAL_RSYNC = "-a --no-o --no-g --omit-dir-times"


# ---------------------------------------------------------------- helpers

class Failed(Exception):
    pass


def run(cmd, timeout=CMD_TIMEOUT, env=None):
    """Run a shell command in its own process group (killed whole on
    timeout); return stdout, raise Failed with the tail of stderr."""
    p = subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        raise Failed("timed out after %d s: %s" % (timeout, cmd.split()[0]))
    if p.returncode != 0:
        msg = (err or out).strip().splitlines()
        raise Failed("%s exit %d: %s" % (cmd.split()[0], p.returncode, msg[-1] if msg else ""))
    return out


def timed(cmd, timeout=CMD_TIMEOUT):
    t = time.monotonic()
    out = run(cmd, timeout)
    return time.monotonic() - t, out




def drop_caches():
    # syncfs of our disk only: sync(2) would also wait on other people's FUSE mounts
    return drop_all_caches(sync_dir=REPO / "build")


def is_mounted(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def wait_mount(mnt, proc, log, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_mounted(mnt):
            return
        if proc.poll() is not None:
            raise Failed("mount: %s (exit %s)" % (tail(log), proc.returncode))
        time.sleep(0.1)
    raise Failed("did not mount within %d s: %s" % (timeout, tail(log)))


def tail(path, n=1):
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
        return " | ".join(lines[-n:]) if lines else "(empty log)"
    except OSError:
        return "(no log)"


def fuse_unmount(mnt, proc, timeout=120):
    """fusermount3 -u (lazily if busy), then wait for PROC (ours), kill it
    by PID if it does not exit."""
    deadline = time.monotonic() + 15
    while is_mounted(mnt):
        r = subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        if r.returncode == 0 or not is_mounted(mnt):
            break
        if time.monotonic() > deadline:
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
            break
        time.sleep(0.3)
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


CREATE = ("import os,sys,time\n"
          "d,a,b,s,p=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]),sys.argv[5]\n"
          "t=time.monotonic()\n"
          "for i in range(a,b):\n"
          "    with open(os.path.join(d,'%s%05d.bin'%(p,i)),'wb') as f: f.write(os.urandom(s))\n"
          "print(time.monotonic()-t)\n")


def create_files(root, n, size, prefix="f", par=1):
    """Seconds to make n files of size random bytes in root (open, write,
    close each) by PAR child processes (so a hung mount cannot hang us).
    One writer: its own clock, without the interpreter's start."""
    cmds = ["/usr/bin/python3 -c %s %s %d %d %d %s" % (sh_quote(CREATE), sh_quote(str(root)),
                                                       n * j // par, n * (j + 1) // par, size, prefix)
            for j in range(par)]
    if par == 1:
        return float(run(cmds[0]).strip().splitlines()[-1])
    script = " ".join("%s & p%d=$!;" % (c, j) for j, c in enumerate(cmds))
    script += " && ".join(" wait $p%d" % j for j in range(par))
    return timed(script)[0]


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def count_ls(out):
    return sum(1 for ln in out.splitlines() if ln and not ln.startswith("total "))


# ---------------------------------------------------------------- systems

class System:
    """A place to work in. mount(space, fresh) returns the folder for the
    item group SPACE; fresh=True also forgets every local copy (data or
    cache folder) so reads must come from the store."""
    name = "?"
    rsync_flags = "-a"
    write_back = False     # bytes may reach the store after close returns

    def __init__(self, bench):
        self.b = bench
        self.work = bench.work

    def mount(self, space, fresh=False):
        raise NotImplementedError

    def unmount(self):
        pass

    def settle(self, space, root, expect):
        """Wait until EXPECT ({relative name: size}) is in the store."""
        raise NotImplementedError

    def cleanup(self):
        self.unmount()

    def describe(self):
        return self.name


class Local(System):
    name = "local"

    def mount(self, space, fresh=False):
        root = self.work / "local" / space
        root.mkdir(parents=True, exist_ok=True)
        return root

    def settle(self, space, root, expect):
        run("cd %s && sync * ." % root)    # fsync each file and the folder

    def describe(self):
        return "local: a folder on the same disk; 'in store' = + sync(1) of the files written"


class FuseFloor(System):
    """libfuse's own passthrough_ll example (Debian's libfuse3-dev, built
    here) over a folder on the same disk: what any FUSE filesystem costs on
    this kernel, with the kernel doing what it does for mvaultfs (permission
    checks: default_permissions; xattrs asked of the daemon: -o xattr, so
    the security.capability question before each cached write).  No
    database, no hashing, no store: the floor under mvaultfs's rows."""
    name = "fuse-floor"
    EXAMPLE = Path("/usr/share/doc/libfuse3-dev/examples")

    def __init__(self, bench):
        super().__init__(bench)
        self.bin = OUT / "passthrough_ll"
        src = self.EXAMPLE / "passthrough_ll.c"
        if not src.exists():
            raise Failed("no %s (libfuse3-dev)" % src)
        run("cc -O2 -I%s -o %s %s $(pkg-config fuse3 --cflags --libs)" % (self.EXAMPLE, self.bin, src))
        self.src = self.work / "floor-src"
        self.mnt = self.work / "mnt-floor"
        self.src.mkdir(exist_ok=True)
        self.mnt.mkdir(exist_ok=True)
        self.proc = None
        self.log = self.work / "floor.log"

    def mount(self, space, fresh=False):
        (self.src / space).mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(self.bin), "-f", "-o", "source=%s,xattr,default_permissions"
                                          % self.src, str(self.mnt)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        wait_mount(self.mnt, self.proc, self.log)
        return self.mnt / space

    def unmount(self):
        if self.proc is not None:
            proc, self.proc = self.proc, None
            fuse_unmount(self.mnt, proc)

    def settle(self, space, root, expect):
        run("cd %s && sync * ." % (self.src / space))

    def describe(self):
        return "fuse-floor: libfuse's passthrough_ll example over a local folder (-o xattr,default_permissions," \
            " its defaults otherwise): the cost of FUSE itself; 'in store' = + sync(1) of the files written"


class Mvaultfs(System):
    """mvaultfs as a user runs it: the embedded default (its own PostgreSQL
    under the data folder, committing durably), the store a local folder or
    s3rver. A cold mount is the same data folder with its block cache
    removed (the database stays, as on a user's machine after a reboot)."""
    write_back = True

    def __init__(self, bench, name, s3=None):
        super().__init__(bench)
        self.name = name
        self.s3 = s3
        self.store = s3.url("mvaultfs") if s3 else str(self.work / (name + "-store"))
        self.mnt = self.work / ("mnt-" + name)
        self.data = self.work / (name + "-data")
        self.d = None

    def mount(self, space, fresh=False):
        from pgtest import Daemon, default_bin
        os.chmod(self.work, 0o755)     # the embedded cluster's user must reach the data folder
        self.data.mkdir(exist_ok=True)
        if fresh:
            shutil.rmtree(self.data / "cache" / "blocks", ignore_errors=True)
        o = "store=%s,data_dir=%s,user=%s" % (self.store, self.data, space)
        env = dict(os.environ)
        env.pop("MVAULT_DB", None)
        if self.s3:
            o += ",s3_endpoint=" + self.s3.endpoint
            env.update(self.s3.env())
        self.d = Daemon([default_bin(), "-f", "-o", o, str(self.mnt)], self.mnt,
                        self.work / (self.name + ".log"), env=env)
        self.d.start()
        try:
            self.d.wait_mounted(60)
        except RuntimeError as e:
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            raise Failed("mount: " + (lines[-1] if lines else str(e)))
        return self.mnt / "library"

    def unmount(self):
        if self.d is None:
            return
        d, self.d = self.d, None
        try:
            st = d.unmount(300)
        except RuntimeError as e:
            d.cleanup(grace=10)
            raise Failed(str(e))
        if st != 0:
            d.cleanup(grace=10)
            raise Failed("mvaultfs exited %s at unmount: %s" % (st, tail(d.log)))

    def settle(self, space, root, expect):
        from pgtest import default_bin
        run("%s sync %s" % (default_bin(), self.mnt), timeout=1800)

    def cleanup(self):
        if self.d is not None:
            self.d.cleanup(grace=30)
            self.d = None

    def describe(self):
        return "%s: embedded default (its own PostgreSQL), store %s, block cache removed for cold reads;" \
            " 'in store' = + mvaultfs sync" % (
            self.name, "on s3rver" if self.s3 else "a local folder")


class S3Peer(System):
    """A FUSE mount of someone else's on prefix NAME/ of the s3rver bucket."""
    write_back = True
    rsync_flags = RIVAL_RSYNC

    def __init__(self, bench, name, s3):
        super().__init__(bench)
        self.name = name
        self.s3 = s3
        self.mnt = self.work / ("mnt-" + name)
        self.mnt.mkdir()
        self.log = self.work / (name + ".log")
        self.proc = None

    def argv(self, fresh):
        raise NotImplementedError

    def populate(self, space, n, size, prefix):
        """The big folder's files PUT straight into the bucket (8 at a time),
        with the metadata s3fs and rclone keep (mode, owner, mtime): made
        through s3fs, 2,000 files took 2 minutes, since s3rver walks the
        folder on the listing s3fs makes at each create."""
        import concurrent.futures
        c = self.s3.client()
        meta = {"mode": "33188", "uid": "0", "gid": "0", "mtime": str(int(time.time()))}

        def put(i):
            c.put_object(Bucket=self.s3.bucket, Key="%s/%s/%s%05d.bin" % (self.name, space, prefix, i),
                         Body=os.urandom(size), Metadata=meta)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(put, range(n)))

    def env(self):
        return None

    def mount(self, space, fresh=False):
        self.proc = subprocess.Popen(self.argv(fresh), env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        try:
            wait_mount(self.mnt, self.proc, self.log)
        except Failed:
            self.unmount()
            raise
        root = self.mnt / space
        root.mkdir(exist_ok=True)
        return root

    def unmount(self):
        if self.proc is not None:
            p, self.proc = self.proc, None
            fuse_unmount(self.mnt, p)

    def keys(self, prefix):
        """{key: size} under prefix, with one botocore client kept (making one costs ~0.1 s of CPU)."""
        if not hasattr(self, "client"):
            self.client = self.s3.client()
        out = {}
        # ListObjects v1: s3rver 3.7.1 answers a truncated v2 listing (over 1,000 keys) with InternalError
        for page in self.client.get_paginator("list_objects").paginate(Bucket=self.s3.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def settle(self, space, root, expect, stall=120):
        """Poll the bucket until every expected object is there at its size;
        fail when none more arrived for STALL seconds (e.g. an upload rclone gave up on)."""
        prefix = "%s/%s/" % (self.name, space)
        last, last_t, err = -1, time.monotonic(), ""
        while True:
            try:
                have = self.keys(prefix)
            except Exception as e:   # s3rver sometimes answers a listing with InternalError under load
                have, err = {}, "; last listing: %s" % e
            done = sum(1 for k, v in expect.items() if have.get(prefix + k) == v)
            if done == len(expect):
                return
            if done != last:
                last, last_t = done, time.monotonic()
            elif time.monotonic() - last_t > stall:
                raise Failed("only %d of %d objects in the bucket, none more for %d s (see %s)%s"
                             % (done, len(expect), stall, self.log.name, err))
            time.sleep(0.2)


class S3fs(S3Peer):
    write_back = False    # uploads at close (flush)

    def __init__(self, bench, s3):
        super().__init__(bench, "s3fs", s3)
        from s3server import KEY, SECRET
        self.pw = self.work / "s3fs.passwd"
        self.pw.write_text("%s:%s\n" % (KEY, SECRET))
        self.pw.chmod(0o600)
        s3.client().put_object(Bucket=s3.bucket, Key="s3fs/", Body=b"")   # the folder it mounts

    def argv(self, fresh):
        return ["s3fs", "%s:/s3fs" % self.s3.bucket, str(self.mnt), "-f", "-o",
                "url=%s,use_path_request_style,passwd_file=%s" % (self.s3.endpoint, self.pw)]

    def describe(self):
        return "s3fs: s3fs-fuse %s, defaults (no local cache); uploads at close; rsync %s" % (
            self.b.versions.get("s3fs", "?"), RIVAL_RSYNC)


class Rclone(S3Peer):
    def __init__(self, bench, s3, mode):
        super().__init__(bench, "rclone-" + mode, s3)
        self.mode = mode
        self.n = 0
        self.cache = None

    def env(self):
        from s3server import KEY, SECRET
        env = dict(os.environ, RCLONE_CONFIG_B_TYPE="s3", RCLONE_CONFIG_B_PROVIDER="Other",
                   RCLONE_CONFIG_B_ACCESS_KEY_ID=KEY, RCLONE_CONFIG_B_SECRET_ACCESS_KEY=SECRET,
                   RCLONE_CONFIG_B_ENDPOINT=self.s3.endpoint, RCLONE_CONFIG_B_FORCE_PATH_STYLE="true")
        env.pop("AWS_CA_BUNDLE", None)   # rclone 1.60 fails on it ("unsupported transport") even for http
        return env

    def argv(self, fresh):
        if fresh or self.cache is None:
            self.n += 1
            self.cache = self.work / ("%s-cache%d" % (self.name, self.n))
        return ["rclone", "mount", "b:%s/%s" % (self.s3.bucket, self.name), str(self.mnt),
                "--vfs-cache-mode", self.mode, "--cache-dir", str(self.cache)]

    def unmount(self):
        # never unmount with uploads pending: rclone would drop them
        super().unmount()

    def describe(self):
        return ("%s: rclone %s mount --vfs-cache-mode %s (default --vfs-write-back 5s: in-store times include it; "
                "0s broke rsync's temp-file-and-rename uploads), fresh --cache-dir for cold reads; rsync %s"
                % (self.name, self.b.versions.get("rclone", "?"), self.mode, RIVAL_RSYNC))


# ---------------------------------------------------------------- the work

ITEMS = [
    # key, label, group
    ("write", "write %d MiB + fsync" % BIG_MIB, "big"),
    ("write_store", "write %d MiB + fsync, until in store" % BIG_MIB, "big"),
    ("read_cold", "read %d MiB cold" % BIG_MIB, "big"),
    ("read_warm", "read %d MiB warm" % BIG_MIB, "big"),
    ("create", "create %d x 4 KiB" % N_SMALL, "small"),
    ("create_store", "create %d x 4 KiB, until in store" % N_SMALL, "small"),
    ("ls_cold", "ls -l %d entries, cold (remount)" % N_SMALL, "small"),
    ("ls_warm", "ls -l %d entries, warm" % N_SMALL, "small"),
    ("rsync", "rsync -a %d x 1 MiB in" % N_RSYNC, "rsync"),
    ("rsync_store", "rsync -a %d x 1 MiB, until in store" % N_RSYNC, "rsync"),
    ("rsync_again", "rsync no-change rerun, warm", "rsync"),
    ("rsync_remount", "rsync no-change rerun, after remount", "rsync"),
    ("many_create", "create %d x 4 KiB, %d writers (set-up)" % (N_MANY, MANY_PAR), "many"),
    ("many_ls_cold", "ls -l %d entries, cold (remount)" % N_MANY, "many"),
    ("many_ls_warm", "ls -l %d entries, warm" % N_MANY, "many"),
    ("many_find_cold", "find %d entries, cold (remount)" % N_MANY, "many"),
    ("many_find_warm", "find %d entries, warm" % N_MANY, "many"),
]
LABEL = {k: lab for k, lab, _ in ITEMS}
# short labels for the chart's x axis
SHORT = {
    "write": "write %dM + fsync" % BIG_MIB, "write_store": "write, in store",
    "read_cold": "read %dM cold" % BIG_MIB, "read_warm": "read %dM warm" % BIG_MIB,
    "create": "create %d x 4K" % N_SMALL, "create_store": "create, in store",
    "ls_cold": "ls -l %d cold" % N_SMALL, "ls_warm": "ls -l %d warm" % N_SMALL,
    "rsync": "rsync %d x 1M" % N_RSYNC, "rsync_store": "rsync, in store",
    "rsync_again": "rsync rerun warm", "rsync_remount": "rsync rerun remount",
    "many_create": "create %d (set-up)" % N_MANY, "many_ls_cold": "ls -l %d cold" % N_MANY,
    "many_ls_warm": "ls -l %d warm" % N_MANY, "many_find_cold": "find %d cold" % N_MANY,
    "many_find_warm": "find %d warm" % N_MANY,
}


class Bench:
    def __init__(self, work):
        self.work = work
        self.src = work / "src"
        self.results = {k: {} for k, _, _ in ITEMS}   # item -> system -> {"s": secs} | {"error": msg}
        self.notes = []
        self.systems = []
        self.versions = {}
        self.t0 = time.monotonic()

    def make_sources(self):
        self.src.mkdir()
        run("dd if=/dev/urandom of=%s/big.bin bs=1M count=%d status=none" % (self.src, BIG_MIB))
        (self.src / "rsync").mkdir()
        for i in range(N_RSYNC):
            (self.src / "rsync" / ("r%04d.bin" % i)).write_bytes(os.urandom(MiB))

    def ok(self, sysname, item, secs, **extra):
        self.results[item][sysname] = dict(s=round(secs, 4), **extra)

    def fail(self, sysname, items, msg):
        for it in items:
            self.results[it].setdefault(sysname, {"error": msg})

    # -- the item groups; each mounts, works, and unmounts ---------------------------
    def g_big(self, sy):
        big = self.src / "big.bin"
        run("cat %s > /dev/null" % big)       # the source from the page cache: time the target
        root = sy.mount("big", fresh=True)
        try:
            t, _ = timed("dd if=%s of=%s/big.bin bs=1M conv=fsync status=none" % (big, root))
            self.ok(sy.name, "write", t)
            t0 = time.monotonic()
            sy.settle("big", root, {"big.bin": BIG_MIB * MiB})
            self.ok(sy.name, "write_store", t + time.monotonic() - t0)
        finally:
            sy.unmount()
        root = sy.mount("big", fresh=True)
        try:
            drop_caches()
            self.ok(sy.name, "read_cold", timed("cat %s/big.bin > /dev/null" % root)[0])
            self.ok(sy.name, "read_warm", timed("cat %s/big.bin > /dev/null" % root)[0])
            run("cmp %s %s/big.bin" % (big, root))
        finally:
            sy.unmount()

    def g_small(self, sy):
        root = sy.mount("small")
        try:
            t = create_files(root, N_SMALL, SMALL)
            self.ok(sy.name, "create", t)
            t0 = time.monotonic()
            sy.settle("small", root, {"f%05d.bin" % i: SMALL for i in range(N_SMALL)})
            self.ok(sy.name, "create_store", t + time.monotonic() - t0)
        finally:
            sy.unmount()
        self.listing(sy, "small", "ls -l", "ls_cold", "ls_warm", N_SMALL)

    def listing(self, sy, space, cmd, k_cold, k_warm, n):
        root = sy.mount(space)
        try:
            drop_caches()
            t, out = timed("%s %s" % (cmd, root))
            got = count_ls(out) - (1 if cmd == "find" else 0)    # find prints the folder itself
            extra = {} if got == n else {"note": "listed %d of %d" % (got, n)}
            self.ok(sy.name, k_cold, t, **extra)
            t, out = timed("%s %s" % (cmd, root))
            self.ok(sy.name, k_warm, t)
        finally:
            sy.unmount()

    def g_rsync(self, sy):
        src = self.src / "rsync"
        run("cat %s/* > /dev/null" % src)
        root = sy.mount("rsync")
        try:
            t, _ = timed("rsync %s %s/ %s/" % (sy.rsync_flags, src, root))
            self.ok(sy.name, "rsync", t)
            t0 = time.monotonic()
            sy.settle("rsync", root, {"r%04d.bin" % i: MiB for i in range(N_RSYNC)})
            self.ok(sy.name, "rsync_store", t + time.monotonic() - t0)
            self.rerun(sy, src, root, "rsync_again")
        finally:
            sy.unmount()
        root = sy.mount("rsync")
        try:
            drop_caches()
            run("cat %s/* > /dev/null" % src)    # the source warm again, the mount cold
            self.rerun(sy, src, root, "rsync_remount")
        finally:
            sy.unmount()

    def rerun(self, sy, src, root, key):
        t, out = timed("rsync %s -i %s/ %s/" % (sy.rsync_flags, src, root))
        sent = sum(1 for ln in out.splitlines() if ln.startswith(">f"))
        self.ok(sy.name, key, t, **({"note": "re-sent %d of %d files" % (sent, N_RSYNC)} if sent else {}))

    def g_many(self, sy):
        if isinstance(sy, S3Peer):
            sy.populate("many", N_MANY, SMALL, "m")
            self.results["many_create"][sy.name] = {"na": "PUT straight into the bucket"}
        else:
            root = sy.mount("many")
            try:
                self.ok(sy.name, "many_create", create_files(root, N_MANY, SMALL, "m", par=MANY_PAR))
                sy.settle("many", root, {"m%05d.bin" % i: SMALL for i in range(N_MANY)})
            finally:
                sy.unmount()
        self.listing(sy, "many", "ls -l", "many_ls_cold", "many_ls_warm", N_MANY)
        self.listing(sy, "many", "find", "many_find_cold", "many_find_warm", N_MANY)

    def run_system(self, sy):
        for group, fn in (("big", self.g_big), ("small", self.g_small), ("rsync", self.g_rsync),
                          ("many", self.g_many)):
            items = [k for k, _, g in ITEMS if g == group]
            if group not in GROUPS:
                continue
            if time.monotonic() - self.t0 > BUDGET:
                self.fail(sy.name, items, "skipped: over the %d s budget" % BUDGET)
                continue
            t = time.monotonic()
            try:
                fn(sy)
            except Exception as e:   # one item group failing does not stop the others
                msg = str(e) if isinstance(e, Failed) else "%s: %s" % (type(e).__name__, e)
                self.fail(sy.name, items, "failed: " + msg)
                sy.cleanup()
            print("  %-14s %-6s %6.1f s" % (sy.name, group, time.monotonic() - t), flush=True)

    # -- the report ---------------------------------------------------------------------
    def cell(self, sysname, item):
        r = self.results[item].get(sysname)
        if r is None or "na" in r:
            return "-"
        if "error" in r:
            msg = r["error"]
            return msg if len(msg) <= ERR_W else msg[:ERR_W - 3] + "..."
        loc = self.results[item].get("local", {}).get("s")
        s = "%.3f" % r["s"] if r["s"] < 10 else "%.1f" % r["s"]
        if sysname != "local" and loc:
            s += " (%s)" % fmt_ratio(r["s"] / loc)
        if r.get("note"):
            s += " *"
        return s

    def table(self, elapsed):
        names = [sy.name for sy in self.systems]
        rows = [[LABEL[k]] + [self.cell(n, k) for n in names] for k, _, _ in ITEMS]
        head = ["seconds (ratio to local)"] + names
        w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        fmt = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))  # noqa: E731
        out = ["mvaultfs and its peers (%s; %d MiB, %d x 4 KiB, %d x 1 MiB, %d files; scale %g; %.0f s)"
               % (time.strftime("%Y-%m-%d %H:%M"), BIG_MIB, N_SMALL, N_RSYNC, N_MANY, SCALE, elapsed),
               fmt(head), "-" * len(fmt(head))]
        out += [fmt(r) for r in rows]
        out.append("ratio = seconds / local seconds: higher is slower. '-': not measured (see below).")
        out.append("  the S3 systems share one s3rver (node, 127.0.0.1, an object = a folder on the same disk);"
                   " s3fs and rclone: the %d files PUT straight into the bucket, not made through the mount"
                   % N_MANY)
        for sy in self.systems:
            out.append("  " + sy.describe())
        errors = {}    # (system, message) -> items, each reason once
        for k, _, _ in ITEMS:
            for n in names:
                r = self.results[k].get(n, {})
                if r.get("note"):
                    out.append("  * %s, %s: %s" % (n, LABEL[k], r["note"]))
                if len(r.get("error", "")) > ERR_W:
                    errors.setdefault((n, r["error"]), []).append(SHORT[k])
        for (n, msg), items in errors.items():
            out.append("  %s, %s: %s" % (n, "every item" if len(items) == len(ITEMS) - 1 else ", ".join(items), msg))
        out += ["  note: " + n for n in self.notes]
        return "\n".join(out) + "\n"

    def chart(self):
        """peers.dat (ratios to local, '?' = none) and peers.png via gnuplot."""
        names = [sy.name for sy in self.systems if sy.name != "local"]
        keys = [k for k, _, _ in ITEMS if self.results[k].get("local", {}).get("s") and k != "many_create"]
        lines = ["item " + " ".join(names)]
        lo, hi = 1.0, 1.0
        for k in keys:
            loc = self.results[k]["local"]["s"]
            cells = []
            for n in names:
                s = self.results[k].get(n, {}).get("s")
                if s is None:
                    cells.append("?")
                else:
                    r = max(s / loc, 1e-3)
                    lo, hi = min(lo, r), max(hi, r)
                    cells.append("%.4g" % r)
            lines.append('"%s" %s' % (SHORT[k], " ".join(cells)))
        dat = OUT / "peers.dat"
        dat.write_text("\n".join(lines) + "\n")
        import math
        ymin = 10 ** math.floor(math.log10(lo) - 0.01)
        ymax = 10 ** math.ceil(math.log10(hi) + 0.3)
        gp = OUT / "peers.gp"
        gp.write_text("""set terminal pngcairo size 1800,900 font "DejaVu Sans,13" noenhanced
set output '%(png)s'
set title "mvaultfs and peers: time relative to a local folder (log scale; 1 = as fast as local, higher is slower)" font ",16"
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [%(ymin)g:%(ymax)g]
set ylabel "seconds / local seconds"
set format y "%%gx"
set grid ytics mytics lc rgb "#dddddd"
set xtics rotate by 30 right nomirror
set bmargin 10
set lmargin 12
set key top left horizontal box opaque samplen 2 spacing 1.2 width 1
plot for [i=2:%(ncol)d] '%(dat)s' using i:xtic(1) title columnheader(i) \\
     lc rgb word("#1f77b4 #6baed6 #d62728 #2ca02c #98df8a #ff7f0e #9467bd", i-1), \\
     1 with lines dt 2 lw 2 lc rgb "black" title "local folder = 1x"
""" % dict(png=OUT / "peers.png", dat=dat, ncol=len(names) + 1, ymin=ymin, ymax=ymax))
        run("gnuplot %s" % gp, timeout=60)


ERR_W = 34     # a failure's reason in a cell; in full under the table


def fmt_ratio(r):
    return "%.2fx" % r if r < 10 else "%.0fx" % r


def versions():
    v = {}
    for tool, cmd in (("s3fs", "s3fs --version"), ("rclone", "rclone version")):
        try:
            first = run(cmd, timeout=20).splitlines()[0]
            v[tool] = next((w for w in first.split() if w[:1].isdigit() or w[:2].lower() == "v1"), first)
        except Exception:
            pass
    return v


def main():
    from pgtest import default_bin
    from s3server import S3rver
    want = os.environ.get("MVFS_BENCH_PEERS", "local,fuse-floor,mvaultfs,mvaultfs-s3,s3fs,rclone-full,rclone-writes").split(",")
    if not os.path.exists(default_bin()):
        raise SystemExit("bench_peers: no binary at %s (make all)" % default_bin())
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mvfs-bench-peers.", dir=str(REPO / "build")))
    b = Bench(work)
    b.versions = versions()
    line = first_in_line()
    if line:
        b.notes.append(line)
    s3 = None
    try:
        b.make_sources()
        try:
            s3 = S3rver(folder=work / "s3rver").start()
        except Exception as e:
            b.notes.append("s3rver: %s" % e)
            s3 = None
        makers = {
            "local": lambda: Local(b),
            "fuse-floor": lambda: FuseFloor(b),
            "mvaultfs": lambda: Mvaultfs(b, "mvaultfs"),
            "mvaultfs-s3": lambda: Mvaultfs(b, "mvaultfs-s3", s3),
            "s3fs": lambda: S3fs(b, s3),
            "rclone-full": lambda: Rclone(b, s3, "full"),
            "rclone-writes": lambda: Rclone(b, s3, "writes"),
        }
        for name in want:
            name = name.strip()
            if name not in makers:
                continue

            class Broken(System):   # a system that could not even be set up
                pass
            try:
                if name not in ("local", "fuse-floor", "mvaultfs") and s3 is None:
                    raise Failed("no s3rver")
                if name in ("s3fs", "rclone-full", "rclone-writes") and not shutil.which(name.split("-")[0]):
                    raise Failed("%s is not installed" % name.split("-")[0])
                sy = makers[name]()
            except Exception as e:
                sy = Broken(b)
                sy.name = name
                b.systems.append(sy)
                b.fail(name, [k for k, _, _ in ITEMS], "failed: %s" % e)
                continue
            b.systems.append(sy)
            try:
                b.run_system(sy)
            finally:
                sy.cleanup()
        if not b.systems or b.systems[0].name != "local":
            b.notes.append("no local baseline: no ratios")
        text = b.table(time.monotonic() - b.t0)
        sys.stdout.write(text)
        (OUT / "peers.txt").write_text(text)
        (OUT / "peers.json").write_text(json.dumps({
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "binary": default_bin(), "scale": SCALE,
            "sizes": {"big_mib": BIG_MIB, "small_files": N_SMALL, "small_bytes": SMALL,
                      "rsync_files": N_RSYNC, "rsync_bytes": MiB, "many_files": N_MANY},
            "versions": b.versions, "elapsed_s": round(time.monotonic() - b.t0, 1),
            "systems": {sy.name: sy.describe() for sy in b.systems},
            "items": {k: lab for k, lab, _ in ITEMS},
            "results": b.results, "notes": b.notes}, indent=1) + "\n")
        try:
            b.chart()
        except Exception as e:
            print("bench_peers: no chart: %s" % e)
        if (REPO / "build" / "bench.txt").exists():
            with open(REPO / "build" / "bench.txt", "a") as f:
                f.write("\n" + text)
        print("bench_peers: build/bench/peers.{txt,json,png}")
    finally:
        for sy in b.systems:
            try:
                sy.cleanup()
            except Exception:
                pass
        if s3:
            s3.stop()
        left = [ln for ln in subprocess.run(["mount"], capture_output=True, text=True).stdout.splitlines()
                if str(work) in ln]
        for ln in left:   # ours, still there: lazily
            subprocess.run(["fusermount3", "-uz", ln.split(" on ")[1].split(" type ")[0]], capture_output=True)
        if left:
            print("bench_peers: had to lazily unmount: %s" % left)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
