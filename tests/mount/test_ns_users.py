"""Users and row-level security: each mount acts for one user; two users
mounted at once on one database see nothing of each other, and SQL run as
the daemon's role (mvault_app) is held to the acting user's rows (issue 3)."""

import errno
import os

import pytest

from mvtest import assert_errno, check_consistency, fsync_path, q, run, sql, user_id

NO_CACHE = ["entry_timeout=0", "attr_timeout=0"]
USER_TABLES = ["memories", "memory_items", "memory_assets", "user_library", "user_collections",
               "galleries", "gallery_items", "workspace_assets", "upload_sessions",
               "asset_delete_jobs", "users"]


def populate(mnt, tag):
    """A library, a collection, a gallery, a workspace file and a trashed
    file, all named after tag."""
    lib = mnt / "library"
    for n in ("%s.jpg" % tag, "same.jpg", "%s-gone.jpg" % tag):
        (lib / n).write_bytes(("%s %s" % (tag, n)).encode() * 100)
        fsync_path(lib / n)
    os.mkdir(mnt / "collections" / ("C-" + tag))
    run(["mv", lib / ("%s.jpg" % tag), mnt / "collections" / ("C-" + tag) / ""])
    os.mkdir(mnt / "galleries" / ("G-" + tag))
    os.link(lib / "same.jpg", mnt / "galleries" / ("G-" + tag) / "same.jpg")
    (mnt / "workspace" / ("%s.png" % tag)).write_bytes(tag.encode())
    os.unlink(lib / ("%s-gone.jpg" % tag))


def view(mnt):
    out = {}
    for d in ("library", "workspace", ".trash", "collections", "galleries"):
        out[d] = sorted(os.listdir(mnt / d))
    for d in ("collections", "galleries"):
        for sub in out[d]:
            out["%s/%s" % (d, sub)] = sorted(os.listdir(mnt / d / sub))
    return out


def want_view(tag):
    return {"library": sorted(["%s.jpg" % tag, "same.jpg"]), "workspace": ["%s.png" % tag],
            ".trash": ["%s-gone.jpg" % tag], "collections": ["C-" + tag], "galleries": ["G-" + tag],
            "collections/C-" + tag: ["%s.jpg" % tag], "galleries/G-" + tag: ["same.jpg"]}


def all_inodes(mnt):
    found = set()
    for root, dirs, files in os.walk(mnt):
        for n in dirs + files:
            found.add(os.lstat(os.path.join(root, n)).st_ino)
    return found


@pytest.fixture
def two_users(mvfs):
    a = mvfs(extra_opts=["user=alice"] + NO_CACHE)
    b = mvfs(db=a.db, store=a.store, extra_opts=["user=bob"] + NO_CACHE)
    populate(a.mnt, "alice")
    populate(b.mnt, "bob")
    return a, b


def test_users_made_on_first_use(mvfs):
    a = mvfs(extra_opts=["user=carol"])
    assert user_id(a, "carol")
    assert "carol" in a.daemon.log_text()
    a.unmount()
    a2 = mvfs(db=a.db, store=a.store, extra_opts=["user=carol"])
    assert sql(a2, "SELECT count(*) FROM users WHERE name = 'carol'") == ["1"]
    a2.unmount()


def test_two_users_see_only_their_own(two_users):
    a, b = two_users
    assert view(a.mnt) == want_view("alice")
    assert view(b.mnt) == want_view("bob")
    # the same name in both libraries, each with its own bytes
    assert (a.mnt / "library" / "same.jpg").read_bytes().startswith(b"alice")
    assert (b.mnt / "library" / "same.jpg").read_bytes().startswith(b"bob")
    # names of the other user's things do not resolve
    for path in ("library/bob.jpg", "workspace/bob.png", ".trash/bob-gone.jpg",
                 "collections/C-bob", "galleries/G-bob"):
        assert_errno(errno.ENOENT, os.stat, a.mnt / path)
    assert_errno(errno.ENOENT, os.rmdir, a.mnt / "galleries" / "G-bob")
    assert_errno(errno.ENOENT, os.rename, a.mnt / "collections" / "C-bob", a.mnt / "collections" / "X")
    # a's gallery and collection names are free for b (per-user uniqueness)
    os.mkdir(b.mnt / "galleries" / "G-alice")
    assert sorted(os.listdir(a.mnt / "galleries")) == ["G-alice"]
    assert os.listdir(a.mnt / "galleries" / "G-alice") == ["same.jpg"]
    assert os.listdir(b.mnt / "galleries" / "G-alice") == []
    check_consistency(a)
    b.unmount()
    a.unmount()


def test_other_users_inodes_unreachable(two_users):
    a, b = two_users
    bob_inos = {int(x) for x in sql(a, "SELECT ino FROM memory_items WHERE user_id = %s"
                                       " UNION ALL SELECT ino FROM user_collections WHERE user_id = %s"
                                       " UNION ALL SELECT ino FROM galleries WHERE user_id = %s"
                                       % ((q(user_id(a, "bob")),) * 3))}
    assert len(bob_inos) >= 5
    seen = all_inodes(a.mnt)
    assert not seen & bob_inos, "alice's mount shows bob's inode numbers %s" % (seen & bob_inos)
    for ino in sorted(bob_inos):
        r = run(["find", a.mnt, "-inum", str(ino)], check=False)
        assert r.stdout.strip() == "", "find -inum %d in alice's mount: %s" % (ino, r.stdout)
    ls = run(["ls", "-iR", a.mnt]).stdout
    for ino in bob_inos:
        assert not any(line.split()[:1] == [str(ino)] for line in ls.splitlines()), ino
    # nor does alice's mount hand out bob's ids in xattrs
    bob_ids = set(sql(a, "SELECT memory_id::text FROM memory_items WHERE user_id = %s"
                         % q(user_id(a, "bob"))))
    for root, dirs, files in os.walk(a.mnt):
        for n in dirs + files:
            try:
                v = os.getxattr(os.path.join(root, n), "user.mvault.id").decode()
            except OSError:
                continue
            assert v not in bob_ids
    b.unmount()
    a.unmount()


