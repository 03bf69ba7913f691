"""collections/: folders of user_collections; a file is in at most one
collection and stays in library/; asset_count follows the rows (issue 3)."""

import errno
import os

from mvtest import (assert_errno, check_consistency, create_excl, fsync_path, memory_of, q, run,
                    sql)


def coll_of(m, mem):
    """Name of the collection a memory is in ('' for none)."""
    rows = sql(m, "SELECT coalesce(c.name, '') FROM user_library l LEFT JOIN user_collections c"
                  " ON c.id = l.collection_id WHERE l.memory_id = %s" % q(mem))
    assert len(rows) == 1, "user_library rows for %s: %r" % (mem, rows)
    return rows[0]


def counts(m):
    return dict(r.split("|") for r in sql(m, "SELECT name, asset_count FROM user_collections"))


def test_mkdir_rename_rmdir(mvfs):
    m = mvfs()
    cs = m.mnt / "collections"
    os.mkdir(cs / "Trips")
    assert os.listdir(cs) == ["Trips"]
    rows = sql(m, "SELECT id, ino, asset_count FROM user_collections WHERE name = 'Trips'")
    assert len(rows) == 1
    cid, cino, count = rows[0].split("|")
    assert count == "0"
    assert os.stat(cs / "Trips").st_ino == int(cino)
    assert os.getxattr(cs / "Trips", "user.mvault.id").decode() == cid
    assert_errno(errno.EEXIST, os.mkdir, cs / "Trips")

    run(["mv", cs / "Trips", cs / "Trips-2026"])
    assert os.listdir(cs) == ["Trips-2026"]
    assert sql(m, "SELECT id, ino FROM user_collections") == ["%s|%s" % (cid, cino)]
    assert sql(m, "SELECT name FROM user_collections") == ["Trips-2026"]
    assert os.stat(cs / "Trips-2026").st_ino == int(cino)

    os.rmdir(cs / "Trips-2026")
    assert os.listdir(cs) == []
    assert sql(m, "SELECT count(*) FROM user_collections") == ["0"]
    assert_errno(errno.ENOENT, os.rmdir, cs / "Trips-2026")
    m.unmount()


def test_rmdir_not_empty(mvfs):
    m = mvfs()
    cs = m.mnt / "collections"
    os.mkdir(cs / "C")
    (m.mnt / "library" / "a.jpg").write_bytes(b"a")
    run(["mv", m.mnt / "library" / "a.jpg", cs / "C" / ""])
    assert_errno(errno.ENOTEMPTY, os.rmdir, cs / "C")
    assert os.listdir(cs) == ["C"]
    assert os.listdir(cs / "C") == ["a.jpg"]
    assert counts(m) == {"C": "1"}
    check_consistency(m)
    m.unmount()


def test_rename_over_empty_collection_replaces_it(mvfs):
    m = mvfs()
    cs, lib = m.mnt / "collections", m.mnt / "library"
    for c in ("A", "B", "Full"):
        os.mkdir(cs / c)
    (lib / "x.jpg").write_bytes(b"x")
    (lib / "y.jpg").write_bytes(b"y")
    run(["mv", lib / "x.jpg", cs / "A" / ""])
    run(["mv", lib / "y.jpg", cs / "Full" / ""])
    a_id = sql(m, "SELECT id FROM user_collections WHERE name = 'A'")[0]

    os.rename(cs / "A", cs / "B")
    assert sorted(os.listdir(cs)) == ["B", "Full"]
    assert os.listdir(cs / "B") == ["x.jpg"]
    assert counts(m) == {"B": "1", "Full": "1"}
    assert sql(m, "SELECT id FROM user_collections WHERE name = 'B'") == [a_id]
    [mx] = memory_of(m, "x.jpg")
    assert coll_of(m, mx) == "B"

    # over a collection that shows files: refused, nothing changes
    assert_errno({errno.ENOTEMPTY, errno.EEXIST}, os.rename, cs / "B", cs / "Full")
    assert sorted(os.listdir(cs)) == ["B", "Full"]
    assert os.listdir(cs / "Full") == ["y.jpg"]
    assert counts(m) == {"B": "1", "Full": "1"}
    check_consistency(m)
    m.unmount()


