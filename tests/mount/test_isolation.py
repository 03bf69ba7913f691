"""Issue 12: users kept apart by the database itself, on a PostgreSQL whose
owner role has CREATEROLE and nothing more (what managed services give).

The owner migrates and adds alice and bob (`mvaultfs user add`); each mount
logs in as its user's own role with a password from a passfile. Then alice,
speaking SQL with her own credentials, tries every table, view and function
of the schema, with set_config and SET ROLE tricks, and must get nothing of
bob's: no row, no name, no id, no hash, and no change to his rows."""
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from pgtest import PSQL, SUPERUSER, PgServer
from mvtest import SANITIZED, fsync_path, run

OWNER = "owner"


class Cluster:
    def __init__(self, tmp):
        self.pg = PgServer().start()
        self.tmp = tmp
        hba = Path(self.pg.data) / "pg_hba.conf"
        hba.write_text("local all all trust\n"
                       "host all %s 127.0.0.1/32 trust\n"
                       "host all %s 127.0.0.1/32 trust\n"
                       "host all all 127.0.0.1/32 scram-sha-256\n" % (SUPERUSER, OWNER))
        self.pg._pg(["pg_ctl", "-D", self.pg.data, "reload"])
        self.pg.sql("postgres", "CREATE ROLE %s LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS" % OWNER)
        self.pg.sql("postgres", "CREATE DATABASE lib OWNER %s" % OWNER)
        self.db = "lib"

    def dsn(self, role):
        return "postgresql://%s@127.0.0.1:%d/%s" % (role, self.pg.port, self.db)

    def psql(self, role, query, passfile=None, check=True):
        """psql -At as ROLE (its password from PASSFILE); the output lines,
        or (check=False) the completed process."""
        env = dict(os.environ, PGPASSFILE=str(passfile or "/nonexistent"))
        env.pop("PGPASSWORD", None)
        r = subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.pg.port), "-U", role, "-d", self.db, "-c", query],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60)
        if not check:
            return r
        assert r.returncode == 0, "psql as %s failed: %s\nquery: %s" % (role, r.stderr, query)
        return r.stdout.splitlines()

    def psql_each(self, role, queries, passfile=None):
        """QUERIES as ROLE (its password from PASSFILE) in one session, each
        from a new session's state (DISCARD ALL: no transaction, role or
        setting left by the one before), errors not stopping the rest: the
        output of each, stdout and stderr.  One login instead of one each
        (a SCRAM login costs tens of milliseconds)."""
        script = []
        for i, q in enumerate(queries):
            script += ["\\echo @@@%d" % i, "ROLLBACK;", "DISCARD ALL;", q.rstrip().rstrip(";") + ";"]
        env = dict(os.environ, PGPASSFILE=str(passfile or "/nonexistent"))
        env.pop("PGPASSWORD", None)
        r = subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=0", "-h", "127.0.0.1", "-p", str(self.pg.port),
                            "-U", role, "-d", self.db, "-f", "-"], input="\n".join(script) + "\n",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=300)
        parts = re.split(r"^@@@(\d+)\n", r.stdout, flags=re.M)
        out = [None] * len(queries)
        for k in range(1, len(parts), 2):
            out[int(parts[k])] = parts[k + 1]
        assert None not in out, "psql as %s stopped early:\n%s" % (role, r.stdout[-2000:])
        return out

    def su(self, query):
        return self.pg.sql(self.db, query)

    def stop(self):
        self.pg.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def mvaultfs(*args, check=True):
    from pgtest import default_bin
    return run([default_bin()] + list(args), check=check, timeout=120)


def add_user(cluster, name, tmp_path):
    passfile = tmp_path / ("%s.pgpass" % name)
    r = mvaultfs("user", "add", name, "-o", "db=%s,pgpass=%s" % (cluster.dsn(OWNER), passfile))
    assert "logs in as database role '%s'" % name in r.stdout, r.stdout
    assert oct(passfile.stat().st_mode & 0o777) == "0o600"
    return passfile


def mount_as(mvfs, cluster, name, pgpass):
    return mvfs(db=cluster.dsn(name), env={"PGPASSFILE": pgpass})


