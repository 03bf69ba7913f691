"""The web application's tags, favourite flag and title as the attributes
desktop tools read and write (issue 15; 0025_xdg_attrs.sql):
user.xdg.tags <-> user_library.tags, user.xdg.comment <-> custom_title,
user.baloo.rating <-> is_favorite (the stars kept beside it)."""

import errno
import os

from mvtest import assert_errno, log_lines_after, q, run, sql

TAGS, COMMENT, RATING = "user.xdg.tags", "user.xdg.comment", "user.baloo.rating"
XDG = {TAGS, COMMENT, RATING}


def row(m, name):
    """(tags joined with '|', custom_title or '<null>', is_favorite 't'/'f')
    of the library row of file name."""
    r = sql(m, "SELECT array_to_string(l.tags, '|'), coalesce(l.custom_title, '<null>'), l.is_favorite"
               " FROM user_library l JOIN memory_items i ON i.memory_id = l.memory_id"
               " WHERE i.display_name = %s" % q(name))
    assert len(r) == 1, r
    return tuple(r[0].rsplit("|", 2))     # psql -At joins columns with '|' too


def getfattr(path, name):
    r = run(["getfattr", "--only-values", "-n", name, path], check=False)
    return r.stdout if r.returncode == 0 else None


def generic_rows(m):
    return sql(m, "SELECT name FROM inode_xattrs WHERE name IN (%s) ORDER BY name"
               % ", ".join(q(n) for n in sorted(XDG)))