def test_move_between_collections(mvfs):
    m = mvfs()
    cs, lib = m.mnt / "collections", m.mnt / "library"
    os.mkdir(cs / "Trips")
    os.mkdir(cs / "Other")
    (lib / "a.jpg").write_bytes(b"a" * 1000)
    (lib / "b.jpg").write_bytes(b"b" * 1000)
    ino = os.stat(lib / "a.jpg").st_ino
    [mem] = memory_of(m, "a.jpg")

    run(["mv", lib / "a.jpg", cs / "Trips" / ""])
    assert sorted(os.listdir(lib)) == ["a.jpg", "b.jpg"]      # it stays in library/
    assert os.listdir(cs / "Trips") == ["a.jpg"]
    assert os.stat(cs / "Trips" / "a.jpg").st_ino == ino
    assert os.stat(lib / "a.jpg").st_nlink == 2
    assert os.stat(lib / "b.jpg").st_nlink == 1
    assert coll_of(m, mem) == "Trips"
    assert counts(m) == {"Trips": "1", "Other": "0"}
    check_consistency(m)

    run(["mv", cs / "Trips" / "a.jpg", cs / "Other" / ""])
    assert os.listdir(cs / "Trips") == []
    assert os.listdir(cs / "Other") == ["a.jpg"]
    assert sorted(os.listdir(lib)) == ["a.jpg", "b.jpg"]
    assert coll_of(m, mem) == "Other"
    assert counts(m) == {"Trips": "0", "Other": "1"}
    assert (cs / "Other" / "a.jpg").read_bytes() == b"a" * 1000

    # at most one collection: moving b in and then a second time elsewhere
    run(["mv", lib / "b.jpg", cs / "Trips" / ""])
    [mb] = memory_of(m, "b.jpg")
    assert coll_of(m, mb) == "Trips"
    assert counts(m) == {"Trips": "1", "Other": "1"}
    check_consistency(m)
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert os.listdir(m2.mnt / "collections" / "Other") == ["a.jpg"]
    assert os.listdir(m2.mnt / "collections" / "Trips") == ["b.jpg"]
    assert sorted(os.listdir(m2.mnt / "library")) == ["a.jpg", "b.jpg"]
    m2.unmount()


def test_unfile_from_collection(mvfs):
    """A file leaves its collection (and stays in library/) by removing its
    user.mvault.collection attribute, and joins one by setting it.  `mv
    collections/A/x library/` cannot do it: library/x is the same inode, so
    coreutils mv refuses and rename(2) never reaches the filesystem."""
    m = mvfs()
    cs, lib = m.mnt / "collections", m.mnt / "library"
    os.mkdir(cs / "Trips")
    os.mkdir(cs / "Other")
    (lib / "a.jpg").write_bytes(b"a")
    run(["mv", lib / "a.jpg", cs / "Trips" / ""])
    [mem] = memory_of(m, "a.jpg")
    assert run(["getfattr", "-n", "user.mvault.collection", "--only-values", lib / "a.jpg"]).stdout == "Trips"

    run(["setfattr", "-x", "user.mvault.collection", cs / "Trips" / "a.jpg"])
    problems = []
    if os.listdir(cs / "Trips") != []:
        problems.append("Trips still lists %s" % os.listdir(cs / "Trips"))
    if os.listdir(lib) != ["a.jpg"]:
        problems.append("library/ lists %s" % os.listdir(lib))
    coll = coll_of(m, mem)
    if coll != "":
        problems.append("collection_id still points at %r" % coll)
    life = sql(m, "SELECT a.lifecycle_status FROM memory_items i JOIN memory_assets a"
                  " ON a.id = i.primary_asset_id WHERE i.memory_id = %s" % q(mem))
    if life != ["active"]:
        problems.append("lifecycle %s" % life)
    assert not problems, "; ".join(problems)
    r = run(["getfattr", "-n", "user.mvault.collection", lib / "a.jpg"], check=False)
    assert r.returncode != 0 and "No such attribute" in r.stderr, r

    run(["setfattr", "-n", "user.mvault.collection", "-v", "Other", lib / "a.jpg"])
    assert os.listdir(cs / "Other") == ["a.jpg"]
    assert counts(m) == {"Trips": "0", "Other": "1"}
    r = run(["setfattr", "-n", "user.mvault.collection", "-v", "Nope", lib / "a.jpg"], check=False)
    assert r.returncode != 0 and "No such file" in r.stderr, r
    run(["setfattr", "-x", "user.mvault.collection", lib / "a.jpg"])
    assert counts(m) == {"Trips": "0", "Other": "0"}
    check_consistency(m)
    m.unmount()