def passfile(tmp_path, role, password):
    """A ~/.pgpass-format file (mode 0600) giving ROLE's PASSWORD anywhere."""
    f = tmp_path / ("%s-%s.pgpass" % (role, len(password)))
    f.write_text("*:*:*:%s:%s\n" % (role, password))
    f.chmod(0o600)
    return f


def test_owner_without_superuser_migrates_adds_users_and_mounts(mvfs, cluster, tmp_path):
    r = mvaultfs("db", "migrate", "-o", "db=" + cluster.dsn(OWNER))
    assert "applied migration 0014_login_roles" in r.stderr + r.stdout
    alice_pw = add_user(cluster, "alice", tmp_path)
    bob_pw = add_user(cluster, "bob", tmp_path)

    a = mount_as(mvfs, cluster, "alice", alice_pw)
    b = mount_as(mvfs, cluster, "bob", bob_pw)
    (a.mnt / "library" / "alice.jpg").write_bytes(b"alice's photo")
    (b.mnt / "library" / "bob.jpg").write_bytes(b"bob's photo")
    assert os.listdir(a.mnt / "library") == ["alice.jpg"]
    assert os.listdir(b.mnt / "library") == ["bob.jpg"]
    assert (a.mnt / "library" / "alice.jpg").read_bytes() == b"alice's photo"
    assert "for user 'alice'" in a.log_text()
    a.unmount()
    b.unmount()


def test_a_role_acts_for_its_own_user_only(mvfs, cluster, tmp_path):
    mvaultfs("db", "migrate", "-o", "db=" + cluster.dsn(OWNER))
    alice_pw = add_user(cluster, "alice", tmp_path)
    add_user(cluster, "bob", tmp_path)
    # -o user=bob with alice's role: refused, with the reason
    m = mvfs(db=cluster.dsn("alice"), env={"PGPASSFILE": alice_pw}, extra_opts=["user=bob"], wait=False)
    assert m.wait_exit(30) == 1
    assert "acts for user 'alice' only, not 'bob'" in m.log_text()
    # a role that is nobody's (made by hand) sees no library at all
    cluster.su("CREATE ROLE mallory LOGIN PASSWORD 'pw'; GRANT mvault_app TO mallory")
    m = mvfs(db=cluster.dsn("mallory"), env={"PGPASSFILE": passfile(tmp_path, "mallory", "pw")}, wait=False)
    assert m.wait_exit(30) == 1
    assert "acts for no mvaultfs user" in m.log_text()
    # a wrong password: a clear error, exit status 1
    bad = passfile(tmp_path, "alice", "not-the-password")
    m = mvfs(db=cluster.dsn("alice"), env={"PGPASSFILE": bad}, wait=False)
    assert m.wait_exit(30) == 1
    assert "password authentication failed" in m.log_text()
    # the old shared role cannot log in any more
    r = cluster.psql("mvault_app", "SELECT 1", check=False)
    assert r.returncode != 0


def _tables(cluster):
    return cluster.su("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 1")


def _functions(cluster):
    """(name, argument types) of every function of the schema."""
    rows = cluster.su("SELECT p.proname || '|' || coalesce(array_to_string(p.proargtypes::regtype[], ','), '')"
                      " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                      " WHERE n.nspname = 'public' AND p.prokind = 'f'"
                      "   AND p.prorettype <> 'trigger'::regtype ORDER BY 1")
    return [tuple(r.split("|", 1)) for r in rows]


def _bob_snapshot(cluster, bob_id):
    """Every row of bob's, as text, read by the superuser."""
    out = []
    for t in _tables(cluster):
        cols = cluster.su("SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = 'public.%s'::regclass"
                          " AND attnum > 0 AND NOT attisdropped AND attname = 'user_id'" % t)
        if cols and cols[0]:
            out += ["%s: %s" % (t, r) for r in cluster.su(
                "SELECT x::text FROM public.%s x WHERE user_id = '%s' ORDER BY 1" % (t, bob_id))]
    return out


