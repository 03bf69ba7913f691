"""Generated trees for the folder tests (stdlib only).

make_photo_tree(dest, seed) writes a deterministic photo library: a few
hundred small JPEG-looking files (FF D8 FF ... FF D9, 1-64 KiB) in folders
3+ levels deep, with spaces and UTF-8 in names, the same file name in
several folders, identical bytes in two places, a few empty folders
(one nested), and mtimes with nanoseconds on every file and folder.

make_clutter_tree(dest, seed) writes a small macOS/Windows-style tree full
of OS clutter (.DS_Store, AppleDouble ._ files, Thumbs.db, desktop.ini,
.directory) next to real photos.

snapshot(root) and mtimes(root) describe a tree for comparisons.
"""

import hashlib
import os
import random
from pathlib import Path

# Folders of the photo tree, relative to its top; every parent is listed
# before its children. The ones in EMPTY_DIRS get no files.
DIRS = [
    "2019",
    "2019/Jan",
    "2019/Jan/Ski trip",
    "2023",
    "2023/Summer",
    "2023/Summer/Beach day",
    "2023/Winter",
    "Été 2021",
    "Été 2021/Côte d'Azur",
    "Phone backup",
    "Phone backup/DCIM",
    "Phone backup/DCIM/Camera",
    "Phone backup/DCIM/Screenshots",
    "日本 旅行",
    "Family (old scans)",
    "2023/Autumn",                    # empty
    "Archive",                        # holds only empty folders
    "Archive/To sort",                # empty
    "Archive/To sort/Later",          # empty
    "Phone backup/DCIM/Camera/Empty", # empty
]
EMPTY_DIRS = {"2023/Autumn", "Archive", "Archive/To sort", "Archive/To sort/Later",
              "Phone backup/DCIM/Camera/Empty"}

# Named files: UTF-8, spaces, punctuation.
NAMED = [
    "Été 2021/plage ü.jpg",
    "Été 2021/Côte d'Azur/Nice – promenade.jpg",
    "日本 旅行/東京 タワー.jpg",
    "日本 旅行/富士山 (2).jpg",
    "2023/Summer/café noël.jpg",
    "2023/Summer/Beach day/Mum's birthday (1).jpg",
    "Family (old scans)/Grand-père & grand-mère 1962.jpg",
    "Family (old scans)/Ελλάδα θάλασσα.jpg",
    "2019/Jan/Ski trip/emoji 😀.jpg",
]
# The same name in several folders (different bytes).
SAME_NAME = ["IMG_0001.jpg", "IMG_0002.jpg", "cover.jpg"]
SAME_NAME_DIRS = ["2019", "2023/Summer", "Phone backup/DCIM/Camera", "Été 2021"]
# Identical bytes in two places: (source, copy).
TWINS = [
    ("Phone backup/DCIM/Camera/IMG_0001.jpg", "2023/Summer/Beach day/IMG_0001.jpg"),
    ("Été 2021/plage ü.jpg", "2023/Summer/plage (copy).jpg"),
    ("2019/Jan/IMG_0105.jpg", "Family (old scans)/same bytes other name.jpg"),
]

T0 = 1_450_000_000          # 2015-12-13
T_SPAN = 8 * 365 * 86_400   # eight years