def test_setfattr_changes_the_row(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "beach.jpg"
    f.write_bytes(b"b" * 1000)
    run(["setfattr", "-n", TAGS, "-v", "holiday, beach,,holiday,sea", f])
    run(["setfattr", "-n", COMMENT, "-v", "Sunset at Ölüdeniz", f])
    run(["setfattr", "-n", RATING, "-v", "6", f])
    assert row(m, "beach.jpg") == ("holiday|beach|sea", "Sunset at Ölüdeniz", "t")
    # read back as the web application's row makes them (KDE's format)
    assert getfattr(f, TAGS) == "holiday,beach,sea"
    assert getfattr(f, COMMENT) == "Sunset at Ölüdeniz"
    assert getfattr(f, RATING) == "6"
    assert XDG <= set(os.listxattr(f))
    out = run(["getfattr", "-d", f]).stdout
    assert 'user.xdg.tags="holiday,beach,sea"' in out and 'user.baloo.rating="6"' in out, out
    assert generic_rows(m) == []            # one place for each value: the row

    # XATTR_CREATE / XATTR_REPLACE as on any attribute
    assert_errno(errno.EEXIST, os.setxattr, f, TAGS, b"x", os.XATTR_CREATE)
    os.setxattr(f, TAGS, b"sea", os.XATTR_REPLACE)
    assert row(m, "beach.jpg")[0] == "sea"

    # removexattr clears the column; nothing is listed then
    for name in (TAGS, COMMENT, RATING):
        os.removexattr(f, name)
        assert_errno(errno.ENODATA, os.getxattr, f, name)
        assert_errno(errno.ENODATA, os.removexattr, f, name)
    assert row(m, "beach.jpg") == ("", "<null>", "f")
    assert not XDG & set(os.listxattr(f))
    assert_errno(errno.ENODATA, os.setxattr, f, TAGS, b"x", os.XATTR_REPLACE)
    # rating 0 (Dolphin's "no stars") unmakes a favourite too
    os.setxattr(f, RATING, b"10")
    assert row(m, "beach.jpg")[2] == "t"
    os.setxattr(f, RATING, b"0")
    assert row(m, "beach.jpg")[2] == "f"
    assert_errno(errno.ENODATA, os.getxattr, f, RATING)
    m.unmount()


def test_web_app_changes_show(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "cat.jpg"
    f.write_bytes(b"c" * 1000)
    run(["setfattr", "-n", RATING, "-v", "4", f])
    assert getfattr(f, RATING) == "4"
    where = "memory_id = (SELECT memory_id FROM memory_items WHERE display_name = 'cat.jpg')"
    sql(m, "UPDATE user_library SET tags = '{pets,\"my cat\"}', custom_title = 'Mimi',"
           " is_favorite = false WHERE " + where)
    assert getfattr(f, TAGS) == "pets,my cat"
    assert getfattr(f, COMMENT) == "Mimi"
    assert getfattr(f, RATING) is None
    assert set(os.listxattr(f)) & XDG == {TAGS, COMMENT}
    # a favourite the web application makes reads as five stars (the four
    # given before were forgotten with the flag)
    sql(m, "UPDATE user_library SET is_favorite = true, tags = '{}', custom_title = NULL WHERE " + where)
    assert getfattr(f, RATING) == "10"
    assert getfattr(f, TAGS) is None and getfattr(f, COMMENT) is None
    assert set(os.listxattr(f)) & XDG == {RATING}
    m.unmount()


def test_bad_values(mvfs):
    m = mvfs()
    f = m.mnt / "library" / "x.jpg"
    f.write_bytes(b"x" * 100)
    os.setxattr(f, TAGS, b"keep")
    bad = [
        (TAGS, b"ok,\xff\xfe", errno.EINVAL),               # not UTF-8
        (TAGS, b"a\x01b", errno.EINVAL),                    # a control character
        (TAGS, b"a," + b"t" * 256, errno.E2BIG),            # one tag too long
        (TAGS, b"t," * 4097, errno.E2BIG),                  # the whole value too long
        (COMMENT, b"\xc3(", errno.EINVAL),
        (COMMENT, "é".encode() * 2049, errno.E2BIG),
        (RATING, b"11", errno.ERANGE),
        (RATING, b"-2", errno.ERANGE),
        (RATING, b"five", errno.EINVAL),
        (RATING, b"", errno.EINVAL),
    ]
    for name, value, want in bad:
        err, lines = log_lines_after(m, lambda: os.setxattr(f, name, value))
        assert err == want, (name, value[:20], errno.errorcode.get(err), lines)
        said = [ln for ln in lines if "'%s'" % name in ln]
        assert len(said) == 1, (name, value[:20], lines)
    assert row(m, "x.jpg") == ("keep", "<null>", "f")
    # a title may hold line breaks (Dolphin's comment box)
    os.setxattr(f, COMMENT, b"two\nlines")
    assert os.getxattr(f, COMMENT) == b"two\nlines"
    m.unmount()


def test_rsync_carries_tags(mvfs, tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "a.jpg").write_bytes(os.urandom(2000))
    (src / "b.jpg").write_bytes(os.urandom(3000))
    os.setxattr(src / "a.jpg", TAGS, b"trip,2023")
    os.setxattr(src / "a.jpg", RATING, b"8")
    os.setxattr(src / "b.jpg", COMMENT, b"Harbour")
    m = mvfs()
    lib = m.mnt / "library"
    run(["rsync", "-aX", "%s/" % src, "%s/" % lib])
    assert row(m, "a.jpg") == ("trip|2023", "<null>", "t")
    assert row(m, "b.jpg") == ("", "Harbour", "f")

    # what the web application changes goes out with rsync -aX and cp
    sql(m, "UPDATE user_library SET tags = '{boat}' WHERE memory_id ="
           " (SELECT memory_id FROM memory_items WHERE display_name = 'b.jpg')")
    run(["rsync", "-aX", "%s/" % lib, "%s/" % out])
    assert os.getxattr(out / "a.jpg", TAGS) == b"trip,2023"
    assert os.getxattr(out / "a.jpg", RATING) == b"8"
    assert os.getxattr(out / "b.jpg", TAGS) == b"boat"
    assert os.getxattr(out / "b.jpg", COMMENT) == b"Harbour"
    run(["cp", "--preserve=xattr", lib / "b.jpg", tmp_path / "copy.jpg"])
    assert os.getxattr(tmp_path / "copy.jpg", TAGS) == b"boat"

    # a changed file comes in again through rsync's temp file and a rename
    # over it: the memory keeps its row, with the tags the copy carried
    (out / "a.jpg").write_bytes(os.urandom(2500))
    os.setxattr(out / "a.jpg", TAGS, b"trip,2024")
    mem = sql(m, "SELECT memory_id FROM memory_items WHERE display_name = 'a.jpg'")
    run(["rsync", "-aX", "%s/" % out, "%s/" % lib])
    assert sql(m, "SELECT memory_id FROM memory_items WHERE display_name = 'a.jpg'") == mem
    assert row(m, "a.jpg") == ("trip|2024", "<null>", "t")
    assert os.getxattr(lib / "a.jpg", TAGS) == b"trip,2024"
    # ... and a tool that knows nothing of attributes keeps the web app's
    (out / "b.jpg").write_bytes(os.urandom(3500))
    run(["rsync", "-a", "%s/b.jpg" % out, "%s/" % lib])
    assert row(m, "b.jpg") == ("boat", "Harbour", "f")
    assert generic_rows(m) == []
    m.unmount()


def test_workspace_file_keeps_them_into_library(mvfs):
    m = mvfs()
    w = m.mnt / "workspace" / "draft.jpg"
    w.write_bytes(b"d" * 500)
    # no library row yet: kept as any user.* attribute, checked all the same
    os.setxattr(w, TAGS, b"draft")
    os.setxattr(w, RATING, b"2")
    assert_errno(errno.ERANGE, os.setxattr, w, RATING, b"12")
    assert os.getxattr(w, TAGS) == b"draft"
    assert generic_rows(m) == [RATING, TAGS]
    run(["mv", w, m.mnt / "library" / ""])
    f = m.mnt / "library" / "draft.jpg"
    assert row(m, "draft.jpg") == ("draft", "<null>", "t")
    assert os.getxattr(f, TAGS) == b"draft"
    assert os.getxattr(f, RATING) == b"2"
    assert generic_rows(m) == []
    m.unmount()