def _value_for(typ, bob):
    return {"uuid": "'%s'" % bob["id"], "text": "'%s'" % bob["name"], "name": "'bob'",
            "bigint": str(bob["ino"]), "integer": "1", "boolean": "true", "jsonb": "'{}'",
            "bytea": "'\\x00'", "timestamp with time zone": "now()", "interval": "'1 day'",
            "smallint": "1", "text[]": "ARRAY['%s']" % bob["name"], "uuid[]": "ARRAY['%s'::uuid]" % bob["id"]
            }.get(typ, "NULL")


@pytest.mark.skipif(SANITIZED, reason="alice's SQL tries the database's policy, not the daemon's code, which the"
                                       " other tests of this module run under the sanitizers")
def test_alice_with_her_credentials_gets_nothing_of_bobs(mvfs, cluster, tmp_path):
    """The attacks of issue 12, with alice's own login and SQL."""
    mvaultfs("db", "migrate", "-o", "db=" + cluster.dsn(OWNER))
    alice_pw = add_user(cluster, "alice", tmp_path)
    bob_pw = add_user(cluster, "bob", tmp_path)
    a = mount_as(mvfs, cluster, "alice", alice_pw)
    b = mount_as(mvfs, cluster, "bob", bob_pw)
    secret = b"bob's secret photo " * 50
    (b.mnt / "library" / "Holidays").mkdir()
    (b.mnt / "library" / "Holidays" / "bob-secret-name.jpg").write_bytes(secret)
    (a.mnt / "library" / "alice.jpg").write_bytes(b"alice's")
    # and one in bob's trash (restorable: its blob must not be forgotten)
    (b.mnt / "library" / "bob-trashed.jpg").write_bytes(b"bob's trashed photo " * 40)
    mvaultfs("sync", str(b.mnt))
    os.unlink(b.mnt / "library" / "bob-trashed.jpg")
    bob_id = cluster.su("SELECT id FROM users WHERE name = 'bob'")[0]
    bob_hash = hashlib.sha256(secret).hexdigest()
    bob_ino = cluster.su("SELECT ino FROM memory_items WHERE display_name = 'bob-secret-name.jpg'")[0]
    markers = [bob_id, "bob-secret-name", "Holidays", bob_hash]
    before = _bob_snapshot(cluster, bob_id)
    assert before, "bob has rows"

    def as_alice(query, check=False):
        r = cluster.psql("alice", query, passfile=alice_pw, check=False)
        text = r.stdout + r.stderr
        leaked = [mk for mk in markers if mk in text]
        assert not leaked, "alice saw %s with: %s\n%s" % (leaked, query, text)
        return r

    def as_alice_each(queries):
        """The same for many queries, in one of her sessions."""
        outs = cluster.psql_each("alice", queries, passfile=alice_pw)
        for query, text in zip(queries, outs):
            leaked = [mk for mk in markers if mk in text]
            assert not leaked, "alice saw %s with: %s\n%s" % (leaked, query, text)
        return outs

    # every table and view, read plainly, after naming bob in the setting,
    # and after SET ROLE to every role she may become
    name_bob = "SELECT 1 FROM set_config('mvault.user_id', '%s', false);" % bob_id
    tricks = ["", name_bob, "SET ROLE mvault_app; " + name_bob]
    queries = []
    for t in _tables(cluster):
        for trick in tricks:
            queries.append("%s SELECT * FROM public.%s" % (trick, t))
            queries.append("%s SELECT count(*) FROM public.%s WHERE %s::text LIKE '%%%s%%'" % (trick, t, t, bob_id[:8]))
    # becoming the owner side or the job role is not hers
    for role in (OWNER, "mvault_admin", "mvault_jobs", SUPERUSER):
        r = as_alice("SET ROLE %s" % role)
        assert r.returncode != 0 and "permission denied" in r.stderr, (role, r.stderr)
    # writes: every table, no WHERE, in a transaction that is then undone
    for t in _tables(cluster):
        queries.append("BEGIN; %s DELETE FROM public.%s RETURNING *; ROLLBACK" % (name_bob, t))
        queries.append("BEGIN; UPDATE public.%s SET user_id = user_id RETURNING *; ROLLBACK" % t)
    as_alice_each(queries)
    # guessing bob's content hash
    for t, col in (("memory_assets", "content_hash"), ("blobs", "content_hash")):
        r = as_alice("SELECT count(*) FROM public.%s WHERE %s = '%s'" % (t, col, bob_hash))
        assert r.returncode != 0 or r.stdout.strip() == "0", (t, r.stdout, r.stderr)
    # every function, with bob's ids, name and inode number wherever they fit
    bob = {"id": bob_id, "name": "bob", "ino": bob_ino}
    bob_ids = cluster.su("SELECT b.id FROM blobs b WHERE b.user_id = '%s'"
                         " UNION ALL SELECT a.id FROM memory_assets a JOIN memories m ON m.id = a.memory_id"
                         "  WHERE m.user_id = '%s'"
                         " UNION ALL SELECT id FROM memories WHERE user_id = '%s'" % (bob_id, bob_id, bob_id))
    assert len(bob_ids) >= 3, bob_ids
    markers += bob_ids
    queries = []
    for name, args in _functions(cluster):
        if name in ("mvfs_analyze",):
            continue
        types = [x for x in args.split(",") if x]
        call = "SELECT * FROM public.%s(%s)" % (name, ", ".join(_value_for(x, bob) for x in types))
        for trick in tricks:
            queries.append("BEGIN; %s %s; COMMIT" % (trick, call))
        # and with the ids of bob's rows, had she learnt them
        if "uuid" in types:
            for other in bob_ids:
                ids = dict(bob, id=other)
                queries.append("SELECT * FROM public.%s(%s)" % (name, ", ".join(_value_for(x, ids) for x in types)))
    as_alice_each(queries)
    after = _bob_snapshot(cluster, bob_id)
    changed = [x for x in before if x not in after] + [x for x in after if x not in before]
    # only times that bob's own daemon moves may differ
    changed = [x for x in changed if not re.match(r"^(upload_sessions|idempotency_keys):", x)]
    assert changed == [], "alice changed bob's rows:\n%s" % "\n".join(changed)
    # and bob's files read as before through his mount, the trashed one too
    assert (b.mnt / "library" / "Holidays" / "bob-secret-name.jpg").read_bytes() == secret
    assert (b.mnt / ".trash" / "bob-trashed.jpg").read_bytes() == b"bob's trashed photo " * 40
    assert os.listdir(a.mnt / "library") == ["alice.jpg"]
    a.unmount()
    b.unmount()


