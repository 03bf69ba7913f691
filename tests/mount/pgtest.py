"""Throwaway PostgreSQL servers and mvaultfs daemons for the mount tests
and the benchmarks (stdlib only).

PgServer: initdb + pg_ctl under a temp dir in /tmp, listening on
127.0.0.1:<free port> (and on one more address of this machine if asked,
for clients in other network namespaces) and on a unix socket in that dir,
trust authentication (add_password_role makes a role that needs a password),
superuser `mvault`. PostgreSQL refuses to run as root, so
as root the cluster runs as the `postgres` system user (created by the
Debian package) or, failing that, as a system user `mvaultfs-test`.

Daemon: one `mvaultfs -f` process in its own process group, its output in
a log file; helpers to wait for the mount, unmount, and clean up after a
daemon that misbehaves. Nothing here signals a process it did not start.
"""

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = "/usr/bin/psql"
SUPERUSER = "mvault"
REPO = Path(__file__).resolve().parents[2]


def default_bin():
    return os.environ.get("MVFS_BIN") or str(REPO / "build" / "mvaultfs")


# ---------------------------------------------------------------- postgres

def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_user():
    """The (uid, gid) the cluster runs as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "mvaultfs-test"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", "mvaultfs-test"],
                   check=True, capture_output=True)
    pw = pwd.getpwnam("mvaultfs-test")
    return pw.pw_uid, pw.pw_gid


# An initdb'd data folder per cluster user, made by this process's first
# PgServer and copied by the next ones (cp -a: 0.2 s; initdb: 1-2 s, and the
# tests that take a server away start one each).
_templates = {}


class PgServer:
    host = "127.0.0.1"

    def __init__(self, host=None, trust=()):
        """host: an address of this machine to listen on besides 127.0.0.1,
        and the one dsn() and sql() connect to; trust: networks (CIDR) whose
        clients log in without a password, as 127.0.0.1's do."""
        if host:
            self.host = host
        self.trust = list(trust)
        self.port = None
        self.dir = None
        self.user = _run_user()
        self._started = False
        self._drops = []

    # run a PostgreSQL server program as the cluster's user
    def _pg(self, args, timeout=60, check=True):
        kw = {}
        if self.user:
            kw = dict(user=self.user[0], group=self.user[1], extra_groups=[])
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        env.pop("PGDATA", None)
        r = subprocess.run([str(PG_BIN / args[0])] + list(args[1:]),
                           cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s%s" % (
                args[0], r.returncode, r.stdout, r.stderr, self._server_log()))
        return r

    def _server_log(self):
        try:
            return "\n--- server log ---\n" + (Path(self.dir) / "server.log").read_text()
        except OSError:
            return ""

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="mvaultfs-pg-", dir="/tmp")
        os.chmod(self.dir, 0o700)
        if self.user:
            os.chown(self.dir, *self.user)
        subprocess.run(["cp", "-a", self._template(), self.data], check=True, capture_output=True)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# mvaultfs tests\nfsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\nmax_connections = 200\n"
                    "shared_buffers = 64MB\n")
        if self.trust:
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
                f.write("".join("host all all %s trust\n" % net for net in self.trust))
        last = None
        for _ in range(5):   # another process may take the port first
            self.port = _free_port()
            r = self._ctl_start(check=False)
            if r.returncode == 0:
                self._started = True
                return self
            last = r.stdout + r.stderr + self._server_log()
        raise RuntimeError("cannot start PostgreSQL:\n" + last)

    def _template(self):
        t = _templates.get(self.user)
        if t is None:
            t = tempfile.mkdtemp(prefix="mvaultfs-pgtemplate-", dir="/tmp")
            atexit.register(shutil.rmtree, t, True)
            os.chmod(t, 0o700)
            if self.user:
                os.chown(t, *self.user)
            self._pg(["initdb", "-D", os.path.join(t, "data"), "-U", SUPERUSER, "-A", "trust",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], timeout=120)
            t = _templates[self.user] = os.path.join(t, "data")
        return t

    def _ctl_start(self, check=True, action="start", mode=None):
        listen = ",".join(sorted({"127.0.0.1", self.host}))
        opts = "-c listen_addresses=%s -p %d -c unix_socket_directories=%s" % (listen, self.port, self.dir)
        return self._pg(["pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-o", opts]
                        + (["-m", mode] if mode else []) + ["-w", "-t", "60", action], timeout=90, check=check)

    # Outages, for the tests that make them (on the same port, same data).
    def restart_fast(self):
        self._ctl_start(action="restart", mode="fast")

    def stop_fast(self):
        self._pg(["pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"], timeout=90)

    def start_again(self):
        self._ctl_start()

    def crash(self):
        """kill -9 of the postmaster and every process it started, at once;
        then what an administrator does once the server is known dead (the
        dead postmaster may stay a zombie of a parent that never reaps)."""
        pm = int((Path(self.data) / "postmaster.pid").read_text().split()[0])
        pids = [pm] + [int(d) for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == pm]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while pg_processes_under(self.data) and time.monotonic() < deadline:
            time.sleep(0.05)
        (Path(self.data) / "postmaster.pid").unlink()
        for p in Path(self.dir).glob(".s.PGSQL.%d*" % self.port):
            p.unlink()

    def _wait_drops(self):
        for p in self._drops:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._drops = []

    def stop(self):
        self._wait_drops()
        try:
            if self._started:
                self._pg(["pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"],
                         timeout=60, check=False)
                self._started = False
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def dsn(self, dbname):
        return "postgresql://%s@%s:%d/%s" % (SUPERUSER, self.host, self.port, dbname)

    def sql(self, dbname, query, timeout=60):
        """Run query with psql -At; return the output lines."""
        r = subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", self.host, "-p", str(self.port), "-U", SUPERUSER,
                            "-d", dbname, "-c", query],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("psql on %s failed: %s\nquery: %s" % (dbname, r.stderr.strip(), query))
        return r.stdout.splitlines()

    def create_db(self, name, template=None):
        self._wait_drops()          # the last test's drop is done before this test's work starts
        self.sql("postgres", 'CREATE DATABASE "%s"' % name + (' TEMPLATE "%s"' % template if template else ""))
        return name

    def migrated_template(self):
        """A database `mvaultfs db migrate` (the binary under test) made
        once for this server, to copy (create_db's TEMPLATE): a mount on a
        copy finds every migration applied, as a daemon's restart does
        (0.4-0.7 s less per test than migrating each fresh database; the
        mounts of the embedded default and test_isolation's still migrate
        an empty one)."""
        if not getattr(self, "_migrated", None):
            name = self.create_db("t_migrated_template")
            r = subprocess.run([default_bin(), "db", "migrate", "-o", "db=" + self.dsn(name)],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError("mvaultfs db migrate failed (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
            # no session (autovacuum's either) in it when it is copied
            self.sql("postgres", 'ALTER DATABASE "%s" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false' % name)
            self._migrated = name
        return self._migrated

    def drop_db_later(self, name):
        """DROP DATABASE name in a psql of its own, waited for by the next
        create_db (so never during a test's own work).  A session's server
        kept every test's database to the end (2 GB for make mount), and
        removing that folder took 30-50 s of each run's last test."""
        self._drops.append(subprocess.Popen(
            [PSQL, "-X", "-q", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
             "-c", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def add_password_role(self, role, password):
        """A login role (superuser, as the daemon needs) that must give
        password (scram-sha-256) over TCP: the other roles keep trust."""
        self.sql("postgres", "SET password_encryption = 'scram-sha-256'; "
                 "CREATE ROLE \"%s\" LOGIN SUPERUSER PASSWORD '%s'" % (role, password.replace("'", "''")))
        hba = os.path.join(self.data, "pg_hba.conf")
        with open(hba) as f:
            text = f.read()
        with open(hba, "w") as f:     # in place: the file keeps its owner
            f.write("host all \"%s\" 127.0.0.1/32 scram-sha-256\n%s" % (role, text))
        self.sql("postgres", "SELECT pg_reload_conf()")
        return role

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- mounts

def _unescape_mountinfo(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mount_entry(path):
    """The /proc/self/mountinfo fields of the mount at path, or None."""
    want = os.path.realpath(str(path))
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if _unescape_mountinfo(fields[4]) == want:
                found = fields   # the last one is on top
    return found


def mount_count(path):
    """How many mounts are stacked at path."""
    want = os.path.realpath(str(path))
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if _unescape_mountinfo(line.split()[4]) == want)


def is_mounted(path):
    return mount_entry(path) is not None


def fusermount_u(path, lazy=False, timeout=15):
    args = ["fusermount3", "-u"] + (["-z"] if lazy else []) + [str(path)]
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stderr.strip()
    except subprocess.TimeoutExpired:
        return -1, "fusermount3 timed out"


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def pg_processes_under(path):
    """Pids of live postgres processes whose command line mentions path,
    or whose postmaster.pid lies under path."""
    path = str(path)
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres" in cmd and path in cmd:
            pids.add(int(d))
    for pidfile in Path(path).rglob("postmaster.pid") if os.path.isdir(path) else []:
        try:
            pid = int(pidfile.read_text().split()[0])
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read()
            if "postgres" in comm or "postmaster" in comm:
                pids.add(pid)
        except (OSError, ValueError, IndexError):
            pass
    return sorted(p for p in pids if not _zombie(p))


def stop_pg_under(path, wait=10):
    """Stop postgres processes left behind under path (a private cluster a
    daemon we started failed to stop): SIGQUIT, then SIGKILL."""
    pids = pg_processes_under(path)
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            pids = pg_processes_under(path)
            if not pids:
                return
            time.sleep(0.1)


class Daemon:
    """One mvaultfs process: started in its own session, output to log."""

    def __init__(self, argv, mnt, log, env=None):
        self.argv = [str(a) for a in argv]
        self.mnt = Path(mnt)
        self.log = Path(log)
        self.env = env
        self.proc = None
        self.pid = None
        self.started_at = None
        self.mounted_after = None

    def start(self):
        self.mnt.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as lf:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        self.pid = self.proc.pid
        return self

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_mounted(self, timeout=20):
        """Wait for the mount; raise RuntimeError (with the log) if the
        daemon exits first or the time runs out."""
        deadline = self.started_at + timeout
        while True:
            if is_mounted(self.mnt):
                self.mounted_after = time.monotonic() - self.started_at
                return self.mounted_after
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError("mvaultfs exited with status %d before mounting %s\n"
                                   "command: %s\nlog:\n%s"
                                   % (rc, self.mnt, " ".join(self.argv), self.log_text()))
            if time.monotonic() > deadline:
                raise RuntimeError("mvaultfs did not mount %s within %gs\ncommand: %s\nlog:\n%s"
                                   % (self.mnt, timeout, " ".join(self.argv), self.log_text()))
            time.sleep(0.02)

    def unmount(self, timeout=15):
        """fusermount3 -u (retried while busy), then wait for the daemon to
        exit; return its exit status (None if it did not exit in time)."""
        deadline = time.monotonic() + 10
        while is_mounted(self.mnt):
            rc, err = fusermount_u(self.mnt)
            if rc == 0 or not is_mounted(self.mnt):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("cannot unmount %s: %s" % (self.mnt, err))
            time.sleep(0.2)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def killpg(self, sig=signal.SIGKILL):
        """Signal this daemon's process group (ours: start_new_session)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def cleanup(self, grace=10):
        """Always leaves nothing behind: unmount (lazily if busy), give the
        daemon grace seconds, then kill its process group. Returns the exit
        status if the daemon exited by itself, else None."""
        if self.proc is None:
            return None
        status = None
        if is_mounted(self.mnt):
            rc, _ = fusermount_u(self.mnt)
            if rc != 0 and is_mounted(self.mnt):
                fusermount_u(self.mnt, lazy=True)
        try:
            status = self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            status = None
        # the daemon's children (e.g. its private postgres) share the group
        self.killpg(signal.SIGKILL)
        if self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if is_mounted(self.mnt):
            fusermount_u(self.mnt, lazy=True)
        return status
