"""user.* extended attributes kept per inode, as ext4 keeps them, and the
computed user.mvault.* names that `rsync -aX` may write back unharmed."""

import errno
import os

from mvtest import assert_errno, fsync_path, log_lines_after, run, sql, tree_state
from pgtest import default_bin

URL = "user.xdg.origin.url"
RATING = "user.xdg.creator"     # any user.* name; user.baloo.rating: test_xdg_tags.py


def stored(m):
    """(ino, name, value hex) rows of inode_xattrs, sorted."""
    return sorted(tuple(r.split("|")) for r in
                  sql(m, "SELECT ino, name, encode(value, 'hex') FROM inode_xattrs"))


def user_attrs(d):
    """{relative path: {name: value}} of every user.* attribute under d but
    the computed user.mvault.* ones, as `getfattr -R -d` dumps them."""
    r = run(["getfattr", "-R", "-d", "-e", "hex", "-m", "^user\\.", "."], cwd=d)
    out, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("# file: "):
            cur = out.setdefault(line[len("# file: "):], {})
        elif "=" in line and not line.startswith("user.mvault."):
            name, value = line.split("=", 1)
            cur[name] = value
    return {f: a for f, a in out.items() if a}


def test_set_get_list_remove(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "page.html"
    f.write_bytes(b"<html></html>")
    os.setxattr(f, URL, b"https://example.org/page.html")
    os.setxattr(f, RATING, b"8")
    assert os.getxattr(f, URL) == b"https://example.org/page.html"
    assert os.getxattr(f, RATING) == b"8"
    names = os.listxattr(f)
    assert set(names) == {URL, RATING}, names      # computed ones: read by name only
    assert len(names) == len(set(names)), names

    # any bytes, an empty value, a value replaced
    os.setxattr(f, "user.bin", bytes(range(256)) * 3)
    assert os.getxattr(f, "user.bin") == bytes(range(256)) * 3
    os.setxattr(f, "user.empty", b"")
    assert os.getxattr(f, "user.empty") == b""
    os.setxattr(f, RATING, b"10")
    assert os.getxattr(f, RATING) == b"10"

    os.removexattr(f, RATING)
    assert_errno(errno.ENODATA, os.getxattr, f, RATING)
    assert RATING not in os.listxattr(f)
    assert_errno(errno.ENODATA, os.removexattr, f, RATING)
    # per file: another file has none of them
    g = m.mnt / "library" / "other.txt"
    g.write_bytes(b"o")
    assert_errno(errno.ENODATA, os.getxattr, g, URL)
    assert not [n for n in os.listxattr(g) if not n.startswith("user.mvault.")]
    # getfattr -d shows them; the computed ones are read by name
    out = run(["getfattr", "-d", f]).stdout
    assert 'user.xdg.origin.url="https://example.org/page.html"' in out, out
    assert "user.mvault." not in out, out
    assert "user.mvault.id=" in run(["getfattr", "-n", "user.mvault.id", f]).stdout
    ino = os.stat(f).st_ino
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir)
    f2 = m2.mnt / "library" / "page.html"
    assert os.stat(f2).st_ino == ino
    assert os.getxattr(f2, URL) == b"https://example.org/page.html"
    assert os.getxattr(f2, "user.bin") == bytes(range(256)) * 3
    assert os.getxattr(f2, "user.empty") == b""
    assert_errno(errno.ENODATA, os.getxattr, f2, RATING)
    assert [r[1] for r in stored(m2)] == ["user.bin", "user.empty", URL]
    m2.unmount()