def test_daemon_connections_are_under_rls(two_users):
    """Behavioural proof that the daemon's queries run under row-level
    security (as mvault_app), not as a role that bypasses it: a restrictive
    policy for mvault_app that hides one file hides it from the mount."""
    a, b = two_users
    sql(a, "CREATE POLICY test_hide ON memory_items AS RESTRICTIVE FOR SELECT TO mvault_app"
           " USING (display_name <> 'same.jpg')")
    try:
        assert "same.jpg" not in os.listdir(a.mnt / "library"), (
            "a policy for mvault_app does not apply to the daemon's queries: "
            "its connections bypass row-level security")
        assert_errno(errno.ENOENT, os.stat, a.mnt / "library" / "same.jpg")
    finally:
        sql(a, "DROP POLICY test_hide ON memory_items")
    assert "same.jpg" in os.listdir(a.mnt / "library")
    b.unmount()
    a.unmount()


def as_app(handle, uid, query):
    """Run query as mvault_app acting for uid (None: no user set); return
    the last line of output. Raises RuntimeError on an SQL error.  The
    session is the superuser's, a trusted one that may name the user it acts
    for (0014); what a user's own login role can do is test_isolation.py's."""
    pre = "SET ROLE mvault_app; "
    if uid:
        pre += "SELECT set_config('mvault.user_id', %s, false); " % q(uid)
    return handle.sql(pre + query)[-1:]


def test_sql_as_daemon_role(two_users):
    a, b = two_users
    ua, ub = user_id(a, "alice"), user_id(a, "bob")
    assert sql(a, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'mvault_app'") == ["f|f"]
    for t in USER_TABLES:
        assert sql(a, "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class"
                      " WHERE relname = %s" % q(t)) == ["t"], "%s: RLS not forced" % t

    # no user set: nothing (but the list of users, which the owner side sees)
    for t in USER_TABLES:
        if t != "users":
            assert as_app(a, None, "SELECT count(*) FROM %s" % t) == ["0"], t

    # acting for alice: exactly alice's rows
    owner = {"memories": "user_id", "memory_items": "user_id", "user_library": "user_id",
             "user_collections": "user_id", "galleries": "user_id", "gallery_items": "user_id",
             "workspace_assets": "user_id", "upload_sessions": "user_id", "users": "id"}
    for t, col in owner.items():
        want = sql(a, "SELECT count(*) FROM %s WHERE %s = %s" % (t, col, q(ua)))
        assert as_app(a, ua, "SELECT count(*) FROM %s" % t) == want, t
        assert as_app(a, ua, "SELECT count(*) FROM %s WHERE %s = %s" % (t, col, q(ub))) == ["0"], t
    want = sql(a, "SELECT count(*) FROM memory_assets x JOIN memories m ON m.id = x.memory_id"
                  " WHERE m.user_id = %s" % q(ua))
    assert as_app(a, ua, "SELECT count(*) FROM memory_assets") == want

    # bob's rows cannot be changed or deleted by alice
    bob_item = sql(a, "SELECT id FROM memory_items WHERE user_id = %s LIMIT 1" % q(ub))[0]
    bob_gallery = sql(a, "SELECT id FROM galleries WHERE user_id = %s" % q(ub))[0]
    for stmt in ("UPDATE memory_items SET display_name = 'hacked' WHERE id = %s" % q(bob_item),
                 "DELETE FROM galleries WHERE id = %s" % q(bob_gallery),
                 "UPDATE memory_assets SET lifecycle_status = 'tombstoned' WHERE memory_id IN"
                 " (SELECT id FROM memories WHERE user_id = %s)" % q(ub),
                 "DELETE FROM user_collections WHERE user_id = %s" % q(ub)):
        assert as_app(a, ua, "WITH x AS (%s RETURNING 1) SELECT count(*) FROM x" % stmt) == ["0"], stmt
    assert sql(a, "SELECT count(*) FROM memory_items WHERE display_name = 'hacked'") == ["0"]
    assert sql(a, "SELECT count(*) FROM galleries WHERE user_id = %s" % q(ub)) == ["1"]

    # nor can rows be made for bob, or moved to him
    for stmt in ("INSERT INTO memories (user_id, created_by) VALUES (%s, %s)" % (q(ub), q(ub)),
                 "INSERT INTO galleries (user_id, name) VALUES (%s, 'evil')" % q(ub),
                 "UPDATE galleries SET user_id = %s WHERE user_id = %s" % (q(ub), q(ua))):
        with pytest.raises(RuntimeError) as ei:
            as_app(a, ua, stmt)
        assert "row-level security" in str(ei.value), str(ei.value)
    # the role cannot move the clock
    with pytest.raises(RuntimeError):
        as_app(a, ua, "UPDATE mvault_clock SET skew = interval '1 day'")
    # sanity: alice can make her own
    assert as_app(a, ua, "WITH x AS (INSERT INTO galleries (user_id, name) VALUES (%s, 'ok')"
                         " RETURNING 1) SELECT count(*) FROM x" % q(ua)) == ["1"]
    assert "ok" in os.listdir(a.mnt / "galleries")
    assert "ok" not in os.listdir(b.mnt / "galleries")
    check_consistency(a)
    b.unmount()
    a.unmount()
