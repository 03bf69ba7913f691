"""A store outage (issue 5): with the store full (local, on a tmpfs) or
stopped (s3rver), 50 files are written and every close succeeds; sync gives
up; once the store is back every file is uploaded and reads back
byte-identical from a fresh mount with nothing cached."""

import hashlib
import os

from cachetest import (MiB, asset_rows, mount_on, mvsync, read_all, stats, stores,  # noqa: F401
                       wait_for)


def test_store_outage_while_writing_50_files(stores, mvfs, tmp_path):
    store = stores(tmpfs_mb=64)
    m = mount_on(mvfs, store)
    lib = m.mnt / "library"
    (lib / "before.txt").write_bytes(b"uploaded before the outage")
    assert mvsync(m, 30).returncode == 0
    store.outage()

    files = {"o%02d.jpg" % i: os.urandom(50000 + 9973 * i) for i in range(50)}
    for name, data in files.items():
        with open(lib / name, "wb") as f:      # close() raises if the commit fails
            f.write(data)
    st = stats(m.mnt)
    assert st["staged_files"] == 50, st
    assert st["staged_bytes"] == sum(len(d) for d in files.values()), st
    # reads keep working: staged files from staging, the earlier one from the cache
    for name in ("o00.jpg", "o49.jpg"):
        assert read_all(lib / name) == files[name]
    assert read_all(lib / "before.txt") == b"uploaded before the outage"

    r = mvsync(m, 3)
    assert r.returncode == 1, "sync --timeout 3 succeeded during an outage"
    assert "gave up after 3 s" in r.stderr and "still waiting" in r.stderr, r.stderr
    for name in files:
        assert asset_rows(m, name)[0][:2] == ("uploading", ""), (name, asset_rows(m, name))
    assert "retrying with backoff" in m.log_text()

    store.restore()
    r = mvsync(m, 120)
    assert r.returncode == 0, "sync after the outage: %s\nlog:\n%s" % (r.stderr, m.log_text())
    objs = store.objects()
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        assert asset_rows(m, name) == [("completed", sha, sha)], (name, asset_rows(m, name))
        assert objs.get(sha) == len(data), "%s: object %s not in the store" % (name, sha)
    m.unmount()

    # a second mount with a new data_dir: nothing staged, nothing cached
    m2 = mount_on(mvfs, store, db=m.db, data_dir=tmp_path / "fresh")
    for name, data in files.items():
        assert read_all(m2.mnt / "library" / name) == data, name
    st = stats(m2.mnt)
    assert st["store_gets"] >= 50 and st["staged_files"] == 0, st
    m2.unmount()


def test_uncached_read_fails_after_io_timeout(mvfs, tmp_path):
    """S3 stalls every GET (a proxy holds them): a read of content that is
    not cached fails with EIO after about -o io_timeout, never hangs for the
    S3 client's own retries; content that is cached still reads."""
    from cachetest import S3Store, s3_available
    import errno
    import time
    import pytest
    why = s3_available()
    if why:
        pytest.skip(why)
    store = S3Store(tmp_path / "s3")
    try:
        m = mvfs(store=store.url, env=store.srv.env(),
                 extra_opts=["s3_endpoint=" + store.proxy.endpoint, "s3_retries=3", "s3_timeout=10",
                             "io_timeout=3"])
        cached, uncached = os.urandom(300000), os.urandom(300000)
        (m.mnt / "library" / "cached.bin").write_bytes(cached)
        (m.mnt / "library" / "uncached.bin").write_bytes(uncached)
        assert mvsync(m, 30).returncode == 0
        m.unmount()
        m2 = mvfs(db=m.db, store=store.url, env=store.srv.env(), data_dir=tmp_path / "fresh",
                  extra_opts=["s3_endpoint=" + store.proxy.endpoint, "s3_retries=3", "s3_timeout=10",
                              "io_timeout=3"])
        assert read_all(m2.mnt / "library" / "cached.bin") == cached
        store.proxy.clear()     # (the first rule that matches is taken: drop the counter)
        store.proxy.add("delay", method="GET", path=r"/sha256/", seconds=120)
        t = time.monotonic()
        with pytest.raises(OSError) as e:
            read_all(m2.mnt / "library" / "uncached.bin")
        secs = time.monotonic() - t
        assert e.value.errno == errno.EIO, e.value
        assert from_cache_ok(m2, cached)
        assert secs < 3 + 3, "a stalled read took %.1f s to fail with io_timeout=3; log:\n%s" % (
            secs, "\n".join(sorted(set(ln for ln in m2.log_text().splitlines() if " error: " in ln))))
        store.proxy.clear()
        m2.unmount()
    finally:
        store.close()


def from_cache_ok(m, data):
    from cachetest import drop_caches
    drop_caches()
    return read_all(m.mnt / "library" / "cached.bin") == data