def test_flags_and_limits(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "a.jpg"
    f.write_bytes(b"a")
    os.setxattr(f, RATING, b"1", os.XATTR_CREATE)
    assert_errno(errno.EEXIST, os.setxattr, f, RATING, b"2", os.XATTR_CREATE)
    assert os.getxattr(f, RATING) == b"1"
    os.setxattr(f, RATING, b"3", os.XATTR_REPLACE)
    assert os.getxattr(f, RATING) == b"3"
    assert_errno(errno.ENODATA, os.setxattr, f, "user.missing", b"x", os.XATTR_REPLACE)
    assert_errno(errno.ENODATA, os.getxattr, f, "user.missing")
    assert_errno(errno.ENODATA, os.removexattr, f, "user.missing")

    # values up to 64 KiB, names up to 255 bytes
    big = os.urandom(65536)
    os.setxattr(f, "user.big", big)
    assert os.getxattr(f, "user.big") == big
    assert_errno(errno.E2BIG, os.setxattr, f, "user.big", big + b"x")
    assert os.getxattr(f, "user.big") == big
    long_name = "user." + "n" * 250
    os.setxattr(f, long_name, b"v")
    assert os.getxattr(f, long_name) == b"v"
    assert_errno(errno.ERANGE, os.setxattr, f, long_name + "n", b"v")
    assert_errno(errno.ERANGE, os.getxattr, f, long_name + "n")
    # names are kept as UTF-8 text
    os.setxattr(f, "user.ünï", b"u")
    assert os.getxattr(f, "user.ünï") == b"u"
    assert_errno(errno.EINVAL, os.setxattr, f, b"user.\xff", b"v")
    assert_errno(errno.ENODATA, os.getxattr, f, b"user.\xff")
    os.removexattr(f, "user.ünï")

    # only user.* is kept; ls -l's questions are answered without the database
    for name in ("trusted.x", "security.x", "system.x"):
        err, lines = log_lines_after(m, lambda: os.setxattr(f, name, b"v"))
        assert err in (errno.ENOTSUP, errno.EOPNOTSUPP), (name, err)
        if not name.startswith("system."):     # the kernel answers system.* itself
            assert any("'%s'" % name in ln and "only user.* attributes" in ln for ln in lines), lines
    assert_errno(errno.ENOTSUP, os.removexattr, f, "trusted.x")
    assert_errno(errno.ENOTSUP, os.getxattr, f, "trusted.x")
    assert_errno(errno.ENOTSUP, os.getxattr, f, "security.selinux")    # no labels: ls -l stops asking
    assert_errno(errno.ENODATA, os.getxattr, f, "security.capability")
    assert_errno(errno.ENOTSUP, os.getxattr, f, "system.posix_acl_access")

    # the top folders keep none; variants are read-only
    for top in ("library", "collections", ""):
        err, lines = log_lines_after(m, lambda: os.setxattr(m.mnt / top, URL, b"v"))
        assert err == errno.ENOTSUP, (top, err)
        assert any("'%s'" % URL in ln and "top folder" in ln for ln in lines), lines
        assert_errno(errno.ENOTSUP, os.removexattr, m.mnt / top, URL)
        assert_errno(errno.ENODATA, os.getxattr, m.mnt / top, URL)
    assert [r[1] for r in stored(m)] == sorted(["user.big", long_name, RATING])

    # a refusal is one log line naming the attribute
    err, lines = log_lines_after(m, lambda: os.setxattr(f, RATING, b"4", os.XATTR_CREATE))
    assert err == errno.EEXIST and len([ln for ln in lines if "'%s'" % RATING in ln]) == 1, lines
    m.unmount()


def test_computed_names(mvfs):
    """Writing a computed name succeeds and changes nothing: `rsync -aX`
    from a backup writes them back, into another library too."""
    m = mvfs()
    f = m.mnt / "library" / "a.txt"
    f.write_bytes(b"a")
    fsync_path(f)
    mid = os.getxattr(f, "user.mvault.id")
    sha = os.getxattr(f, "user.mvault.sha256")
    os.setxattr(f, "user.mvault.id", mid)
    err, lines = log_lines_after(m, lambda: os.setxattr(f, "user.mvault.id", b"0" * 36))
    assert err is None
    assert [ln for ln in lines if "'user.mvault.id'" in ln and "computes" in ln], lines
    assert os.getxattr(f, "user.mvault.id") == mid
    os.setxattr(f, "user.mvault.sha256", b"f" * 64)
    os.removexattr(f, "user.mvault.sha256")
    assert os.getxattr(f, "user.mvault.sha256") == sha
    os.removexattr(f, "user.mvault.no_such_name")
    os.setxattr(f, "user.mvault.no_such_name", b"x")
    assert_errno(errno.ENODATA, os.getxattr, f, "user.mvault.no_such_name")
    assert "user.mvault.no_such_name" not in os.listxattr(f)
    assert_errno(errno.EEXIST, os.setxattr, f, "user.mvault.id", mid, os.XATTR_CREATE)
    os.setxattr(f, "user.mvault.id", mid, os.XATTR_REPLACE)
    assert sql(m, "SELECT count(*) FROM inode_xattrs") == ["0"]

    # user.mvault.collection: read by name, not listed, still sets and unsets
    os.mkdir(m.mnt / "collections" / "C")
    os.setxattr(f, "user.mvault.collection", b"C")
    assert os.getxattr(f, "user.mvault.collection") == b"C"
    assert "user.mvault.collection" not in os.listxattr(f)
    assert os.listdir(m.mnt / "collections" / "C") == ["a.txt"]
    os.removexattr(f, "user.mvault.collection")
    assert os.listdir(m.mnt / "collections" / "C") == []

    # the root's numbers still answer
    assert b"staged_files" in os.getxattr(m.mnt, "user.mvault.stats")
    os.getxattr(m.mnt, "user.mvault.aside")
    m.unmount()


def test_folders_and_trash(mvfs):
    m = mvfs()
    c, g = m.mnt / "collections" / "Trips", m.mnt / "galleries" / "Best"
    os.mkdir(c)
    os.mkdir(g)
    os.setxattr(c, URL, b"https://example.org/trips")
    os.setxattr(g, RATING, b"5")
    assert os.getxattr(c, URL) == b"https://example.org/trips"
    assert set(os.listxattr(c)) == {URL}
    assert_errno(errno.ENODATA, os.getxattr, g, URL)
    cid = os.getxattr(c, "user.mvault.id")
    os.setxattr(c, "user.mvault.id", b"other")
    assert os.getxattr(c, "user.mvault.id") == cid
    assert_errno(errno.EPERM, os.setxattr, c, "user.mvault.collection", b"Trips")

    # a file keeps its attributes in .trash/ and back out of it
    lib, trash = m.mnt / "library", m.mnt / ".trash"
    (c / "x.jpg").write_bytes(b"x" * 1000)
    os.setxattr(c / "x.jpg", URL, b"https://example.org/x.jpg")
    os.remove(lib / "x.jpg")
    assert os.getxattr(trash / "x.jpg", URL) == b"https://example.org/x.jpg"
    assert URL in os.listxattr(trash / "x.jpg")
    assert_errno(errno.EROFS, os.setxattr, trash / "x.jpg", RATING, b"1")
    assert_errno(errno.EROFS, os.removexattr, trash / "x.jpg", URL)
    run(["mv", trash / "x.jpg", lib / ""])
    assert os.getxattr(lib / "x.jpg", URL) == b"https://example.org/x.jpg"
    os.setxattr(lib / "x.jpg", RATING, b"2")
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir)
    assert os.getxattr(m2.mnt / "collections" / "Trips", URL) == b"https://example.org/trips"
    assert os.getxattr(m2.mnt / "galleries" / "Best", RATING) == b"5"
    assert os.getxattr(m2.mnt / "library" / "x.jpg", RATING) == b"2"
    m2.unmount()


