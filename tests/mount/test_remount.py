"""A remount on the same database and store keeps everything."""

import os

from mvtest import MiB, make_random, run, tree_state


def test_remount_keeps_everything(mvfs, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    sizes = {"empty.txt": 0, "one.bin": 1, "photo 1.jpg": 200_000, "clip.mov": 2 * MiB + 5,
             "notes.md": 4096}
    for i, (name, size) in enumerate(sizes.items()):
        make_random(src / name, size)
        t = 1_500_000_000 + i * 86_400
        os.utime(src / name, (t, t))
    want = tree_state(src)

    m = mvfs()
    lib = m.mnt / "library"
    run(["cp", "-p"] + [src / n for n in sizes] + [lib])
    assert tree_state(lib) == want
    m.unmount()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt)
    assert tree_state(m2.mnt / "library") == want
    m2.unmount()
