"""Dedup per user (issue 12, "no oracle through dedup"): two users on one
database and one store each keep their own blob rows and, for users made
since migration 0015, their own object keys (u/<id>/sha256/...). Acting as
one user's daemon role, SQL cannot tell whether another user holds some
content, cannot touch their blob rows, and naming their hash gives no byte
of theirs. Deleting one user's copy never removes another's object; users
made before 0015 keep the shared keys, and an object they share stays while
any row names it."""

import errno
import hashlib
import os

import pytest

from imgtest import JOBS_FAST, jobs, wait_job
from mvtest import fsync_path, poll, q, set_skew, sql, user_id

NO_CACHE = ["entry_timeout=0", "attr_timeout=0"]


def as_user(handle, uid, query):
    """Run QUERY as a user's daemon would: the daemon's role, acting for
    UID. The one place that says how a connection is bound to its user
    (issue 12 changes it: then log in as the user's role instead). Returns
    the output lines of QUERY only."""
    out = handle.sql("SET ROLE mvault_app; SELECT set_config('mvault.user_id', %s, false) AS mark; %s"
                     % (q(uid), query))
    return out[out.index(uid) + 1:]     # what follows set_config's answer


def count_as(handle, uid, stmt):
    """How many rows STMT (an UPDATE or DELETE) touched, run as UID."""
    return as_user(handle, uid, "WITH x AS (%s RETURNING 1) SELECT count(*) FROM x" % stmt)


