"""rsync into and out of library/ (flat: files only). rsync writes a temp
file and renames it over the final name, so this also covers rename-over."""

import os
import random

import pytest

from mvtest import MiB, run, tree_state

SIZES = [0, 1, 2, 100, 511, 4096, 4097, 65_536, 131_073, 1 * MiB, 1 * MiB + 3, 3 * MiB - 1]


def make_tree(d, n=30, seed=7):
    rnd = random.Random(seed)
    d.mkdir()
    for i in range(n):
        name = "file %02d.bin" % i if i % 5 == 0 else "f%02d_%s.dat" % (i, rnd.choice("abcxyz"))
        (d / name).write_bytes(os.urandom(SIZES[i % len(SIZES)]))
        t = 1_400_000_000 + i * 3_600 * 24 + rnd.randrange(3600)
        os.utime(d / name, ns=(t * 10**9 + rnd.randrange(10**9),) * 2)
        os.chmod(d / name, 0o644)


def changed_files(itemized):
    return sorted(line.split(None, 1)[1] for line in itemized.splitlines() if line.startswith(">f"))


def test_rsync_round_trip(mvfs, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    want = tree_state(src)
    m = mvfs()
    lib = m.mnt / "library"

    run(["rsync", "-a", "%s/" % src, "%s/" % lib])
    assert tree_state(lib) == want

    out = tmp_path / "out"
    run(["rsync", "-a", "%s/" % lib, "%s/" % out])
    assert tree_state(out) == want

    r = run(["rsync", "-a", "--itemize-changes", "%s/" % src, "%s/" % lib])
    assert changed_files(r.stdout) == [], "second rsync transferred files:\n" + r.stdout

    # change three files, add one: rsync sends exactly those, through
    # temp files renamed over the old names
    names = sorted(want)
    for name in names[:3]:
        (src / name).write_bytes(os.urandom(10_000))
    (src / "new file.bin").write_bytes(os.urandom(70_000))
    r = run(["rsync", "-a", "--itemize-changes", "%s/" % src, "%s/" % lib])
    assert changed_files(r.stdout) == sorted(names[:3] + ["new file.bin"]), r.stdout
    assert tree_state(lib) == tree_state(src)

    # and back out again
    run(["rsync", "-a", "--delete", "%s/" % lib, "%s/" % out])
    assert tree_state(out) == tree_state(src)
    m.unmount()
