"""Issue 14: two mounts of one library write the same new name at the same
moment. Every write that returned 0 ends up where a user finds it: one
under the name, the other beside it as "NAME (conflict HOST DATE
TIME).EXT" -- never only a log line. (cp opens with O_EXCL when it found no
file, and may get EEXIST, as it does on ext4: that write failed loudly.)"""
import os
import re
import subprocess

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