def photo(seed, size=300_000):
    return hashlib.sha256(b"seed%d" % seed).digest() * (size // 32)


def write(path, data):
    path.write_bytes(data)
    fsync_path(path)            # uploaded and recorded when fsync returns


def two_users(mvfs, opts=()):
    a = mvfs(extra_opts=["user=alice"] + NO_CACHE + list(opts))
    b = mvfs(db=a.db, store=a.store, extra_opts=["user=bob"] + NO_CACHE + list(opts))
    return a, b


def fresh_reader(mvfs, tmp_path, m, user, tag):
    """A new mount of USER with an empty cache: what it reads comes from
    the store."""
    return mvfs(db=m.db, store=m.store, data_dir=tmp_path / ("fresh-" + tag),
                extra_opts=["user=" + user, "workers=0"] + NO_CACHE)


def read_error(path):
    try:
        with open(path, "rb") as f:
            got = f.read()
    except OSError as e:
        return e.errno, b""
    return 0, got


def test_same_bytes_each_user_own_blob_and_key(mvfs, tmp_path):
    a, b = two_users(mvfs)
    data = photo(1)
    h = hashlib.sha256(data).hexdigest()
    write(b.mnt / "library" / "bob.jpg", data)
    write(a.mnt / "library" / "alice.jpg", data)
    assert (a.mnt / "library" / "alice.jpg").read_bytes() == data
    assert (b.mnt / "library" / "bob.jpg").read_bytes() == data
    ua, ub = user_id(a, "alice"), user_id(a, "bob")
    # one blob row each (a single shared row was the oracle)
    assert sql(a, "SELECT count(*) FROM blobs WHERE content_hash = %s" % q(h)) == ["2"]
    rows = sql(a, "SELECT u.name, b.ref_count, b.storage_key FROM blobs b JOIN users u ON u.id = b.user_id"
                  " WHERE b.content_hash = %s ORDER BY u.name" % q(h))
    key = "sha256/%s/%s/%s" % (h[:2], h[2:4], h)
    assert rows == ["alice|1|u/%s/%s" % (ua, key), "bob|1|u/%s/%s" % (ub, key)]
    b.unmount()
    a.unmount()
    # each reads its own object, from the store
    for user, name in (("alice", "alice.jpg"), ("bob", "bob.jpg")):
        r = fresh_reader(mvfs, tmp_path, a, user, user)
        assert (r.mnt / "library" / name).read_bytes() == data
        r.unmount()


def test_sql_as_one_user_learns_nothing_of_anothers_blobs(mvfs):
    a, b = two_users(mvfs)
    shared, bob_only = photo(2), photo(3)
    hb = hashlib.sha256(bob_only).hexdigest()
    write(b.mnt / "library" / "shared.jpg", shared)
    write(b.mnt / "library" / "only.jpg", bob_only)
    write(a.mnt / "library" / "shared.jpg", shared)
    ua, ub = user_id(a, "alice"), user_id(a, "bob")
    bob_asset, bob_blob = sql(a, "SELECT a.id, a.blob_id FROM memory_items i JOIN memory_assets a"
                                 " ON a.id = i.primary_asset_id WHERE i.user_id = %s AND i.display_name = 'only.jpg'"
                                 % q(ub))[0].split("|")
    mine = sql(a, "SELECT DISTINCT a.blob_id FROM memory_assets a JOIN memories m ON m.id = a.memory_id"
                  " WHERE m.user_id = %s AND a.blob_id IS NOT NULL ORDER BY 1" % q(ua))
    assert len(mine) == 1
    got = as_user(a, ua, "SELECT id FROM blobs ORDER BY id")
    assert got == mine, (got, mine, ua)
    assert as_user(a, ua, "SELECT count(*) FROM blobs WHERE content_hash = %s" % q(hb)) == ["0"]
    assert as_user(a, ua, "SELECT count(*) FROM blobs WHERE id = %s" % q(bob_blob)) == ["0"]
    assert as_user(a, ua, "SELECT count(*) FROM blobs") == ["1"]
    # no user set: nothing at all
    assert a.sql("SET ROLE mvault_app; SELECT count(*) FROM blobs")[-1:] == ["0"]

    for stmt in ("UPDATE blobs SET ref_count = 0 WHERE id = %s" % q(bob_blob),
                 "UPDATE blobs SET ref_count = ref_count - 1 WHERE content_hash = %s" % q(hb),
                 "UPDATE blobs SET storage_key = 'x' WHERE id <> %s" % q(mine[0]),
                 "DELETE FROM blobs WHERE id = %s" % q(bob_blob),
                 "DELETE FROM blobs WHERE id <> %s" % q(mine[0])):
        assert count_as(a, ua, stmt) == ["0"], stmt
    # the daemon's release of a reference cannot reach bob's blob either
    as_user(a, ua, "SELECT mvfs_release_blob(%s, %s)" % (q(bob_asset), q(bob_blob)))
    assert sql(a, "SELECT ref_count FROM blobs WHERE id = %s" % q(bob_blob)) == ["1"]
    # nor can a row be made for bob
    with pytest.raises(RuntimeError) as ei:
        as_user(a, ua, "INSERT INTO blobs (user_id, content_hash, storage_backend, storage_key, bytes, mime_type)"
                       " VALUES (%s, 'x', 'local', 'x', 1, 'x')" % q(ub))
    assert "row-level security" in str(ei.value)
    # nor can alice point her mount at bob's keys
    with pytest.raises(RuntimeError) as ei:
        as_user(a, ua, "UPDATE users SET key_prefix = %s" % q("u/%s/" % ub))
    with pytest.raises(RuntimeError):
        as_user(a, ua, "UPDATE users SET key_prefix = NULL")
    assert sql(a, "SELECT key_prefix FROM users WHERE id = %s" % q(ua)) == ["u/%s/" % ua]
    assert (b.mnt / "library" / "only.jpg").read_bytes() == bob_only
    b.unmount()
    a.unmount()


def test_naming_anothers_hash_reads_none_of_their_bytes(mvfs, tmp_path):
    a, b = two_users(mvfs)
    secret = photo(4)
    hb = hashlib.sha256(secret).hexdigest()
    write(b.mnt / "library" / "secret.jpg", secret)
    ua, ub = user_id(a, "alice"), user_id(a, "bob")
    # alice's own file of the same size, then her daemon's two records
    # claiming bob's hash (and, to be sure, bob's key) as its new content
    write(a.mnt / "library" / "claim.jpg", b"\0" * len(secret))
    ino = sql(a, "SELECT ino FROM memory_items WHERE user_id = %s AND display_name = 'claim.jpg'" % q(ua))[0]
    backend, bob_key = sql(a, "SELECT a.storage_backend, a.storage_key FROM memory_items i JOIN memory_assets a"
                              " ON a.id = i.primary_asset_id WHERE i.user_id = %s AND i.display_name = 'secret.jpg'"
                              % q(ub))[0].split("|")
    args = "%s, %s, %s, %d, 'image/jpeg', 'image', %s, %s, NULL, NULL, 999999, 0, 30" % (
        q(ua), ino, q(hb), len(secret), q(backend), q(bob_key))
    as_user(a, ua, "SELECT mvfs_stage(%s)" % args)
    as_user(a, ua, "SELECT mvfs_uploaded(%s)" % args)
    assert sql(a, "SELECT a.content_hash, a.upload_status FROM memory_items i"
                  " JOIN memory_assets a ON a.id = i.primary_asset_id WHERE i.ino = %s" % ino) == \
        ["%s|completed" % hb]
    a.unmount()
    for tag in ("again", "fresh"):
        # her mount as it was (its cache), and one with an empty cache
        r = (mvfs(db=a.db, store=a.store, data_dir=a.data_dir, extra_opts=["user=alice", "workers=0"] + NO_CACHE)
             if tag == "again" else fresh_reader(mvfs, tmp_path, a, "alice", tag))
        err, got = read_error(r.mnt / "library" / "claim.jpg")
        assert secret[:4096] not in got and got != secret, "alice read bob's bytes by naming their hash"
        assert err in (errno.EIO, errno.ENOENT), (err, len(got))
        assert hb[:12] in r.log_text() or "claim.jpg" in r.log_text(), r.log_text()
        r.unmount()
    assert (b.mnt / "library" / "secret.jpg").read_bytes() == secret
    b.unmount()


def test_deleting_ones_copy_keeps_anothers(mvfs, tmp_path):
    a, b = two_users(mvfs, JOBS_FAST)
    data = photo(5)
    h = hashlib.sha256(data).hexdigest()
    write(b.mnt / "library" / "b.jpg", data)
    write(a.mnt / "library" / "a.jpg", data)
    ua = user_id(a, "alice")
    os.unlink(a.mnt / "library" / "a.jpg")
    set_skew(a, "31 days")
    assert wait_job(a, "type = 'asset_delete' AND user_id = %s" % q(ua), statuses=("completed",), timeout=60)
    note = jobs(a, "type = 'asset_delete'")
    assert note[0].startswith("asset_delete|completed|0|deleted u/%s/sha256/" % ua), note
    assert sql(a, "SELECT u.name, b.ref_count FROM blobs b JOIN users u ON u.id = b.user_id"
                  " WHERE content_hash = %s" % q(h)) == ["bob|1"]
    b.unmount()
    a.unmount()
    r = fresh_reader(mvfs, tmp_path, a, "bob", "bob")
    assert (r.mnt / "library" / "b.jpg").read_bytes() == data
    r.unmount()


def make_legacy(mvfs, names, opts=()):
    """Users as made before migration 0015 (the shared keys): made by a
    first mount each, then their key prefix taken away by the owner."""
    first = None
    for n in names:
        m = mvfs(db=first.db if first else None, store=first.store if first else None, extra_opts=["user=" + n])
        m.unmount()
        first = first or m
    sql(first, "UPDATE users SET key_prefix = NULL")
    out = [mvfs(db=first.db, store=first.store, extra_opts=["user=" + n] + NO_CACHE + list(opts)) for n in names]
    return out


def test_legacy_users_keep_shared_keys_and_the_object_stays_while_named(mvfs, tmp_path):
    a, b = make_legacy(mvfs, ["alice", "bob"], JOBS_FAST)
    data = photo(6)
    h = hashlib.sha256(data).hexdigest()
    key = "sha256/%s/%s/%s" % (h[:2], h[2:4], h)
    write(a.mnt / "library" / "a.jpg", data)
    write(b.mnt / "library" / "b.jpg", data)
    ua, ub = user_id(a, "alice"), user_id(a, "bob")
    assert sql(a, "SELECT u.name, b.storage_key FROM blobs b JOIN users u ON u.id = b.user_id"
                  " ORDER BY u.name") == ["alice|" + key, "bob|" + key]
    # alice's copy goes: her row is forgotten, the object bob's row names stays
    os.unlink(a.mnt / "library" / "a.jpg")
    set_skew(a, "31 days")
    assert wait_job(a, "type = 'asset_delete' AND user_id = %s" % q(ua), statuses=("completed",), timeout=60)
    note = jobs(a, "type = 'asset_delete' AND user_id = %s" % q(ua))
    assert "the object stays: another blob names its object" in note[0], note
    assert sql(a, "SELECT count(*) FROM blobs WHERE user_id = %s" % q(ua)) == ["0"]
    b.unmount()
    r = fresh_reader(mvfs, tmp_path, a, "bob", "bob1")
    assert (r.mnt / "library" / "b.jpg").read_bytes() == data
    r.unmount()
    # then bob's: nothing names it any more, the object goes
    b2 = mvfs(db=a.db, store=a.store, data_dir=b.data_dir, extra_opts=["user=bob"] + NO_CACHE + JOBS_FAST)
    os.unlink(b2.mnt / "library" / "b.jpg")
    set_skew(a, "62 days")
    assert wait_job(a, "type = 'asset_delete' AND user_id = %s" % q(ub), statuses=("completed",), timeout=60)
    note = jobs(a, "type = 'asset_delete' AND user_id = %s" % q(ub))
    assert note[0].startswith("asset_delete|completed|0|deleted " + key), note
    assert sql(a, "SELECT count(*) FROM blobs") == ["0"]
    b2.unmount()
    a.unmount()


def test_legacy_library_still_reads(mvfs, tmp_path):
    """A user with the shared keys (made before 0015) writes, remounts and
    reads; a new user's mount next to it uses its own prefix."""
    (a,) = make_legacy(mvfs, ["alice"])
    data = photo(7)
    h = hashlib.sha256(data).hexdigest()
    write(a.mnt / "library" / "old.jpg", data)
    assert sql(a, "SELECT storage_key FROM blobs") == ["sha256/%s/%s/%s" % (h[:2], h[2:4], h)]
    a.unmount()
    r = fresh_reader(mvfs, tmp_path, a, "alice", "alice")
    assert (r.mnt / "library" / "old.jpg").read_bytes() == data
    r.unmount()
    c = mvfs(db=a.db, store=a.store, extra_opts=["user=carol"] + NO_CACHE)
    write(c.mnt / "library" / "new.jpg", data)
    uc = user_id(c, "carol")
    assert sql(c, "SELECT storage_key FROM blobs WHERE user_id = %s" % q(uc)) == \
        ["u/%s/sha256/%s/%s/%s" % (uc, h[:2], h[2:4], h)]
    assert (c.mnt / "library" / "new.jpg").read_bytes() == data
    c.unmount()
