"""Issue 15, "Watch-folder and one-shot import": `mvaultfs import [--watch]
DIR --to library/PATH|galleries/NAME`, with no mount, through the mount's
own engine (src/cli/import.c, src/fs/fs_import.c).

- a nested tree lands as a copy through a mount would: the mount shows the
  same folders, bytes and mtimes, with the same records (one version each,
  uploaded, a blob row each, variant jobs for the images); a rerun costs
  nothing (no new version, blob row or store object);
- --watch takes a file written slowly once, after it settled; a folder
  moved in; a file added after the start; and ends cleanly on SIGINT;
- --delete-after removes the sources once their content is in the store;
- `mvaultfs status --json` has the documented fields;
- bad inputs: one line each and a non-zero exit.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from imgtest import jpeg
from mvtest import object_path, poll, q, run, sha256_file, sql, wait_until
from pgtest import default_bin
from test_embedded import embedded_env

T0 = 1_600_000_000  # the sources' mtimes: far from now, so a kept one is seen


_s3 = {}   # the s3rver of a store on S3 (MVFS_TEST_STORE=s3): its endpoint and credentials


@pytest.fixture(autouse=True)
def _s3_of_store(request):
    if os.environ.get("MVFS_TEST_STORE") == "s3":
        _s3["server"] = request.getfixturevalue("s3_server")
    yield
    _s3.clear()


def import_cmd(m, tmp_path, *args, data="imp"):
    """argv of an import into M's database and store, with a data folder of
    its own (as a second machine, or a mount's neighbour, would have)."""
    opts = "db=%s,store=%s,data_dir=%s" % (m.dsn, m.store, tmp_path / data)
    if str(m.store).startswith("s3://"):
        opts += ",s3_endpoint=" + _s3["server"].endpoint
    return [default_bin(), "import", *map(str, args), "-o", opts]


def env_of(tmp_path):
    e = dict(os.environ)
    e.pop("MVAULT_DB", None)
    e["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    if "server" in _s3:
        e.update({k: str(v) for k, v in _s3["server"].env().items()})
    return e


def do_import(m, tmp_path, *args, check=True):
    return run(import_cmd(m, tmp_path, *args), timeout=120, check=check, env=env_of(tmp_path))


def make_tree(root):
    """A nested tree: {relative path: bytes}; mtimes T0 + i (ns kept)."""
    files = {
        "top.jpg": jpeg(64, 48, seed=1),
        "2023/summer/beach.jpg": jpeg(80, 60, seed=2),
        "2023/summer/notes.txt": b"sand\n" * 100,
        "2023/winter/deep/snow.jpg": jpeg(40, 40, seed=3),
        "2024/big.bin": os.urandom(3 * 1024 * 1024 + 17),
        "zz/same-as-top.jpg": jpeg(64, 48, seed=1),     # content seen twice in one run (after top.jpg)
        "2024/.DS_Store": b"\0\0\0\1Bud1",               # a system file: not a memory
    }
    for i, (rel, data) in enumerate(sorted(files.items())):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, ns=(T0 * 10**9 + i * 10**9 + 123456789,) * 2)
    return files


def counts(m):
    return sql(m, "SELECT (SELECT count(*) FROM memory_assets WHERE variant_of_asset_id IS NULL),"
                  " (SELECT count(*) FROM blobs), (SELECT count(*) FROM memory_items)")[0]


def completed(m, n):
    return sql(m, "SELECT count(*) FROM memory_assets WHERE variant_of_asset_id IS NULL"
                  " AND upload_status = 'completed'") == [str(n)]


def test_one_shot_tree_rerun_and_status(mvfs, tmp_path):
    m = mvfs(extra_opts=["workers=0"])
    src = tmp_path / "card"
    files = make_tree(src)
    lib = m.mnt / "library"
    (lib / "Photos").mkdir()

    r = do_import(m, tmp_path, src, "--to", "library/Photos")
    assert "imported 5 file(s)" in r.stdout, r.stdout + r.stderr
    assert "already in the library: 1 file(s)" in r.stdout, r.stdout     # same-as-top.jpg
    assert "ignored: 1 system file(s)" in r.stdout, r.stdout
    # not a terminal: plain lines, no carriage returns
    assert "\r" not in r.stderr and "import: " in r.stderr, r.stderr

    # the mount shows it as it would a copy: folders, bytes, mtimes (ns)
    photos = lib / "Photos"
    for rel, data in files.items():
        if rel.endswith((".DS_Store", "same-as-top.jpg")):
            assert not (photos / rel).exists(), rel
            continue
        p = wait_until(lambda: (photos / rel).exists() and photos / rel, "%s on the mount" % rel)
        assert p.read_bytes() == data, rel
        st, srcst = os.stat(p), os.stat(src / rel)
        assert st.st_mtime_ns == srcst.st_mtime_ns, rel
        assert st.st_mode & 0o777 == srcst.st_mode & 0o777, rel
    assert sorted(os.listdir(photos)) == ["2023", "2024", "top.jpg"]
    assert sorted(os.listdir(photos / "2023" / "winter" / "deep")) == ["snow.jpg"]
    # folders made by the import keep their sources' mtimes, as rsync -a
    assert os.stat(photos / "2023" / "winter").st_mtime_ns == os.stat(src / "2023" / "winter").st_mtime_ns

    # the records a copy makes: one version each, uploaded (import waited),
    # a blob row each, variant jobs for the three images
    assert completed(m, 5)
    before = counts(m)
    assert before == "5|5|5", before
    assert sql(m, "SELECT count(*) FROM background_jobs WHERE type = 'process_assets'") == ["3"]
    for rel in ("top.jpg", "2024/big.bin"):
        assert object_path(m.store, sha256_file(src / rel)).exists()

    # the same rows as a copy through the mount (cp -p) of a file of that
    # kind into that folder makes
    copied = photos / "2023" / "summer" / "copied.txt"
    (tmp_path / "other.txt").write_bytes(b"other sand\n" * 100)
    os.chmod(tmp_path / "other.txt", os.stat(src / "2023/summer/notes.txt").st_mode)
    run(["cp", "-p", tmp_path / "other.txt", copied])
    run([default_bin(), "sync", m.mnt])
    shape = ("SELECT m.type, m.status, m.expires_at IS NULL, m.title IS NULL, i.mode, a.mime_type,"
             " a.upload_status, a.processing_status, a.lifecycle_status, a.storage_backend, a.asset_type,"
             " a.blob_id IS NOT NULL, a.bytes = b.bytes, b.ref_count, l.folder_id, l.asset_type, l.mime_type"
             " FROM memory_items i JOIN memories m ON m.id = i.memory_id"
             " JOIN memory_assets a ON a.id = i.primary_asset_id JOIN blobs b ON b.id = a.blob_id"
             " JOIN user_library l ON l.memory_id = m.id WHERE i.display_name = %s")
    assert sql(m, shape % q("notes.txt")) == sql(m, shape % q("copied.txt"))
    os.unlink(copied)
    before = counts(m)            # the copy is in .trash/ now: its rows stay

    # a rerun costs nothing: no version, no blob row, no object
    objects = sorted(str(p) for p in Path(m.store).rglob("*") if p.is_file())
    r = do_import(m, tmp_path, src, "--to", "library/Photos")
    assert "imported 0 file(s)" in r.stdout and "already in the library: 6 file(s)" in r.stdout, r.stdout
    assert counts(m) == before
    assert sorted(str(p) for p in Path(m.store).rglob("*") if p.is_file()) == objects

    # into a gallery: flat (galleries hold no folders); content the library
    # holds is not imported again, new content is, with a free name
    (m.mnt / "galleries" / "Trip").mkdir()
    (src / "2023" / "top.jpg").write_bytes(jpeg(30, 30, seed=9))   # another top.jpg
    r = do_import(m, tmp_path, src, "--to", "galleries/Trip")
    assert "imported 1 file(s)" in r.stdout, r.stdout
    assert wait_until(lambda: os.listdir(m.mnt / "galleries" / "Trip"), "the gallery's file") == ["top.jpg"]

    # status: at a glance, and --json for scripts, with the documented fields
    r = run([default_bin(), "status", m.mnt])
    assert r.stdout.startswith("mvaultfs at %s:" % m.mnt), r.stdout
    st = json.loads(run([default_bin(), "status", "--json", m.mnt]).stdout)
    assert set(st) >= {"mountpoint", "healthy", "down", "staged", "uploaded", "set_aside", "database", "cache", "store",
                       "pins"}, st
    assert st["mountpoint"] == str(m.mnt) and st["healthy"] is True and st["down"] == []
    assert set(st["staged"]) == {"files", "bytes"} and st["staged"]["files"] == 0
    assert set(st["uploaded"]) == {"files", "bytes", "rate"}
    assert set(st["cache"]) == {"bytes", "blocks", "max", "hits", "misses", "hit_rate"}
    assert set(st["store"]) == {"gets", "puts", "failing"} and st["pins"] == []
    m.unmount()


def test_watch_settle_moved_folder_and_sigint(mvfs, tmp_path):
    m = mvfs(extra_opts=["workers=0"])
    src = tmp_path / "phone"
    src.mkdir()
    (src / "old.jpg").write_bytes(jpeg(20, 20, seed=5))       # there before the start
    log = open(tmp_path / "watch.out", "w+")
    p = subprocess.Popen(import_cmd(m, tmp_path, "--watch", "--settle", "1.5", src, "--to", "library"),
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         env=env_of(tmp_path), start_new_session=True)
    try:
        names = lambda: sql(m, "SELECT display_name FROM memory_items ORDER BY 1")
        wait_until(lambda: names() == ["old.jpg"], lambda: "old.jpg imported: %s" % log_of(log))

        # a file written slowly, with pauses shorter than the settle time:
        # one version, of all its bytes, only after it settled
        data = os.urandom(300_000)
        with open(src / "slow.bin", "wb") as f:
            for i in range(4):
                f.write(data[i * 75_000:(i + 1) * 75_000])
                f.flush()
                time.sleep(0.7)
                assert "slow.bin" not in names(), "imported before it settled"
        wait_until(lambda: "slow.bin" in names(), lambda: "slow.bin imported: %s" % log_of(log))

        # a folder moved in (its files make no events of their own), and a
        # file added after the start
        outside = tmp_path / "staging" / "Trip"
        (outside / "day1").mkdir(parents=True)
        (outside / "day1" / "a.jpg").write_bytes(jpeg(24, 24, seed=6))
        (outside / "b.txt").write_bytes(b"postcard")
        os.rename(outside, src / "Trip")
        (src / "late.txt").write_bytes(b"late")
        want = ["a.jpg", "b.txt", "late.txt", "old.jpg", "slow.bin"]
        wait_until(lambda: names() == want, lambda: "all imported: %s %s" % (names(), log_of(log)))
        assert sql(m, "SELECT count(*) FROM memory_assets a JOIN memory_items i ON i.id = a.memory_item_id"
                      " WHERE i.display_name = 'slow.bin' AND a.variant_of_asset_id IS NULL") == ["1"]
        got = wait_until(lambda: (m.mnt / "library" / "slow.bin").exists() and
                         (m.mnt / "library" / "slow.bin").read_bytes(), "slow.bin on the mount")
        assert got == data
        assert (m.mnt / "library" / "Trip" / "day1" / "a.jpg").exists()

        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 0, log_of(log)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
    out = log_of(log)
    assert "imported 5 file(s)" in out, out
    assert completed(m, 5)
    m.unmount()


def log_of(f):
    f.flush()
    f.seek(0)
    return f.read()


def test_delete_after_and_bad_inputs(mvfs, tmp_path, pg_server):
    m = mvfs(extra_opts=["workers=0"])
    card = tmp_path / "DCIM"
    (card / "100CANON").mkdir(parents=True)
    shots = {}
    for i in range(3):
        p = card / "100CANON" / ("IMG_%04d.jpg" % i)
        p.write_bytes(jpeg(16 + i, 16, seed=20 + i))
        shots[p.name] = sha256_file(p)
    (card / "100CANON" / "dup.jpg").write_bytes((card / "100CANON" / "IMG_0000.jpg").read_bytes())

    r = do_import(m, tmp_path, card, "--delete-after", "--to", "library")
    assert "deleted from %s: 4 file(s)" % card in r.stdout, r.stdout + r.stderr
    assert list((card / "100CANON").iterdir()) == []      # the copy too: its content is in the store
    for name, h in shots.items():
        assert object_path(m.store, h).exists(), name
        assert sql(m, "SELECT a.upload_status FROM memory_items i JOIN memory_assets a"
                      " ON a.id = i.primary_asset_id WHERE i.display_name = %s" % q(name)) == ["completed"]

    # bad inputs: one line each, a non-zero exit, nothing written
    (m.mnt / "library" / "afile.txt").write_bytes(b"x")
    before = counts(m)
    (tmp_path / "plain.txt").write_text("a file, not a folder")
    cases = [
        ((tmp_path / "nope", "--to", "library"), "no such folder"),
        ((tmp_path / "plain.txt", "--to", "library"), "is not a folder"),
        ((card / "..", "--to", "library/missing/deeper"), "no such folder"),
        ((card, "--to", "library/afile.txt"), "not a folder"),
        ((card, "--to", "workspace"), "give library, library/PATH or galleries/NAME"),
        ((card, "--to", "galleries/nosuch"), "no such folder"),
        ((card,), "usage: mvaultfs import"),
        ((card, "--to", "library", "--settle", "soon"), "--settle soon"),
    ]
    for args, want in cases:
        r = do_import(m, tmp_path, *args, check=False)
        assert r.returncode == 1 and want in r.stderr, (args, r.returncode, r.stderr)
    assert counts(m) == before

    # the embedded default's library while it is mounted: its cluster is
    # the mount's; said so, with what to do
    env = embedded_env(tmp_path)
    e = mvfs(embedded=True, env=env, timeout=60)
    r = run([default_bin(), "import", card, "--to", "library"], check=False, timeout=60,
            env=dict(env_of(tmp_path), HOME=str(env["HOME"])))
    assert r.returncode == 1 and "is mounted (mvaultfs pid %d)" % e.pid in r.stderr, r.stderr
    e.unmount()

    # files import cannot take: each named on a line of its own, the rest
    # imported, and a non-zero exit (as root nothing is unreadable: as
    # nobody, into a database and store of its own)
    with tempfile.TemporaryDirectory() as top:
        top = Path(top)
        os.chmod(top, 0o755)
        mixed = top / "mixed"
        mixed.mkdir()
        (mixed / "ok.txt").write_bytes(b"fine")
        os.symlink("/etc/hostname", mixed / "link.txt")
        os.mkfifo(mixed / "pipe")
        (mixed / "tab\tname.txt").write_bytes(b"a control character")
        (mixed / "secret.txt").write_bytes(b"hidden")
        os.chmod(mixed / "secret.txt", 0)
        r = nobody_import(pg_server, top, mixed)
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr.splitlines()
    assert "mvaultfs import: 'link.txt': skipped: a symbolic link (a library holds files)" in err, err
    assert "mvaultfs import: 'pipe': skipped: not a regular file" in err, err
    assert "mvaultfs import: 'secret.txt': skipped: Permission denied" in err, err
    assert ("mvaultfs import: 'tab\tname.txt': skipped: its name cannot be a library name (see the log)"
            in err), err
    assert "imported 1 file(s)" in r.stdout and "skipped: 4 file(s)" in r.stdout, r.stdout
    m.unmount()


def nobody_import(pg_server, top, src):
    """`mvaultfs import SRC` as nobody (root reads everything), with a
    database, store and data folder of its own."""
    data, store = top / "data", top / "store"
    for d in (data, store):
        d.mkdir()
        shutil.chown(d, "nobody", "nogroup")
    dsn = pg_server.dsn(pg_server.create_db("t_import_nobody_%d" % os.getpid()))
    argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", default_bin(), "import",
            str(src), "--to", "library", "-o", "db=%s,store=%s,data_dir=%s" % (dsn, store, data)]
    e = env_of(top)
    e["HOME"] = str(data)
    return run(argv, timeout=120, check=False, env=e)


