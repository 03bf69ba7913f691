"""A real photo tree into mvaultfs and out again, against a local folder
on the same disk (issue 9's measures).

    rsync -a of a 2,000-file tree (50 KiB - 8 MiB, log-uniform, 3 levels),
    first run (until rsync returns, and until `mvaultfs sync` returns),
    a no-change rerun, and a no-change rerun after a remount;
    ls -lR of the tree, warm and after a remount;
    rsync -a of the tree back out;
    a folder holding 1,000 files renamed: time and SQL statements.

MVFS_BENCH_SCALE (default 1) scales the file count.  Appends a table to
build/bench.txt (and prints it).  Every daemon is unmounted and the
PostgreSQL server stopped, whatever happens.
"""

import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REPO, Bench  # noqa: E402
from benchutil import drop_caches, sh, timed  # noqa: E402
from pgtest import PgServer, default_bin  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
SCALE = float(os.environ.get("MVFS_BENCH_SCALE", "1"))
N_TREE = max(20, int(2000 * SCALE))
N_RENAME = max(10, int(1000 * SCALE))


def make_tree(root, n, seed=9):
    """n files, log-uniform 50 KiB - 8 MiB, in year/month/event folders."""
    rnd = random.Random(seed)
    total = 0
    block = os.urandom(8 * MiB)
    for i in range(n):
        d = root / str(2015 + i % 9) / ("%02d" % (1 + i % 12)) / ("Event %d" % (i % 7))
        d.mkdir(parents=True, exist_ok=True)
        size = int(math.exp(rnd.uniform(math.log(50 * KiB), math.log(8 * MiB))))
        off = rnd.randrange(0, 8 * MiB - size + 1)
        # unique bytes per file (no dedup flattering the numbers)
        (d / ("IMG_%05d.jpg" % i)).write_bytes(b"\xff\xd8\xff" + i.to_bytes(8, "big") + block[off:off + size])
        total += size
    return total


def statements(mnt):
    for line in os.getxattr(str(mnt), "user.mvault.stats").decode().splitlines():
        k, v = line.split()
        if k == "db_statements":
            return int(v)
    return -1


class TreeBench(Bench):
    def tree(self, pg):
        src, local = self.work / "src", self.work / "local"
        total = make_tree(src, N_TREE)
        local.mkdir()
        db = pg.create_db("bench_tree")
        opts = self.opts(pg, db, 1)
        d = self.mount(["-o", opts])
        lib = d.mnt / "library"
        mb = total / MiB

        drop_caches()
        t_local = timed("rsync -a %s/ %s/" % (src, local))
        drop_caches()
        s0 = statements(d.mnt)
        t = time.monotonic()
        sh("rsync -a %s/ %s/" % (src, lib))
        t_mvfs = time.monotonic() - t
        s1 = statements(d.mnt)
        sh("%s sync %s --timeout 3600" % (default_bin(), d.mnt))
        t_synced = time.monotonic() - t
        s2 = statements(d.mnt)
        self.row("rsync -a %d files (%.0f MiB) in" % (N_TREE, mb), t_mvfs, t_local,
                 "%.0f vs %.0f MB/s; %.1f statements/file at return, %.1f with uploads"
                 % (mb / t_mvfs, mb / t_local, (s1 - s0) / N_TREE, (s2 - s0) / N_TREE))
        self.row("  ... until every byte is in the store", t_synced, t_local)
        t_local = timed("rsync -a %s/ %s/" % (src, local))
        s0 = statements(d.mnt)
        t_mvfs = timed("rsync -a %s/ %s/" % (src, lib))
        self.row("rsync -a rerun, nothing changed (warm)", t_mvfs, t_local,
                 "%d statements" % (statements(d.mnt) - s0))
        changed = sh("rsync -ai %s/ %s/" % (src, lib)).strip()
        if changed:
            self.notes.append("rsync -ai rerun was not a no-op: %d lines" % len(changed.splitlines()))
        t_mvfs = timed("ls -lR %s > /dev/null" % lib)
        t_local = timed("ls -lR %s > /dev/null" % local)
        self.row("ls -lR of the tree, warm", t_mvfs, t_local)
        self.unmount(d)

        d = self.mount(["-o", opts])
        lib = d.mnt / "library"
        drop_caches()
        t_local = timed("rsync -a %s/ %s/" % (src, local))
        drop_caches()
        t_mvfs = timed("rsync -a %s/ %s/" % (src, lib))
        self.row("rsync -a rerun after a remount", t_mvfs, t_local)
        self.unmount(d)
        d = self.mount(["-o", opts])
        lib = d.mnt / "library"
        drop_caches()
        t_mvfs = timed("ls -lR %s > /dev/null" % lib)
        drop_caches()
        t_local = timed("ls -lR %s > /dev/null" % local)
        self.row("ls -lR of the tree, cold (after remount)", t_mvfs, t_local)
        out_m, out_l = self.work / "out-m", self.work / "out-l"
        drop_caches()
        t_mvfs = timed("rsync -a %s/ %s/" % (lib, out_m))
        drop_caches()
        t_local = timed("rsync -a %s/ %s/" % (local, out_l))
        self.row("rsync -a the tree back out (cold)", t_mvfs, t_local)
        if sh("diff -r %s %s >/dev/null && echo same || echo differ" % (src, out_m)).strip() != "same":
            self.notes.append("the tree rsync'ed back out differs from the source")
        shutil.rmtree(out_m, ignore_errors=True)
        shutil.rmtree(out_l, ignore_errors=True)

        # a folder holding N_RENAME files, renamed
        big_m, big_l = lib / "Phone backup", local / "Phone backup"
        for b in (big_m, big_l):
            b.mkdir()
            for i in range(N_RENAME):
                (b / ("IMG_%05d.jpg" % i)).write_bytes(b"x" * 64)
        s0 = statements(d.mnt)
        t_mvfs = timed("mv '%s' '%s'" % (big_m, lib / "Phone 2023"))
        n = statements(d.mnt) - s0
        t_local = timed("mv '%s' '%s'" % (big_l, local / "Phone 2023"))
        self.row("mv of a folder holding %d files" % N_RENAME, t_mvfs, t_local,
                 "%d SQL statements (lookups included)" % n)
        self.unmount(d)

    def run(self):
        if not os.path.exists(default_bin()):
            raise SystemExit("bench: no binary at %s (make all)" % default_bin())
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        pg = PgServer()
        try:
            pg.start()
            self.tree(pg)
        finally:
            self.cleanup()
            pg.stop()
        text = self.table().replace("mvaultfs benchmark", "mvaultfs tree benchmark", 1)
        sys.stdout.write(text)
        with open(REPO / "build" / "bench.txt", "a") as f:
            f.write("\n" + text)
        shutil.rmtree(self.work, ignore_errors=True)


if __name__ == "__main__":
    TreeBench().run()
