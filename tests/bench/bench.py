"""mvaultfs benchmarks against a local folder on the same disk.

Measures: time to first mount of the embedded default (fresh data dir) and
to a second mount; cp of 100 x 1 MiB into library/ and cat of them back
(page cache dropped first when permitted); ls -l of 1,000 entries, cold
(after a remount) and warm. Prints a table and writes build/bench.txt.
Every daemon is unmounted and every server stopped, whatever happens.
"""

import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "mount"))

from pgtest import Daemon, PgServer, default_bin, stop_pg_under  # noqa: E402
from benchutil import drop_caches, sh, timed  # noqa: E402

MiB = 1024 * 1024
N_FILES = 100
N_LS = 1000


class Bench:
    def __init__(self):
        self.work = REPO / "build" / "bench-work"
        self.rows = []        # (measure, mvaultfs seconds, local seconds or None, note)
        self.daemons = []
        self.notes = []
        self.n = 0

    def opts(self, pg, db, n):
        store, data = self.work / ("store%d" % n), self.work / ("data%d" % n)
        store.mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        return "db=%s,store=%s,data_dir=%s" % (pg.dsn(db), store, data)

    def mount(self, args, env=None, timeout=60):
        self.n += 1
        mnt = self.work / ("mnt%d" % self.n)
        e = dict(os.environ)
        e.pop("MVAULT_DB", None)
        e.update(env or {})
        d = Daemon([default_bin(), "-f"] + args + [str(mnt)], mnt,
                   self.work / ("mvaultfs%d.log" % self.n), env=e)
        self.daemons.append(d)
        d.start()
        try:
            d.wait_mounted(timeout)
        except RuntimeError as err:
            raise SystemExit("bench: %s" % err)
        return d

    def unmount(self, d):
        st = d.unmount()
        if st != 0:
            raise SystemExit("bench: mvaultfs exited with %s at unmount; log:\n%s"
                             % (st, d.log_text()))

    def cleanup(self):
        for d in self.daemons:
            d.cleanup(grace=10)
        stop_pg_under(self.work / "xdg")   # the embedded cluster, if left behind

    def row(self, measure, mvfs, local=None, note=""):
        self.rows.append((measure, mvfs, local, note))

    # ------------------------------------------------------------------

    def embedded(self):
        xdg, home = self.work / "xdg", self.work / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {"XDG_DATA_HOME": str(xdg), "HOME": str(home)}
        d = self.mount([], env)
        self.row("first mount (embedded, fresh data dir)", d.mounted_after)
        self.unmount(d)
        d = self.mount([], env)
        self.row("second mount (embedded)", d.mounted_after)
        self.unmount(d)

    def files(self, pg):
        src = self.work / "src"
        local = self.work / "local"
        src.mkdir()
        local.mkdir()
        for i in range(N_FILES):
            (src / ("f%03d.bin" % i)).write_bytes(os.urandom(MiB))
        db = pg.create_db("bench_files")
        opts = self.opts(pg, db, 1)
        d = self.mount(["-o", opts])
        lib = d.mnt / "library"
        mb = N_FILES * MiB / MiB

        drop_caches()
        t_local = timed("cp %s/* %s/" % (src, local))
        drop_caches()
        t_mvfs = timed("cp %s/* %s/" % (src, lib))
        self.row("cp %d x 1 MiB in" % N_FILES, t_mvfs, t_local,
                 "%.0f vs %.0f MB/s" % (mb / t_mvfs, mb / t_local))

        dropped = drop_caches()
        t_local = timed("cat %s/* > /dev/null" % local)
        drop_caches()
        t_mvfs = timed("cat %s/* > /dev/null" % lib)
        self.row("cat %d x 1 MiB out" % N_FILES, t_mvfs, t_local,
                 ("%.0f vs %.0f MB/s" % (mb / t_mvfs, mb / t_local))
                 + ("" if dropped else " (page cache not dropped)"))
        self.unmount(d)

    def listing(self, pg):
        local = self.work / "local-ls"
        local.mkdir()
        db = pg.create_db("bench_ls")
        opts = self.opts(pg, db, 2)
        d = self.mount(["-o", opts])
        t = time.monotonic()
        for i in range(N_LS):
            (d.mnt / "library" / ("IMG_%04d.jpg" % i)).write_bytes(b"x" * (i % 7))
        t_create = time.monotonic() - t
        t = time.monotonic()
        for i in range(N_LS):
            (local / ("IMG_%04d.jpg" % i)).write_bytes(b"x" * (i % 7))
        self.row("create %d small files" % N_LS, t_create, time.monotonic() - t)
        self.unmount(d)

        d = self.mount(["-o", opts])
        lib = d.mnt / "library"
        n = len(sh("ls -l %s" % lib).splitlines()) - 1   # minus "total"
        if n != N_LS:
            self.notes.append("ls -l of library/ showed %d entries, not %d" % (n, N_LS))
        self.unmount(d)
        d = self.mount(["-o", opts])
        lib = d.mnt / "library"
        drop_caches()
        t_mvfs = timed("ls -l %s > /dev/null" % lib)
        drop_caches()
        t_local = timed("ls -l %s > /dev/null" % local)
        self.row("ls -l %d entries, cold (after remount)" % N_LS, t_mvfs, t_local)
        t_mvfs = timed("ls -l %s > /dev/null" % lib)
        t_local = timed("ls -l %s > /dev/null" % local)
        self.row("ls -l %d entries, warm" % N_LS, t_mvfs, t_local)
        self.unmount(d)

    # ------------------------------------------------------------------

    def table(self):
        out = ["mvaultfs benchmark (%s, %s)" % (time.strftime("%Y-%m-%d %H:%M"), default_bin()),
               "%-40s %12s %12s %15s  %s" % ("measure", "mvaultfs s", "local s", "local/mvaultfs", ""),
               "-" * 100]
        for measure, mvfs, local, note in self.rows:
            loc = "%12.3f" % local if local is not None else "%12s" % "-"
            ratio = "%15.3g" % (local / mvfs) if local is not None and mvfs > 0 else "%15s" % "-"
            out.append("%-40s %12.3f %s %s  %s" % (measure, mvfs, loc, ratio, note))
        out += ["note: " + n for n in self.notes]
        return "\n".join(out) + "\n"

    def run(self):
        if not os.path.exists(default_bin()):
            raise SystemExit("bench: no binary at %s (make all)" % default_bin())
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        pg = PgServer()
        try:
            self.embedded()
            pg.start()
            self.files(pg)
            self.listing(pg)
        finally:
            self.cleanup()
            pg.stop()
        text = self.table()
        sys.stdout.write(text)
        (REPO / "build" / "bench.txt").write_text(text)
        shutil.rmtree(self.work, ignore_errors=True)


if __name__ == "__main__":
    Bench().run()
