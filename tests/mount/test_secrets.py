"""A database password stays out of sight (issue 12, "Secrets stay out of
sight"): not in ps or /proc/PID/cmdline of a mount, `mvaultfs worker` or
`mvaultfs db migrate`, not in the log, not in `mvaultfs status`, not in
error text; -o db_passfile= makes a password on the command line needless.

The role these tests connect as needs a password (scram-sha-256) on a
PostgreSQL that trusts every other role (pgtest.add_password_role)."""

import os
import signal
import socket
import subprocess
import time
import uuid
from urllib.parse import quote

import pytest

from pgtest import default_bin, is_mounted
from mvtest import poll

PASSWORD = "S3cr3t-pw"


@pytest.fixture(scope="module")
def pw_role(pg_server):
    return pg_server.add_password_role("pw_" + uuid.uuid4().hex[:8], PASSWORD)


def uri(pg_server, role, db, password=PASSWORD):
    return "postgresql://%s:%s@127.0.0.1:%d/%s" % (role, quote(password, safe=""), pg_server.port, db)


def keyword(pg_server, role, db, password=PASSWORD):
    return "host=127.0.0.1 port=%d user=%s password='%s' dbname=%s" % (pg_server.port, role, password, db)


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return f.read().replace(b"\0", b"\n").decode(errors="replace")


def ps_args(pid):
    """What ps shows of process PID and its children (other tests running
    beside this one may have a password on their command line for the
    instant before they hide it)."""
    return subprocess.run(["ps", "-o", "args=", "--pid", str(pid), "--ppid", str(pid)],
                          capture_output=True, text=True, timeout=30).stdout


def assert_hidden(text, where, secrets=(PASSWORD, quote(PASSWORD, safe=""))):
    for s in secrets:
        assert s not in text, "the password is in %s:\n%s" % (where, text)


