"""The embedded default: no db=, no store=: a private PostgreSQL under
$XDG_DATA_HOME/mvaultfs/, started by the daemon and stopped at unmount."""

import os

import pytest

from pgtest import pg_processes_under
from mvtest import SANITIZED, SLACK, poll


def let_others_traverse(path):
    """As root the daemon runs its private cluster as an unprivileged
    system user, which must be able to reach the data dir. pytest's tmp
    dirs are 0700 (so is /root, hence the daemon's /var/lib/mvaultfs
    default for root); give search permission only, up to /tmp."""
    if os.geteuid() != 0:
        return
    for d in [path, *path.parents]:
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o001)


def embedded_env(tmp_path):
    let_others_traverse(tmp_path)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"XDG_DATA_HOME": tmp_path / "xdg", "HOME": home, "MVAULT_DB": None}


def assert_pg_stopped(m, data):
    pids = poll(lambda: not pg_processes_under(data), 10) or pg_processes_under(data)
    assert pids is True, "postgres still running for %s after unmount: pids %s; log:\n%s" % (
        data, pids, m.log_text())


def mount_twice(mvfs, tmp_path):
    env = embedded_env(tmp_path)
    data = tmp_path / "xdg" / "mvaultfs"
    m = mvfs(embedded=True, env=env, timeout=60)
    first = m.mounted_after
    assert data.is_dir()
    # made with its parents: 0711 as root, for the cluster's own user to pass
    assert data.stat().st_mode & 0o777 == (0o711 if os.geteuid() == 0 else 0o700)
    payload = os.urandom(200_000)
    (m.mnt / "library" / "hello.bin").write_bytes(payload)
    assert (m.mnt / "library" / "hello.bin").read_bytes() == payload
    m.unmount()
    assert_pg_stopped(m, data)

    m2 = mvfs(embedded=True, env=env, mnt=m.mnt, timeout=60)
    second = m2.mounted_after
    assert (m2.mnt / "library" / "hello.bin").read_bytes() == payload
    m2.unmount()
    assert_pg_stopped(m2, data)
    return first, second


def test_embedded_default(mvfs, tmp_path):
    mount_twice(mvfs, tmp_path)


@pytest.mark.timing
@pytest.mark.skipif(SANITIZED, reason="timings are meaningless under sanitizers")
def test_embedded_mount_times(mvfs, tmp_path):
    first, second = mount_twice(mvfs, tmp_path)
    print("first mount %.1f s, second %.1f s" % (first, second))
    # generous bounds (slack for a busy machine): initdb, then a start
    assert first < 10 * SLACK, "first mount took %.1fs (limit %ds)" % (first, 10 * SLACK)
    assert second < 3 * SLACK, "second mount took %.1fs (limit %ds)" % (second, 3 * SLACK)