def test_create_in_collection(mvfs, tmp_path):
    m = mvfs()
    cs = m.mnt / "collections"
    os.mkdir(cs / "Trips")
    data = os.urandom(70_000)
    src = tmp_path / "new.jpg"
    src.write_bytes(data)
    run(["cp", src, cs / "Trips" / ""])
    fsync_path(cs / "Trips" / "new.jpg")
    assert os.listdir(cs / "Trips") == ["new.jpg"]
    assert os.listdir(m.mnt / "library") == ["new.jpg"]
    assert (m.mnt / "library" / "new.jpg").read_bytes() == data
    assert os.stat(cs / "Trips" / "new.jpg").st_ino == os.stat(m.mnt / "library" / "new.jpg").st_ino
    [mem] = memory_of(m, "new.jpg")
    assert coll_of(m, mem) == "Trips"
    assert counts(m) == {"Trips": "1"}
    # the name belongs to library/ too
    assert_errno(errno.EEXIST, create_excl, m.mnt / "library" / "new.jpg", b"x")
    check_consistency(m)
    m.unmount()


def test_unlink_in_collection_tombstones(mvfs):
    m = mvfs()
    cs, lib = m.mnt / "collections", m.mnt / "library"
    os.mkdir(cs / "Trips")
    data = os.urandom(30_000)
    (lib / "a.jpg").write_bytes(data)
    fsync_path(lib / "a.jpg")
    run(["mv", lib / "a.jpg", cs / "Trips" / ""])
    [mem] = memory_of(m, "a.jpg")

    os.unlink(cs / "Trips" / "a.jpg")
    assert os.listdir(cs / "Trips") == []
    assert os.listdir(lib) == []
    assert os.listdir(m.mnt / ".trash") == ["a.jpg"]
    assert sql(m, "SELECT lifecycle_status, tombstoned_at IS NOT NULL FROM memory_assets"
                  " WHERE memory_id = %s" % q(mem)) == ["tombstoned|t"]
    assert sql(m, "SELECT b.ref_count FROM blobs b JOIN memory_assets a ON a.blob_id = b.id"
                  " WHERE a.memory_id = %s" % q(mem)) == ["0"]
    assert sql(m, "SELECT j.status FROM asset_delete_jobs j JOIN memory_assets a"
                  " ON a.id = j.asset_id WHERE a.memory_id = %s" % q(mem)) == ["pending"]
    # it shows no files now: rmdir works
    os.rmdir(cs / "Trips")
    assert os.listdir(cs) == []
    check_consistency(m)
    m.unmount()


def test_rename_inside_collection(mvfs):
    m = mvfs()
    cs, lib = m.mnt / "collections", m.mnt / "library"
    os.mkdir(cs / "T")
    (lib / "a.jpg").write_bytes(b"a")
    run(["mv", lib / "a.jpg", cs / "T" / ""])
    [mem] = memory_of(m, "a.jpg")
    os.rename(cs / "T" / "a.jpg", cs / "T" / "b.jpg")
    assert os.listdir(cs / "T") == ["b.jpg"]
    assert os.listdir(lib) == ["b.jpg"]
    assert coll_of(m, mem) == "T"
    assert counts(m) == {"T": "1"}
    check_consistency(m)
    m.unmount()


def test_collection_folder_cannot_become_a_gallery(mvfs):
    m = mvfs()
    os.mkdir(m.mnt / "collections" / "C")
    assert_errno({errno.EPERM, errno.EXDEV}, os.rename, m.mnt / "collections" / "C",
                 m.mnt / "galleries" / "C")
    assert os.listdir(m.mnt / "collections") == ["C"]
    assert os.listdir(m.mnt / "galleries") == []
    m.unmount()


def test_names_learned_in_a_folder_follow_files_filed_through_views(mvfs, tmp_path):
    """A lookup that finds no name in library/ makes the mount learn all of
    library/'s names (later misses need no database).  A file that reaches
    library/ through a collection -- made there, or moved there from
    workspace/ -- is found by its name in library/ all the same.  The
    embedded default: nothing from elsewhere makes it forget (push does)."""
    from test_embedded import embedded_env
    m = mvfs(embedded=True, env=embedded_env(tmp_path), timeout=60)
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(b"a")
    assert not os.path.exists(lib / "nothing.jpg")      # library/'s names are learned now
    os.mkdir(m.mnt / "collections" / "C")
    (m.mnt / "collections" / "C" / "made.jpg").write_bytes(b"c")
    assert (lib / "made.jpg").read_bytes() == b"c"
    (m.mnt / "workspace" / "w.jpg").write_bytes(b"w")
    run(["mv", m.mnt / "workspace" / "w.jpg", m.mnt / "collections" / "C" / ""])
    assert (lib / "w.jpg").read_bytes() == b"w"
    assert not os.path.exists(lib / "still-nothing.jpg")
    m.unmount()