def run_cli(args, timeout=60, env=None):
    e = dict(os.environ)
    e.pop("MVAULT_DB", None)
    e.update(env or {})
    return subprocess.run([default_bin()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, env=e)


def check_mount_hides(m):
    """What every local user and the mount's own outputs show of it."""
    (m.mnt / "library" / "a.txt").write_bytes(b"reached the database")
    assert (m.mnt / "library" / "a.txt").read_bytes() == b"reached the database"
    assert m.daemon.alive()
    assert_hidden(cmdline(m.pid), "/proc/%d/cmdline" % m.pid)
    assert "-o" in cmdline(m.pid)          # the arguments are still there, only scrubbed
    assert_hidden(ps_args(m.pid), "ps -o args")
    st = run_cli(["status", str(m.mnt)])
    assert st.returncode == 0, st.stderr
    assert_hidden(st.stdout + st.stderr, "mvaultfs status")
    m.unmount()
    assert_hidden(m.log_text(tail=100000), "the daemon's output and log")


@pytest.mark.parametrize("form", ["uri", "uri-percent", "keyword"])
def test_mount_password_hidden(mvfs, pg_server, pw_role, form):
    db = pg_server.create_db("t_sec_%s" % uuid.uuid4().hex[:8])
    if form == "keyword":
        conninfo = keyword(pg_server, pw_role, db)
    else:
        conninfo = uri(pg_server, pw_role, db)
        if form == "uri-percent":      # every byte encoded: libpq decodes it
            conninfo = conninfo.replace(PASSWORD, "".join("%%%02X" % ord(c) for c in PASSWORD))
    assert PASSWORD in conninfo or "%53%33" in conninfo
    m = mvfs(db=conninfo, args=["-d"])
    secrets = (PASSWORD, "".join("%%%02X" % ord(c) for c in PASSWORD))
    assert_hidden(cmdline(m.pid), "/proc/%d/cmdline" % m.pid, secrets)
    check_mount_hides(m)


def test_mvault_db_env_hidden(mvfs, pg_server, pw_role, tmp_path):
    """MVAULT_DB: only our user and root can read /proc/PID/environ, but the
    daemon hides the password there too."""
    db = pg_server.create_db("t_sec_%s" % uuid.uuid4().hex[:8])
    (tmp_path / "st").mkdir()
    (tmp_path / "dd").mkdir()
    m = mvfs(embedded=True, env={"MVAULT_DB": uri(pg_server, pw_role, db)},
             extra_opts=["store=%s" % (tmp_path / "st"), "data_dir=%s" % (tmp_path / "dd")])
    m.log_files.append(tmp_path / "dd" / "mvaultfs.log")
    assert "MVAULT_DB=postgresql://" in environ(m.pid)
    assert_hidden(environ(m.pid), "/proc/%d/environ" % m.pid)
    check_mount_hides(m)


def write_passfile(path, pg_server, role, password=PASSWORD):
    path.write_text("127.0.0.1:%d:*:%s:%s\n" % (pg_server.port, role, password))
    os.chmod(path, 0o600)
    return path


def test_db_passfile(mvfs, pg_server, pw_role, tmp_path):
    db = pg_server.create_db("t_sec_%s" % uuid.uuid4().hex[:8])
    pf = write_passfile(tmp_path / "pgpass", pg_server, pw_role)
    nopass = "postgresql://%s@127.0.0.1:%d/%s" % (pw_role, pg_server.port, db)
    env = {"PGPASSFILE": str(tmp_path / "absent"), "HOME": str(tmp_path)}
    m = mvfs(db=nopass, extra_opts=["db_passfile=%s" % pf], env=env)
    (m.mnt / "library" / "p.txt").write_bytes(b"via the passfile")
    assert (m.mnt / "library" / "p.txt").read_bytes() == b"via the passfile"
    m.unmount()
    assert_hidden(m.log_text(tail=100000), "the daemon's output and log")

    # without it the same mount is refused: the password came from the file
    mnt = tmp_path / "mnt-nopass"
    mnt.mkdir()
    r = run_cli(["-f", "-o", "db=%s,store=%s,data_dir=%s" % (nopass, tmp_path / "s2", tmp_path / "d2"),
                 str(mnt)], env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert not is_mounted(mnt)

    # a passfile that cannot be read is one clear line, before any connection
    r = run_cli(["-f", "-o", "db=%s,db_passfile=%s,store=%s,data_dir=%s"
                 % (nopass, tmp_path / "absent", tmp_path / "s3", tmp_path / "d3"), str(mnt)], env=env)
    assert r.returncode == 1
    assert "db_passfile" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not is_mounted(mnt)


def test_wrong_password(pg_server, pw_role, tmp_path):
    db = pg_server.create_db("t_sec_%s" % uuid.uuid4().hex[:8])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    wrong = "Wr0ng-pw-7d1"
    for conninfo in (uri(pg_server, pw_role, db, wrong), keyword(pg_server, pw_role, db, wrong)):
        r = run_cli(["-f", "-o", "db=%s,store=%s,data_dir=%s" % (conninfo, tmp_path / "s", tmp_path / "d"),
                     str(mnt)], env={"PGPASSFILE": str(tmp_path / "absent")})
        assert r.returncode == 1, r.stdout + r.stderr
        assert "password authentication failed" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert_hidden(r.stdout + r.stderr, "the error", (wrong, PASSWORD))
        assert not is_mounted(mnt)


@pytest.mark.parametrize("conninfo", [
    "postgresql://u:S3cr3t-pw@[::1/db",             # libpq quotes the whole URI
    "postgresql://u:S3cr3t-pw%zz@127.0.0.1:1/db",   # libpq quotes the bad token
])
def test_bad_conninfo_error_hides_password(tmp_path, conninfo):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for args in (["-f", "-o", "db=%s,data_dir=%s" % (conninfo, tmp_path / "d"), str(mnt)],
                 ["db", "migrate", "-o", "db=" + conninfo]):
        r = run_cli(args)
        assert r.returncode == 1, r.stdout + r.stderr
        assert r.stderr.strip(), "no error at all"
        assert_hidden(r.stdout + r.stderr, "the error of %s" % args[0])
        assert not is_mounted(mnt)


def test_migrate_with_password(pg_server, pw_role):
    db = pg_server.create_db("t_sec_%s" % uuid.uuid4().hex[:8])
    r = run_cli(["db", "migrate", "-o", "db=" + uri(pg_server, pw_role, db)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert_hidden(r.stdout + r.stderr, "db migrate's output")
    assert pg_server.sql(db, "SELECT count(*) > 0 FROM schema_migrations") == ["t"]


@pytest.fixture
def mute_server():
    """A TCP port that accepts connections and never answers: libpq waits
    there, so a command's /proc/PID/cmdline can be read while it runs."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("cmd", ["migrate", "worker", "mount"])
def test_cmdline_scrubbed_while_connecting(tmp_path, mute_server, cmd):
    conninfo = "postgresql://u:%s@127.0.0.1:%d/db" % (PASSWORD, mute_server)
    opts = "db=%s,data_dir=%s" % (conninfo, tmp_path / "d")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    argv = {"migrate": ["db", "migrate", "-o", opts], "worker": ["worker", "-o", opts],
            "mount": ["-f", "-o", opts + ",store=%s" % (tmp_path / "s"), str(mnt)]}[cmd]
    e = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    e.pop("MVAULT_DB", None)
    p = subprocess.Popen([default_bin()] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e, start_new_session=True)
    try:
        # it is waiting for the database once it holds a TCP socket
        def connecting():
            try:
                return any(os.readlink("/proc/%d/fd/%s" % (p.pid, fd)).startswith("socket:")
                           for fd in os.listdir("/proc/%d/fd" % p.pid))
            except OSError:
                return False
        assert poll(connecting, timeout=20), "%s never connected" % cmd
        assert p.poll() is None
        text = cmdline(p.pid)
        assert "127.0.0.1:%d" % mute_server in text, text
        assert_hidden(text, "/proc/%d/cmdline of %s" % (p.pid, cmd))
        assert_hidden(ps_args(p.pid), "ps -o args")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=20)
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
    assert_hidden(out.decode(errors="replace") + err.decode(errors="replace"), "the output of " + cmd)