def jpeg_like(rnd, size):
    """size bytes that look like a JPEG: SOI + APP0 JFIF ... EOI."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    tail = b"\xff\xd9"
    size = max(size, len(head) + len(tail))
    return head + rnd.randbytes(size - len(head) - len(tail)) + tail


def _size(rnd):
    # 1-64 KiB, mostly small
    return rnd.choice([1024, 2048, 3000, 4096, 5000, 8192, 12_345, 16_384, 30_000, 65_536])


def _time_ns(rnd):
    return (T0 + rnd.randrange(T_SPAN)) * 10**9 + rnd.randrange(10**9)


def make_photo_tree(dest, seed=1, n_files=300):
    """Write the photo tree under dest (made if missing). Returns
    {"files": {rel: sha256}, "dirs": set of rel, "empty_dirs": set}."""
    rnd = random.Random(seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for d in DIRS:
        (dest / d).mkdir()

    contents = {}
    for rel in NAMED:
        contents[rel] = jpeg_like(rnd, _size(rnd))
    for name in SAME_NAME:
        for d in SAME_NAME_DIRS:
            contents["%s/%s" % (d, name)] = jpeg_like(rnd, _size(rnd))
    # one empty file and a couple that are not photos
    contents["2019/empty.txt"] = b""
    contents["Family (old scans)/notes.txt"] = ("Scanned by Grand-père, %d\n" % seed).encode()

    full = [d for d in DIRS if d not in EMPTY_DIRS]
    i = 100
    while len(contents) < n_files - len(TWINS):
        d = rnd.choice(full)
        rel = "%s/IMG_%04d.jpg" % (d, i)
        i += 1
        contents.setdefault(rel, jpeg_like(rnd, _size(rnd)))
    for src, dst in TWINS:
        if src not in contents:   # a twin source picked by name
            contents[src] = jpeg_like(rnd, _size(rnd))
        contents[dst] = contents[src]

    for rel in sorted(contents):
        p = dest / rel
        p.write_bytes(contents[rel])
        os.chmod(p, 0o644)
        t = _time_ns(rnd)
        os.utime(p, ns=(t + rnd.randrange(86_400) * 10**9, t))
    # folders last, deepest first: creating entries changes their times
    for d in sorted(DIRS, key=lambda s: -s.count("/")):
        os.chmod(dest / d, 0o755)
        t = _time_ns(rnd)
        os.utime(dest / d, ns=(t, t))
    os.chmod(dest, 0o755)
    t = _time_ns(rnd)
    os.utime(dest, ns=(t, t))
    return {"files": {rel: hashlib.sha256(b).hexdigest() for rel, b in contents.items()},
            "dirs": set(DIRS), "empty_dirs": set(EMPTY_DIRS)}


# OS clutter: (rel path, bytes or None for an AppleDouble of the photo).
CLUTTER_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini", ".directory")


def make_clutter_tree(dest, seed=2):
    """A Mac/Windows-style tree: photos plus .DS_Store, ._X AppleDouble
    files, Thumbs.db, desktop.ini, .directory. Returns {"photos": [rel],
    "clutter": [rel]}."""
    rnd = random.Random(seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    photos, clutter = [], []
    for d in ("Photos", "Photos/Trip", "Photos/Trip/Day 2"):
        (dest / d).mkdir()
        for k in range(3):
            rel = "%s/IMG_%04d.jpg" % (d, k + 1)
            (dest / rel).write_bytes(jpeg_like(rnd, _size(rnd)))
            photos.append(rel)
            # AppleDouble: magic 00 05 16 07, version 2
            ad = "%s/._IMG_%04d.jpg" % (d, k + 1)
            (dest / ad).write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        "
                                    + rnd.randbytes(4000))
            clutter.append(ad)
        (dest / d / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + rnd.randbytes(6140))
        (dest / d / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rnd.randbytes(3000))
        (dest / d / "desktop.ini").write_bytes(b"[.ShellClassInfo]\r\nIconResource=x.ico,0\r\n")
        (dest / d / ".directory").write_bytes(b"[Desktop Entry]\nIcon=folder-pictures\n")
        clutter += ["%s/%s" % (d, n) for n in CLUTTER_NAMES]
    (dest / "._Photos").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00" + rnd.randbytes(100))
    clutter.append("._Photos")
    for p in sorted(dest.rglob("*"), key=lambda p: -len(p.parts)):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
        t = _time_ns(rnd)
        os.utime(p, ns=(t, t))
    os.chmod(dest, 0o755)
    return {"photos": photos, "clutter": clutter}


def walk(root):
    """(dirs, files) relative to root ('/'-joined), root itself not listed."""
    root = str(root)
    dirs, files = set(), set()
    for dp, dns, fns in os.walk(root):
        rel = os.path.relpath(dp, root)
        pre = "" if rel == "." else rel + "/"
        dirs.update(pre + d for d in dns)
        files.update(pre + f for f in fns)
    return dirs, files


def snapshot(root):
    """{"files": {rel: sha256}, "dirs": set of rel} of the tree at root."""
    dirs, files = walk(root)
    out = {}
    for rel in files:
        h = hashlib.sha256()
        with open(os.path.join(str(root), rel), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[rel] = h.hexdigest()
    return {"files": out, "dirs": dirs}


def mtimes(root, seconds=False, top=True):
    """{rel: st_mtime_ns} of every file and folder under root ("." is root
    itself, when top). seconds=True: whole seconds only (tar's default)."""
    dirs, files = walk(root)
    rels = sorted(dirs | files) + (["."] if top else [])
    out = {}
    for rel in rels:
        ns = os.stat(os.path.join(str(root), rel), follow_symlinks=False).st_mtime_ns
        out[rel] = ns // 10**9 if seconds else ns
    return out