def test_user_add_roles_passwords_and_refusals(mvfs, cluster, tmp_path):
    mvaultfs("db", "migrate", "-o", "db=" + cluster.dsn(OWNER))
    alice_pw = add_user(cluster, "alice", tmp_path)
    # a second role for alice (another machine), shown on stdout
    r = mvaultfs("user", "add", "alice", "-o", "db=%s,role=alice_laptop" % cluster.dsn(OWNER))
    line = r.stdout.strip().splitlines()[-1]
    assert re.match(r"^127\.0\.0\.1:%d:lib:alice_laptop:[A-Za-z0-9_-]{32}$" % cluster.pg.port, line), r.stdout
    laptop = passfile(tmp_path, "alice_laptop", line.rsplit(":", 1)[1])
    m1 = mvfs(db=cluster.dsn("alice"), env={"PGPASSFILE": alice_pw})
    (m1.mnt / "library" / "from-desktop.jpg").write_bytes(b"1")
    fsync_path(m1.mnt / "library" / "from-desktop.jpg")    # uploaded: other mounts list it from then on
    m1.unmount()
    m2 = mvfs(db=cluster.dsn("alice_laptop"), env={"PGPASSFILE": laptop})
    assert os.listdir(m2.mnt / "library") == ["from-desktop.jpg"]
    m2.unmount()
    # no_password keeps the password; a new run without it changes it
    mvaultfs("user", "add", "alice", "-o", "db=%s,no_password" % cluster.dsn(OWNER))
    assert cluster.psql("alice", "SELECT current_user", passfile=alice_pw) == ["alice"]
    mvaultfs("user", "add", "alice", "-o", "db=%s" % cluster.dsn(OWNER))
    assert cluster.psql("alice", "SELECT 1", passfile=alice_pw, check=False).returncode != 0
    # alice cannot make users, nor take another user's role
    r = mvaultfs("user", "add", "eve", "-o", "db=%s,db_passfile=%s,pgpass=%s"
                 % (cluster.dsn("alice_laptop"), laptop, tmp_path / "x"), check=False)
    assert r.returncode == 1 and "owner role" in r.stderr, r.stderr
    add_user(cluster, "bob", tmp_path)
    r = mvaultfs("user", "add", "bob", "-o", "db=%s,role=alice_laptop" % cluster.dsn(OWNER), check=False)
    assert r.returncode == 1 and "another user" in r.stderr, r.stderr
    # nor can the owner hand a user a role with more rights than a user's
    r = mvaultfs("user", "add", "carol", "-o", "db=%s,role=%s" % (cluster.dsn(OWNER), OWNER), check=False)
    assert r.returncode == 1 and "more rights" in r.stderr, r.stderr


