"""The desktop's thumbnails (-o desktop_thumbnails): the freedesktop.org
Thumbnail Managing Standard's PNGs, written from the thumb variants into
$XDG_CACHE_HOME/thumbnails/{normal,large}/<md5 of the URI>.png, found valid
by GLib itself (gio info), carried over a rename of the file or of its
folder, removed with the file, and never written over a newer one."""

import hashlib
import os
import subprocess
import urllib.parse
from pathlib import Path

from PIL import Image, PngImagePlugin

from imgtest import JOBS_FAST, jpeg
from mvtest import wait_until

SIZES = {"normal": 128, "large": 256}


def uri(path):
    # g_filename_to_uri's escaping (GLib's own check below agrees with it)
    return "file://" + urllib.parse.quote(os.fsencode(str(path)), safe="/!$&'()*+,=:@")


def thumb(cache, size, path):
    return cache / "thumbnails" / size / (hashlib.md5(uri(path).encode()).hexdigest() + ".png")


def tags(p):
    with Image.open(p) as im:
        return dict(im.text), im.size


def gio_thumbnail(path, cache):
    """What GIO says of PATH's thumbnail: (thumbnail::path, is-valid)."""
    out = subprocess.run(["gio", "info", "-a", "thumbnail::path,thumbnail::is-valid", str(path)],
                         capture_output=True, text=True, timeout=30, check=True,
                         env=dict(os.environ, XDG_CACHE_HOME=str(cache))).stdout
    attrs = dict(line.strip().split(": ", 1) for line in out.splitlines() if line.startswith("  thumbnail::"))
    return attrs.get("thumbnail::path"), attrs.get("thumbnail::is-valid")


def valid_for(cache, path):
    """Both thumbnails of PATH exist and say they are PATH's as it is now."""
    st = os.stat(path)
    for size in SIZES:
        p = thumb(cache, size, path)
        if not p.exists():
            return False
        t, _ = tags(p)
        if (t.get("Thumb::URI"), t.get("Thumb::MTime"), t.get("Thumb::Size")) != \
                (uri(path), str(int(st.st_mtime)), str(st.st_size)):
            return False
    return True


def test_desktop_thumbnails(mvfs, tmp_path):
    cache = tmp_path / "xdgcache"
    m = mvfs(extra_opts=JOBS_FAST + ["desktop_thumbnails"])
    trip = m.mnt / "library" / "trip"
    trip.mkdir()
    names = {"a b;#.jpg": (1200, 800), "\u00e9t\u00e9.jpg": (600, 900), "c.jpg": (640, 480)}
    for i, (name, (w, h)) in enumerate(names.items()):
        (trip / name).write_bytes(jpeg(w, h, seed=i))
    wait_until(lambda: all(valid_for(cache, trip / n) for n in names), m.log_text, timeout=90, interval=0.2)

    for name, (w, h) in names.items():
        for size, edge in SIZES.items():
            p = thumb(cache, size, trip / name)
            _, dims = tags(p)
            assert max(dims) == edge and abs(dims[0] / dims[1] - w / h) < 0.02, (name, size, dims)
            assert p.stat().st_mode & 0o777 == 0o600
        # GLib's own lookup and validity check (what GTK apps use) agree
        assert gio_thumbnail(trip / name, cache) == (str(thumb(cache, "large", trip / name)), "TRUE")
    for size in SIZES:
        assert (cache / "thumbnails" / size).stat().st_mode & 0o777 == 0o700
        assert not [f for f in os.listdir(cache / "thumbnails" / size) if not f.endswith(".png")]
    assert "desktop thumbnails" in m.log_text()

    # a rename carries them over; the old URI's go
    old = {s: thumb(cache, s, trip / "c.jpg") for s in SIZES}
    os.rename(trip / "c.jpg", trip / "d.jpg")
    wait_until(lambda: valid_for(cache, trip / "d.jpg") and not any(p.exists() for p in old.values()),
               "c.jpg's thumbnails as d.jpg's", timeout=30)

    # so does a rename of their folder, for every file below it
    (m.mnt / "library" / "trips").mkdir()
    os.rename(trip, m.mnt / "library" / "trips" / "2023")
    trip2 = m.mnt / "library" / "trips" / "2023"
    moved = ["a b;#.jpg", "\u00e9t\u00e9.jpg", "d.jpg"]
    wait_until(lambda: all(valid_for(cache, trip2 / n) for n in moved), "the moved folder's", timeout=30)
    assert not [n for n in moved if thumb(cache, "normal", trip / n).exists()]
    assert gio_thumbnail(trip2 / "d.jpg", cache)[1] == "TRUE"

    # a removed file's go
    gone = {s: thumb(cache, s, trip2 / "a b;#.jpg") for s in SIZES}
    os.unlink(trip2 / "a b;#.jpg")
    wait_until(lambda: not any(p.exists() for p in gone.values()), "the removed file's to go", timeout=30)

    # a newer thumbnail (an application's, for a later time) is not written over,
    # while an older one is made again for the file's new time
    ete, d = trip2 / "\u00e9t\u00e9.jpg", trip2 / "d.jpg"
    t0 = int(os.stat(ete).st_mtime)
    app = thumb(cache, "normal", ete)
    info = PngImagePlugin.PngInfo()
    for k, v in (("Thumb::URI", uri(ete)), ("Thumb::MTime", str(t0 + 100)), ("Software", "an app")):
        info.add_text(k, v)
    Image.new("RGB", (128, 96), (200, 10, 10)).save(app, pnginfo=info)
    before = app.read_bytes()
    os.utime(ete, (t0 + 50, t0 + 50))
    os.utime(d, (t0 + 50, t0 + 50))      # queued after ete's: once it is done, so is ete's
    wait_until(lambda: valid_for(cache, d), "d.jpg's for its new time", timeout=30)
    assert app.read_bytes() == before
    assert tags(thumb(cache, "large", ete))[0]["Thumb::MTime"] == str(t0 + 50)   # older: made again
    m.unmount()
    assert "newer kept" in m.log_text()


def test_desktop_thumbnails_at_listing(mvfs, tmp_path):
    """Variants made without them (another worker, or before the option was
    on) get their thumbnails when a mount first lists the folder: from the
    thumb variant, read through the cache, the original never read."""
    cache = tmp_path / "xdgcache"
    m = mvfs(extra_opts=JOBS_FAST)                   # -o db=: off by default
    (m.mnt / "library" / "old").mkdir()
    for i in range(2):
        (m.mnt / "library" / "old" / ("p%d.jpg" % i)).write_bytes(jpeg(900, 600, seed=i))
    wait_until(lambda: m.sql("SELECT count(*) FROM memory_assets WHERE variant_type = 'thumb'") == ["2"],
               m.log_text, timeout=90)
    m.unmount()
    assert not (cache / "thumbnails").exists()

    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, extra_opts=["workers=0", "desktop_thumbnails=on"])
    old = m2.mnt / "library" / "old"
    assert sorted(os.listdir(old)) == ["p0.jpg", "p1.jpg"]
    wait_until(lambda: all(valid_for(cache, old / n) for n in ("p0.jpg", "p1.jpg")), m2.log_text, timeout=30)
    assert gio_thumbnail(old / "p1.jpg", cache)[1] == "TRUE"
