"""What a GNOME file manager does, through GIO's own calls (the gio
command): make folders, copy in with attributes, rename, move between
folders, save over a file (GIO's safe save: a .goutputstream-XXXXXX
temporary renamed over it), list and query, remove."""

import os

from mvtest import run


def gio(*args):
    return run(["gio"] + [str(a) for a in args], timeout=60)


def test_gio_file_manager_calls(mvfs, tmp_path):
    m = mvfs(extra_opts=["version_min_age=0"])
    lib = m.mnt / "library"
    src = tmp_path / "IMG_0001.jpg"
    src.write_bytes(b"\xff\xd8\xff" + os.urandom(20000))
    os.utime(src, ns=(1_600_000_000_000_000_000, 1_500_000_000_000_000_000))
    gio("mkdir", "-p", lib / "2024" / "Wedding")
    gio("copy", "--preserve", src, lib / "2024" / "Wedding")
    f = lib / "2024" / "Wedding" / "IMG_0001.jpg"
    assert f.read_bytes() == src.read_bytes()
    assert os.stat(f).st_mtime == 1_500_000_000
    mid = os.getxattr(f, "user.mvault.id")
    info = gio("info", "-a", "standard::size,standard::type", f).stdout
    assert "standard::size: %d" % (20003) in info, info
    listing = gio("list", lib / "2024" / "Wedding").stdout.split()
    assert listing == ["IMG_0001.jpg"], listing
    # GIO's safe save keeps the memory
    run(["sh", "-c", "printf new-content | gio save '%s'" % f])
    assert f.read_bytes() == b"new-content"
    assert os.getxattr(f, "user.mvault.id") == mid
    assert not [n for n in os.listdir(f.parent) if n.startswith(".goutputstream")]
    # rename a folder, move a file between folders
    gio("rename", lib / "2024" / "Wedding", "Our wedding")
    assert os.listdir(lib / "2024") == ["Our wedding"]
    gio("mkdir", lib / "2025")
    gio("move", lib / "2024" / "Our wedding" / "IMG_0001.jpg", lib / "2025")
    assert os.listdir(lib / "2025") == ["IMG_0001.jpg"]
    assert os.getxattr(lib / "2025" / "IMG_0001.jpg", "user.mvault.id") == mid
    gio("remove", lib / "2025" / "IMG_0001.jpg")
    assert os.listdir(lib / "2025") == []
    assert "IMG_0001.jpg" in os.listdir(m.mnt / ".trash")
    m.unmount()