def test_worker_role_runs_every_users_jobs_and_reads_no_names(mvfs, cluster, tmp_path):
    """`mvaultfs user add w -o worker`: a role for `mvaultfs worker`. It makes
    alice's and bob's variants (acting for each job's user), and with psql
    it can read none of their names."""
    from imgtest import Worker, jpeg, wait_listed
    mvaultfs("db", "migrate", "-o", "db=" + cluster.dsn(OWNER))
    alice_pw = add_user(cluster, "alice", tmp_path)
    bob_pw = add_user(cluster, "bob", tmp_path)
    wpass = tmp_path / "worker.pgpass"
    r = mvaultfs("user", "add", "jobs1", "-o", "db=%s,worker,pgpass=%s" % (cluster.dsn(OWNER), wpass))
    assert "role for mvaultfs worker" in r.stdout, r.stdout
    a = mvfs(db=cluster.dsn("alice"), env={"PGPASSFILE": alice_pw}, extra_opts=["workers=0"])
    b = mvfs(db=cluster.dsn("bob"), env={"PGPASSFILE": bob_pw}, extra_opts=["workers=0"], store=a.store)
    (a.mnt / "library" / "alice-secret-name.jpg").write_bytes(jpeg(400, 300, seed=1))
    (b.mnt / "library" / "bob-secret-name.jpg").write_bytes(jpeg(300, 400, seed=2))

    class As:
        dsn, store = cluster.dsn("jobs1"), a.store
    w = Worker(As, tmp_path, ["workers=1"], env={"PGPASSFILE": str(wpass)})
    try:
        assert wait_listed(a.mnt / "library" / ".thumb", ["alice-secret-name.jpg.webp"]) == \
            ["alice-secret-name.jpg.webp"], w.text()
        assert wait_listed(b.mnt / "library" / ".thumb", ["bob-secret-name.jpg.webp"]) == \
            ["bob-secret-name.jpg.webp"], w.text()
    finally:
        assert w.stop() == 0, w.text()
    assert "every user" in w.text()
    assert "secret-name" not in w.text()
    # with psql, as the worker: no names, however asked
    uid = cluster.su("SELECT id FROM users WHERE name = 'alice'")[0]
    for trick in ("", "SELECT 1 FROM set_config('mvault.user_id', '%s', false);" % uid):
        for q in ("SELECT display_name FROM memory_items", "SELECT * FROM memory_items",
                  "SELECT name FROM folders", "SELECT title FROM memories", "SELECT name, value FROM inode_xattrs",
                  "SELECT mvault_item_name(id) FROM memory_items"):
            r = cluster.psql("jobs1", trick + q, passfile=wpass, check=False)
            assert "secret-name" not in r.stdout + r.stderr, (q, r.stdout)
            assert r.returncode != 0 or r.stdout.strip() in ("", "1"), (q, r.stdout)
    # it cannot make users or become one
    r = cluster.psql("jobs1", "SELECT mvault_user_ensure('mallory')", passfile=wpass, check=False)
    assert r.returncode != 0 and "permission denied" in r.stderr
    r = cluster.psql("jobs1", "INSERT INTO mvault_logins VALUES ('jobs1', '%s')" % uid, passfile=wpass, check=False)
    assert r.returncode != 0 and "permission denied" in r.stderr
    a.unmount()
    b.unmount()