def make_tree(d):
    d.mkdir()
    files = {
        "page.html": {URL: b"https://example.org/page.html"},
        "photo.jpg": {URL: b"https://example.org/p.jpg", RATING: b"6", "user.bin": bytes(range(256))},
        "plain.txt": {},
        "big.bin": {"user.big": os.urandom(3000)},     # ext4 keeps a block per file
    }
    for i, (name, attrs) in enumerate(sorted(files.items())):
        (d / name).write_bytes(os.urandom(1000 * (i + 1)))
        for k, v in attrs.items():
            os.setxattr(d / name, k, v)
        t = 1_500_000_000 + i * 86_400
        os.utime(d / name, (t, t))


def settle(m):
    """Wait until every upload is recorded, so that the computed attributes
    stop changing (the tree holds no image: processing leaves it pending)."""
    run([default_bin(), "sync", str(m.mnt), "--timeout", "60"])


def test_rsync_in_and_out(mvfs, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    want = user_attrs(src)
    assert len(want) == 3
    m = mvfs()
    lib = m.mnt / "library"
    run(["rsync", "-aX", "%s/" % src, "%s/" % lib])
    assert tree_state(lib) == tree_state(src)
    assert user_attrs(lib) == want

    out = tmp_path / "out"
    run(["rsync", "-aX", "%s/" % lib, "%s/" % out])
    assert tree_state(out) == tree_state(src)
    assert user_attrs(out) == want
    # the computed names are not listed, so they stay behind
    assert not [n for n in os.listxattr(out / "plain.txt") if n.startswith("user.mvault.")]

    # again from the tree without the computed names: nothing is unfiled
    os.mkdir(m.mnt / "collections" / "C")
    os.setxattr(lib / "plain.txt", "user.mvault.collection", b"C")
    run(["rsync", "-aX", "%s/" % src, "%s/" % lib])
    assert os.listdir(m.mnt / "collections" / "C") == ["plain.txt"]
    assert user_attrs(lib) == want
    m.unmount()


def test_rsync_backup_and_restore(mvfs, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    want = user_attrs(src)
    m = mvfs()
    lib = m.mnt / "library"
    run(["rsync", "-aX", "%s/" % src, "%s/" % lib])
    settle(m)

    backup = tmp_path / "backup"
    run(["rsync", "-aX", "%s/" % lib, "%s/" % backup])
    assert user_attrs(backup) == want
    ids = {n: os.getxattr(lib / n, "user.mvault.id") for n in os.listdir(lib)}

    # back into the same library: nothing to do, and nothing the second time
    r = run(["rsync", "-aX", "--delete", "-i", "%s/" % backup, "%s/" % lib])
    assert [ln for ln in r.stdout.splitlines() if ln.startswith(">f")] == [], r.stdout
    r = run(["rsync", "-aX", "--delete", "-i", "%s/" % backup, "%s/" % lib])
    assert r.stdout.strip() == "", r.stdout
    assert {n: os.getxattr(lib / n, "user.mvault.id") for n in os.listdir(lib)} == ids
    assert user_attrs(lib) == want
    m.unmount()

    # into a fresh library (a new database): other ids, the same files and attributes
    m2 = mvfs()
    lib2 = m2.mnt / "library"
    err, lines = log_lines_after(m2, lambda: run(["rsync", "-aX", "--delete", "%s/" % backup, "%s/" % lib2]))
    assert err is None
    assert tree_state(lib2) == tree_state(src)
    assert user_attrs(lib2) == want
    assert all(os.getxattr(lib2 / n, "user.mvault.id") != ids[n] for n in ids)
    # and a rerun there has nothing to do either
    r = run(["rsync", "-aX", "--delete", "-i", "%s/" % backup, "%s/" % lib2])
    assert r.stdout.strip() == "", r.stdout
    # a tool that writes a computed name it was given: accepted, unchanged, one line
    err, lines = log_lines_after(m2, lambda: os.setxattr(lib2 / "plain.txt", "user.mvault.id", ids["plain.txt"]))
    assert err is None
    assert os.getxattr(lib2 / "plain.txt", "user.mvault.id") != ids["plain.txt"]
    assert [ln for ln in lines if "'user.mvault.id'" in ln and "computes" in ln], lines
    m2.unmount()


def _acl(entries):
    """A system.posix_acl_access value: version 2, then (tag, perm, id)."""
    import struct
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


def test_posix_acls_are_refused_and_change_nothing(mvfs):
    """No ACLs: reading one is ENOTSUP, as on a filesystem without them, so
    `ls -l` asks one file and no other of the mount (it remembers the
    device).  An ACL that is only the mode sets the mode, seen at once (the
    kernel is told its attributes changed); one with a named user is refused
    with ENOTSUP and one log line, and the file and its mode stay as they
    were."""
    m = mvfs()
    f = m.mnt / "library" / "acl.jpg"
    f.write_bytes(b"a")
    os.chmod(f, 0o644)
    assert_errno(errno.ENOTSUP, os.getxattr, f, "system.posix_acl_access")
    assert_errno(errno.ENOTSUP, os.getxattr, m.mnt / "library", "system.posix_acl_default")
    # the same on the special nodes (a variant folder), without asking the database
    assert_errno(errno.ENOTSUP, os.getxattr, m.mnt / "library" / ".thumb", "system.posix_acl_access")
    assert_errno(errno.ENOTSUP, os.getxattr, m.mnt / "library" / ".thumb", "security.selinux")
    USER_OBJ, USER, GROUP_OBJ, MASK, OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
    os.setxattr(f, "system.posix_acl_access", _acl([(USER_OBJ, 6, 0xFFFFFFFF), (GROUP_OBJ, 0, 0xFFFFFFFF),
                                                    (OTHER, 0, 0xFFFFFFFF)]))
    assert os.stat(f).st_mode & 0o777 == 0o600
    extended = _acl([(USER_OBJ, 6, 0xFFFFFFFF), (USER, 4, 65534), (GROUP_OBJ, 4, 0xFFFFFFFF),
                     (MASK, 4, 0xFFFFFFFF), (OTHER, 4, 0xFFFFFFFF)])
    err, lines = log_lines_after(m, lambda: os.setxattr(f, "system.posix_acl_access", extended))
    assert err == errno.ENOTSUP, err
    assert any("system.posix_acl_access" in ln and "only user.*" in ln for ln in lines), lines
    assert os.stat(f).st_mode & 0o777 == 0o600
    assert f.read_bytes() == b"a"
    m.unmount()