# ------------------------------------------------------------ the import rate

@pytest.mark.skipif(os.environ.get("MVFS_BENCH") != "1", reason="benchmark: set MVFS_BENCH=1")
def test_import_rate_against_rsync(mvfs, tmp_path):
    """`mvaultfs import` of a folder of photo-sized files against `rsync -a`
    of the same folder into a mount followed by `mvaultfs sync` (import
    waits for its uploads too), each into a fresh database and store, on
    the same machine (printed, not asserted):

        MVFS_BENCH=1 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \\
            tests/mount/test_import.py -k rate
    """
    n = int(os.environ.get("MVFS_BENCH_FILES") or 300)
    src = tmp_path / "photos"
    total = 0
    for i in range(n):
        p = src / ("day%02d" % (i % 10)) / ("IMG_%04d.jpg" % i)
        p.parent.mkdir(parents=True, exist_ok=True)
        size = 600_000 + (i * 7919) % 1_400_000          # 0.6 to 2 MB, as phone JPEGs
        p.write_bytes(os.urandom(size))
        total += size
    mb = total / 1e6

    rs = mvfs(extra_opts=["workers=0"])
    t = time.monotonic()
    run(["rsync", "-a", "%s/" % src, "%s/" % (rs.mnt / "library" / "rsync")], timeout=900)
    t_rsync = time.monotonic() - t
    run([default_bin(), "sync", rs.mnt], timeout=900)
    t_rsync_sync = time.monotonic() - t
    rs.unmount()

    im = mvfs(extra_opts=["workers=0"])
    im.unmount()          # no mount needed: the import alone, on its database and store
    t = time.monotonic()
    r = do_import(im, tmp_path, src, "--to", "library")
    t_import = time.monotonic() - t
    assert ("imported %d file(s)" % n) in r.stdout, r.stdout + r.stderr
    t = time.monotonic()
    r = do_import(im, tmp_path, src, "--to", "library")
    t_rerun = time.monotonic() - t

    print("\n%d files, %.0f MB" % (n, mb))
    for what, secs in (("rsync -a into a mount", t_rsync), ("rsync -a + mvaultfs sync", t_rsync_sync),
                       ("mvaultfs import (uploads done)", t_import), ("mvaultfs import, rerun", t_rerun)):
        print("%-32s %6.1f s  %6.1f files/s  %6.1f MB/s" % (what, secs, n / secs, mb / secs))
