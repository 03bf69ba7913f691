"""Issue 14: two mounts of one library write the same new name at the same
moment. Every write that returned 0 ends up where a user finds it: one
under the name, the other beside it as "NAME (conflict HOST DATE
TIME).EXT" -- never only a log line. (cp opens with O_EXCL when it found no
file, and may get EEXIST, as it does on ext4: that write failed loudly.)"""
import hashlib
import os
import re
import subprocess
import time

from mvtest import make_random, run, sha256_file
from pgtest import default_bin


def everything(m):
    """sha256 -> names, of every file in library/ (variants left out)."""
    out = {}
    for root, dirs, files in os.walk(m.mnt / "library"):
        dirs[:] = [d for d in dirs if d not in (".thumb", ".display")]
        for f in files:
            out.setdefault(sha256_file(os.path.join(root, f)), []).append(f)
    return out


def writer(src, dst, how):
    """cp (O_CREAT|O_EXCL when it finds no file: EEXIST is its answer to a
    race, as on ext4) or a shell redirection (O_CREAT|O_TRUNC, no O_EXCL)."""
    cmd = ["cp", str(src), str(dst)] if how == "cp" else ["sh", "-c", 'cat "$0" > "$1"', str(src), str(dst)]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def test_same_name_from_two_mounts_keeps_both(mvfs, tmp_path):
    a = mvfs()
    b = mvfs(db=a.db, store=a.store)
    os.makedirs(a.mnt / "library" / "Trip")
    trials, outcomes = 24, {}
    for i in range(trials):
        fa, fb = tmp_path / ("a%d" % i), tmp_path / ("b%d" % i)
        make_random(fa, 256 << 10)
        make_random(fb, 256 << 10)
        name = "Trip/race%d.jpg" % i
        first, second = (a, b) if i % 2 else (b, a)
        how = "cp" if i % 4 < 2 else "redirect"
        p1, p2 = writer(fa, first.mnt / "library" / name, how), writer(fb, second.mnt / "library" / name, how)
        e1, e2 = p1.communicate()[1], p2.communicate()[1]
        for m in (a, b):
            run([default_bin(), "sync", str(m.mnt)], timeout=120)
        have = everything(a)
        for p, e, f in ((p1, e1, fa), (p2, e2, fb)):
            if p.returncode != 0:
                # only cp's O_EXCL may lose the race, and it says so
                assert how == "cp" and "File exists" in e, (i, how, e)
                continue
            assert sha256_file(f) in have, "trial %d (%s): the bytes of a write that returned 0 are nowhere;" \
                " library: %s" % (i, how, sorted(n for ns in have.values() for n in ns if "race%d" % i in n))
        names = [n for ns in have.values() for n in ns if re.match(r"^race%d[ .]" % i, n)]
        assert "race%d.jpg" % i in names, names
        for n in names:
            if n != "race%d.jpg" % i:
                assert re.match(r"^race%d \(conflict \S+ \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d( \d+)?\)\.jpg$" % i, n), n
        key = (how, p1.returncode, p2.returncode, len(names))
        outcomes[key] = outcomes.get(key, 0) + 1
    print("outcomes (how, rc1, rc2, files):", outcomes)
    assert everything(b) == everything(a)
    a.unmount()
    b.unmount()


def test_rm_while_open_on_this_mount_still_drops_later_writes(mvfs):
    """POSIX: writes to a file removed while open go with it (its content
    at the rm is in .trash/); no conflict copy resurrects it."""
    m = mvfs()
    p = m.mnt / "library" / "gone.txt"
    with open(p, "wb") as f:
        f.write(b"first")
        f.flush()
        os.fsync(f.fileno())
        os.unlink(p)
        f.write(b" and more")
    assert sorted(os.listdir(m.mnt / "library")) == []
    assert "(conflict " not in m.log_text()
    m.unmount()


def everything_in_trash(m):
    out = {}
    for root, dirs, files in os.walk(m.mnt / ".trash"):
        for f in files:
            out.setdefault(sha256_file(os.path.join(root, f)), []).append(f)
    return out


def test_rewrites_of_one_file_from_two_mounts_keep_both(mvfs, tmp_path):
    """Both mounts rewrite an existing file at once (O_TRUNC): the last
    close wins the name; the other's version, recorded after the winner
    opened the file, stays in .trash/ whatever its age (a person's own
    quick saves still leave none: version_min_age)."""
    a = mvfs()
    b = mvfs(db=a.db, store=a.store)
    lost = 0
    for i in range(10):
        name = "doc%d.jpg" % i
        (a.mnt / "library" / name).write_bytes(b"original %d" % i)
        run([default_bin(), "sync", str(a.mnt)], timeout=120)
        for _ in range(100):        # b sees it once its upload is done
            if os.path.exists(b.mnt / "library" / name):
                break
            time.sleep(0.05)
        fa, fb = tmp_path / ("a%d" % i), tmp_path / ("b%d" % i)
        make_random(fa, 128 << 10)
        make_random(fb, 128 << 10)
        p1, p2 = writer(fa, a.mnt / "library" / name, "redirect"), writer(fb, b.mnt / "library" / name, "redirect")
        assert (p1.wait(), p2.wait()) == (0, 0), (p1.stderr.read(), p2.stderr.read())
        for m in (a, b):
            run([default_bin(), "sync", str(m.mnt)], timeout=120)
        have, trash = everything(a), everything_in_trash(a)
        for f in (fa, fb):
            if sha256_file(f) not in have and sha256_file(f) not in trash:
                lost += 1
    assert lost == 0, "%d rewrites that returned 0 are nowhere" % lost
    # one's own quick rewrite leaves no version behind (version_min_age)
    (a.mnt / "library" / "quick.jpg").write_bytes(b"one")
    (a.mnt / "library" / "quick.jpg").write_bytes(b"two")
    run([default_bin(), "sync", str(a.mnt)], timeout=120)
    assert hashlib.sha256(b"one").hexdigest() not in everything_in_trash(a)
    a.unmount()
    b.unmount()
