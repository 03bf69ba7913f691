"""Display and thumb variants: made in the background by the mount's worker,
shown in .display/ and .thumb/, read-only; images refused or failing leave
the original intact and say why."""

import errno
import hashlib
import os
import shutil
import subprocess

import pytest

from imgtest import (JOBS_FAST, animated, broken_icc_jpeg, cmyk_jpeg, exif_rotated_jpeg, heic,
                     helper_alive_pids, huge_png, is_avif, is_webp, jobs, jpeg, listing, png, png16,
                     processing, size_of, wait_listed, wait_processed)
from mvtest import assert_errno, check_consistency, poll, q, run, sql, wait_until
from pgtest import default_bin


def test_variants_appear_with_right_sizes_and_formats(mvfs):
    m = mvfs(extra_opts=JOBS_FAST + ["variants=visible"])
    lib = m.mnt / "library"
    big, wide = jpeg(3000, 2000), png(1200, 300, seed=3)
    (lib / "IMG_0001.jpg").write_bytes(big)
    (lib / "wide.png").write_bytes(wide)
    (lib / "notes.txt").write_bytes(b"not a picture\n")
    (lib / "fake.jpg").write_bytes(b"just text, named like a photo\n")

    names = ["IMG_0001.jpg.webp", "wide.png.webp"]
    assert wait_listed(lib / ".thumb", names) == names, m.log_text()
    assert wait_listed(lib / ".display", names) == names
    # -o variants=visible: the folder shows the variant folders once something is in them
    assert sorted(os.listdir(lib)) == [".display", ".thumb", "IMG_0001.jpg", "fake.jpg", "notes.txt",
                                       "wide.png"]

    d = (lib / ".display" / "IMG_0001.jpg.webp").read_bytes()
    t = (lib / ".thumb" / "IMG_0001.jpg.webp").read_bytes()
    assert is_webp(d) and is_webp(t)
    assert size_of(d) == (2048, 1365, "WEBP")
    assert size_of(t) == (512, 341, "WEBP")
    assert size_of((lib / ".display" / "wide.png.webp").read_bytes())[:2] == (1200, 300)  # never enlarged
    assert size_of((lib / ".thumb" / "wide.png.webp").read_bytes())[:2] == (512, 128)
    st = os.stat(lib / ".thumb" / "IMG_0001.jpg.webp")
    assert st.st_size == len(t) and st.st_mode & 0o777 == 0o444

    # non-images (by content, not by name) have none, and no job
    assert processing(m, "notes.txt").startswith("pending")
    assert processing(m, "fake.jpg").startswith("pending")
    assert len(jobs(m, "type = 'process_assets'")) == 2

    # the rows as seed 000 models them
    rows = sql(m, "SELECT v.variant_type, v.group_id = o.group_id, v.memory_item_id = o.memory_item_id,"
                  " v.recipe_version, v.transform_spec->>'displayMaxSize', v.width, v.height,"
                  " v.processing_status, v.mime_type, v.content_hash = b.content_hash, b.ref_count"
                  " FROM memory_assets v JOIN memory_assets o ON o.id = v.variant_of_asset_id"
                  " JOIN memory_items i ON i.primary_asset_id = o.id JOIN blobs b ON b.id = v.blob_id"
                  " WHERE i.display_name = 'IMG_0001.jpg' ORDER BY v.variant_type")
    assert rows == ["display|t|t|v1|2048|2048|1365|completed|image/webp|t|1",
                    "thumb|t|t|v1|2048|512|341|completed|image/webp|t|1"], rows
    orig = sql(m, "SELECT a.width, a.height, a.megapixels, a.processing_status, m.status"
                  " FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id"
                  " JOIN memories m ON m.id = i.memory_id WHERE i.display_name = 'IMG_0001.jpg'")
    assert orig == ["3000|2000|6|completed|active"]
    # the variant's own bytes are content-addressed like an original's
    h = hashlib.sha256(t).hexdigest()
    assert sql(m, "SELECT count(*) FROM blobs WHERE content_hash = %s" % q(h)) == ["1"]
    assert os.getxattr(lib / "IMG_0001.jpg", "user.mvault.width") == b"3000"
    # computed: a new value changes nothing (rsync -aX), and it has one (XATTR_CREATE)
    os.setxattr(lib / "IMG_0001.jpg", "user.mvault.width", b"1")
    assert os.getxattr(lib / "IMG_0001.jpg", "user.mvault.width") == b"3000"
    with pytest.raises(FileExistsError):
        os.setxattr(lib / "IMG_0001.jpg", "user.mvault.width", b"1", os.XATTR_CREATE)
    assert os.getxattr(lib / ".thumb" / "IMG_0001.jpg.webp", "user.mvault.sha256").decode() == h
    check_consistency(m)
    m.unmount()
    assert not [p for p in helper_alive_pids() if pgid(p) == m.pid], "image helper left running"


def pgid(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_exif_orientation_and_small_images(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    (lib / "turned.jpg").write_bytes(exif_rotated_jpeg(800, 600))
    (lib / "tiny.png").write_bytes(png(40, 30))
    wait_listed(lib / ".thumb", ["tiny.png.webp", "turned.jpg.webp"])
    # shown upright: 800x600 stored, rotated 90 degrees by its EXIF
    assert size_of((lib / ".display" / "turned.jpg.webp").read_bytes())[:2] == (600, 800)
    assert size_of((lib / ".thumb" / "turned.jpg.webp").read_bytes())[:2] == (384, 512)
    assert os.getxattr(lib / "turned.jpg", "user.mvault.width") == b"600"
    assert size_of((lib / ".thumb" / "tiny.png.webp").read_bytes())[:2] == (40, 30)
    m.unmount()


def test_variant_folders_are_read_only(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(jpeg(300, 200))
    wait_listed(lib / ".thumb", ["a.jpg.webp"])
    th = lib / ".thumb"
    assert_errno(errno.EROFS, open, th / "new.webp", "wb")
    assert_errno(errno.EROFS, open, th / "a.jpg.webp", "r+b")
    assert_errno(errno.EROFS, os.truncate, th / "a.jpg.webp", 0)
    assert_errno(errno.EROFS, os.unlink, th / "a.jpg.webp")
    assert_errno(errno.EROFS, os.rename, th / "a.jpg.webp", th / "b.webp")
    assert_errno(errno.EROFS, os.rename, th / "a.jpg.webp", lib / "b.webp")
    assert_errno(errno.EROFS, os.rename, lib / "a.jpg", th / "a.jpg")
    assert_errno(errno.EROFS, os.mkdir, th / "sub")
    assert_errno(errno.EROFS, os.setxattr, th / "a.jpg.webp", "user.x", b"1")
    assert_errno(errno.EEXIST, os.mkdir, lib / ".thumb")
    assert_errno({errno.EEXIST, errno.EISDIR}, os.open, lib / ".display", os.O_CREAT | os.O_WRONLY)
    assert_errno(errno.EROFS, os.rename, lib / ".thumb", lib / "thumbs")
    assert_errno({errno.EROFS, errno.EISDIR}, os.rename, lib / "a.jpg", lib / ".display")
    assert_errno({errno.EROFS, errno.EISDIR, errno.ENOTEMPTY}, os.rmdir, lib / ".thumb")
    assert listing(th) == ["a.jpg.webp"]
    assert (lib / "a.jpg").read_bytes()[:2] == b"\xff\xd8"
    # a name that is not a variant is simply not there
    assert_errno(errno.ENOENT, os.stat, th / "a.jpg")
    assert_errno(errno.ENOENT, os.stat, th / "missing.jpg.webp")
    assert_errno(errno.ENOENT, os.stat, lib / ".display" / "a.jpg.avif")
    # stable numbers, apart from the database's
    ino = os.stat(th / "a.jpg.webp").st_ino
    assert ino >= 1 << 62 and ino < 1 << 63 and os.stat(lib / ".thumb").st_ino >= 1 << 62
    m.unmount()
    m2 = mvfs(db=m.db, store=m.store, data_dir=m.data_dir, mnt=m.mnt, extra_opts=["workers=0"])
    assert os.stat(m2.mnt / "library" / ".thumb" / "a.jpg.webp").st_ino == ino
    m2.unmount()


def make_photos(m):
    """Two photos and a note in library/, a photo in a collection; waits for
    their variants.  Returns the originals' names in library/."""
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(jpeg(640, 480))
    (lib / "b.png").write_bytes(png(300, 200, seed=4))
    (lib / "notes.txt").write_bytes(b"a note\n")
    os.mkdir(m.mnt / "collections" / "Trip")
    (m.mnt / "collections" / "Trip" / "c.jpg").write_bytes(jpeg(400, 300, seed=2))
    wait_listed(lib / ".thumb", ["a.jpg.webp", "b.png.webp", "c.jpg.webp"])
    wait_listed(lib / ".display", ["a.jpg.webp", "b.png.webp", "c.jpg.webp"])
    return ["a.jpg", "b.png", "c.jpg", "notes.txt"]


def test_variant_folders_hidden_but_reachable(mvfs, tmp_path):
    """The default (-o variants=hidden): folders never list .display/ or
    .thumb/, so find, du, ls -a and cp -r see only the person's files; a
    path reaches them, and they list and read as with variants=visible."""
    m = mvfs(extra_opts=JOBS_FAST)
    lib, trip = m.mnt / "library", m.mnt / "collections" / "Trip"
    originals = make_photos(m)
    assert listing(lib) == originals
    assert listing(trip) == ["c.jpg"]
    assert listing(m.mnt / "workspace") == []
    # reachable by name
    for d in (lib / ".display", lib / ".thumb", trip / ".thumb", m.mnt / "workspace" / ".thumb"):
        assert os.path.isdir(d), d
    assert listing(lib / ".thumb") == ["a.jpg.webp", "b.png.webp", "c.jpg.webp"]
    assert listing(trip / ".display") == ["c.jpg.webp"]
    t = (lib / ".thumb" / "a.jpg.webp").read_bytes()
    assert is_webp(t) and size_of(t)[:2] == (512, 384)
    assert os.stat(lib / ".thumb" / "a.jpg.webp").st_size == len(t)
    assert run(["ls", str(lib / ".thumb")]).stdout.split() == ["a.jpg.webp", "b.png.webp", "c.jpg.webp"]
    d = subprocess.run(["cat", str(lib / ".display" / "b.png.webp")], capture_output=True, check=True).stdout
    assert is_webp(d) and d == (lib / ".display" / "b.png.webp").read_bytes()
    # ordinary tools walk the folders and never see them
    assert ".thumb" not in run(["ls", "-a", str(lib)]).stdout.split()
    found = run(["find", str(m.mnt)]).stdout.splitlines()
    assert not [p for p in found if "/.thumb" in p or "/.display" in p], found
    assert str(lib / "a.jpg") in found and str(trip / "c.jpg") in found
    du = run(["du", "-a", str(m.mnt)]).stdout
    assert ".thumb" not in du and ".display" not in du and "a.jpg" in du
    shutil.copytree(lib, tmp_path / "copy")
    assert listing(tmp_path / "copy") == originals
    # the names stay reserved and read-only
    assert_errno(errno.EEXIST, os.mkdir, lib / ".thumb")
    assert_errno(errno.EROFS, os.unlink, lib / ".thumb" / "a.jpg.webp")
    assert_errno(errno.EROFS, open, lib / ".display" / "x.webp", "wb")
    assert_errno(errno.EROFS, os.rename, lib / "a.jpg", lib / ".thumb" / "a.jpg")
    assert_errno(errno.EROFS, os.rename, lib / ".display", lib / "display")
    assert_errno({errno.EEXIST, errno.EISDIR}, os.open, lib / ".display", os.O_CREAT | os.O_WRONLY)
    assert listing(lib) == originals
    m.unmount()


def test_rsync_backup_and_restore_leave_variants_alone(mvfs, tmp_path):
    """rsync -a library/ backup/ copies the originals only; rsync -a
    --delete backup/ library/ restores them, exits 0 and touches no
    variant (it never sees one, so --delete has nothing of ours to remove)."""
    m = mvfs(extra_opts=JOBS_FAST)
    lib, backup = m.mnt / "library", tmp_path / "backup"
    originals = make_photos(m)
    run(["rsync", "-a", "%s/" % lib, "%s/" % backup])
    assert listing(backup) == originals
    assert (backup / "a.jpg").read_bytes() == (lib / "a.jpg").read_bytes()
    thumb = (lib / ".thumb" / "a.jpg.webp").read_bytes()
    ino = os.stat(lib / ".thumb" / "a.jpg.webp").st_ino

    # after the backup: one file changed, one lost, one new
    (lib / "notes.txt").write_bytes(b"changed\n")
    os.unlink(lib / "b.png")
    (lib / "new.jpg").write_bytes(jpeg(200, 200, seed=9))
    wait_listed(lib / ".thumb", ["new.jpg.webp"])
    r = run(["rsync", "-a", "--delete", "-i", "%s/" % backup, "%s/" % lib], check=False)
    assert r.returncode == 0, (r.stdout, r.stderr, m.log_text())
    assert ".thumb" not in r.stdout and ".display" not in r.stdout, r.stdout
    assert "made by mvaultfs and read-only" not in m.log_text()
    assert listing(lib) == originals
    assert (lib / "notes.txt").read_bytes() == b"a note\n"
    assert (lib / "b.png").read_bytes() == (backup / "b.png").read_bytes()
    # the variants of what stayed are untouched; the restored photo gets its own again
    assert (lib / ".thumb" / "a.jpg.webp").read_bytes() == thumb
    assert os.stat(lib / ".thumb" / "a.jpg.webp").st_ino == ino
    wait_listed(lib / ".thumb", ["a.jpg.webp", "b.png.webp", "c.jpg.webp"])
    assert "new.jpg.webp" not in listing(lib / ".thumb")
    # and again: nothing to do, still exit 0
    r = run(["rsync", "-a", "--delete", "-i", "%s/" % backup, "%s/" % lib])
    assert not [ln for ln in r.stdout.splitlines() if ln.startswith((">", "*deleting"))], r.stdout
    check_consistency(m)
    m.unmount()


def test_variants_option_is_checked(tmp_path):
    """-o variants= takes hidden or visible; anything else is one line on
    stderr and exit status 1, before anything is started or mounted."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run([default_bin(), "-f", "-o", "variants=shown", str(mnt)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg")))
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "variants=shown" in p.stderr and "hidden or visible" in p.stderr, p.stderr
    assert not (tmp_path / "xdg").exists()
    help_text = subprocess.run([default_bin(), "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "-o variants=visible" in help_text and "-o variants=hidden" in help_text


def test_variants_in_collections_galleries_and_workspace(mvfs):
    m = mvfs(extra_opts=JOBS_FAST + ["variants=visible"])
    c, g, ws = m.mnt / "collections" / "Trip", m.mnt / "galleries" / "Best", m.mnt / "workspace"
    os.mkdir(c)
    os.mkdir(g)
    (c / "beach.jpg").write_bytes(jpeg(600, 400, seed=1))
    (ws / "draft.png").write_bytes(png(500, 500, seed=2))
    wait_listed(c / ".thumb", ["beach.jpg.webp"])
    wait_listed(ws / ".thumb", ["draft.png.webp"])
    os.link(c / "beach.jpg", g / "beach.jpg")
    assert listing(g / ".thumb") == ["beach.jpg.webp"]
    assert listing(m.mnt / "library" / ".thumb") == ["beach.jpg.webp"]
    assert os.stat(g / ".thumb" / "beach.jpg.webp").st_ino == os.stat(c / ".thumb" / "beach.jpg.webp").st_ino
    assert listing(c) == [".display", ".thumb", "beach.jpg"]
    assert listing(ws) == [".display", ".thumb", "draft.png"]
    # a folder with no variants ready lists no variant folders; .trash has none
    os.mkdir(m.mnt / "collections" / "Empty")
    assert listing(m.mnt / "collections" / "Empty") == []
    assert listing(m.mnt / "collections" / "Empty" / ".thumb") == []
    assert_errno(errno.ENOENT, os.stat, m.mnt / ".trash" / ".thumb")
    m.unmount()


def test_rm_restore_and_rewrite_carry_variants(mvfs):
    # every replaced version kept: the old one's variants stay tombstoned
    m = mvfs(extra_opts=JOBS_FAST + ["version_min_age=0"])
    lib, trash = m.mnt / "library", m.mnt / ".trash"
    (lib / "p.jpg").write_bytes(jpeg(800, 600))
    wait_listed(lib / ".thumb", ["p.jpg.webp"])
    wait_listed(lib / ".display", ["p.jpg.webp"])   # both made before the removal
    os.unlink(lib / "p.jpg")
    assert listing(lib / ".thumb") == []
    assert sql(m, "SELECT lifecycle_status, count(*) FROM memory_assets GROUP BY 1") == ["tombstoned|3"]
    assert sql(m, "SELECT count(*) FROM asset_delete_jobs WHERE status = 'pending'") == ["3"]
    check_consistency(m)
    os.rename(trash / "p.jpg", lib / "p.jpg")
    assert listing(lib / ".thumb") == ["p.jpg.webp"]
    assert sql(m, "SELECT count(*) FROM asset_delete_jobs WHERE status = 'pending'") == ["0"]
    check_consistency(m)

    # a new version gets new variants; the old ones go with the old version
    old = (lib / ".display" / "p.jpg.webp").read_bytes()
    (lib / "p.jpg").write_bytes(jpeg(400, 900, seed=5))
    def new_display():
        try:    # the old one goes with the old version, the new one comes later
            return size_of((lib / ".display" / "p.jpg.webp").read_bytes())[:2] == (400, 900)
        except FileNotFoundError:
            return False
    assert poll(new_display, timeout=60)
    assert (lib / ".display" / "p.jpg.webp").read_bytes() != old
    assert sql(m, "SELECT lifecycle_status, count(*) FROM memory_assets WHERE variant_type IS NOT NULL"
                  " GROUP BY 1 ORDER BY 1") == ["active|2", "tombstoned|2"]
    check_consistency(m)
    m.unmount()


def test_over_80_megapixels_refused_before_decoding(mvfs, tmp_path):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    data = huge_png(tmp_path, 10000, 10000)          # 100 MP, ~100 KB
    (lib / "huge.png").write_bytes(data)
    (lib / "ok.jpg").write_bytes(jpeg(640, 480))
    p = wait_processed(m, "huge.png")
    assert p.startswith("failed|"), p
    assert "100.0 megapixels" in p and "80 megapixel limit" in p, p
    reason = os.getxattr(lib / "huge.png", "user.mvault.processing_error").decode()
    assert "over the 80 megapixel limit" in reason
    assert os.getxattr(lib / "huge.png", "user.mvault.processing_status") == b"failed"
    assert "user.mvault.processing_error" not in os.listxattr(lib / "huge.png")   # read by name only
    # the original is kept and readable, no variants, the job failed at once
    assert (lib / "huge.png").read_bytes() == data
    assert jobs(m, "payload->>'originalAssetId' = (SELECT primary_asset_id::text FROM memory_items"
                   " WHERE display_name = 'huge.png')")[0].startswith("process_assets|failed|1|")
    assert sql(m, "SELECT width IS NULL AND megapixels IS NULL FROM memory_assets a JOIN memory_items i"
                  " ON a.id = i.primary_asset_id WHERE i.display_name = 'huge.png'") == ["t"]
    wait_listed(lib / ".thumb", ["ok.jpg.webp"])
    assert listing(lib / ".thumb") == ["ok.jpg.webp"]
    m.unmount()


def test_truncated_jpeg_fails_its_job_not_the_mount(mvfs):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    whole = jpeg(1600, 1200)
    (lib / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    p = wait_processed(m, "cut.jpg")
    assert p.startswith("failed|") and len(p) > len("failed|") + 10, p
    assert (lib / "cut.jpg").read_bytes() == whole[: len(whole) // 2]
    # the mount and the queue go on
    (lib / "after.jpg").write_bytes(jpeg(300, 300))
    wait_listed(lib / ".thumb", ["after.jpg.webp"])
    assert listing(lib / ".thumb") == ["after.jpg.webp"]
    assert not jobs(m, "status = 'processing'")
    m.unmount()


BAD_INPUTS = {
    # name: (maker, expected outcome "ok" or "fail" or "either")
    "png-named.jpg": (lambda t: png(300, 200), "ok"),              # lies about its type
    "jpeg-named.txt": (lambda t: jpeg(300, 200), "ok"),
    "empty.jpg": (lambda t: b"", "none"),                         # not an image: no job
    "strip.png": (lambda t: png(1, 100000, mode="L"), "ok"),      # 1 x 100000
    "cmyk.jpg": (lambda t: cmyk_jpeg(400, 300), "ok"),
    "deep.png": (lambda t: png16(t, 400, 300), "ok"),              # 16-bit
    "badicc.jpg": (lambda t: broken_icc_jpeg(400, 300), "either"),
    "anim.gif": (lambda t: animated("GIF", 200, 150), "ok"),
    "anim.webp": (lambda t: animated("WEBP", 200, 150), "ok"),
    "garbage.jpg": (lambda t: b"\xff\xd8\xff\xe0" + os.urandom(5000), "fail"),
    "photo.heic": (lambda t: heic(t, 800, 600), "ok"),
}


def test_bad_inputs(mvfs, tmp_path):
    m = mvfs(extra_opts=JOBS_FAST)
    lib = m.mnt / "library"
    for name, (make, _) in BAD_INPUTS.items():
        (lib / name).write_bytes(make(tmp_path))
    problems = []
    for name, (_, want) in BAD_INPUTS.items():
        if want == "none":
            continue
        p = wait_processed(m, name)
        status, _, reason = (p or "missing||").partition("|")
        if want == "ok" and status != "completed":
            problems.append("%s: %s" % (name, p))
        if want == "fail" and (status != "failed" or len(reason) < 10):
            problems.append("%s: %s" % (name, p))
        if want == "either" and not (status == "completed" or (status == "failed" and reason)):
            problems.append("%s: %s" % (name, p))
        if status == "completed":
            t = (lib / ".thumb" / (name + ".webp")).read_bytes()
            w, h, fmt = size_of(t)
            if fmt != "WEBP" or max(w, h) > 512:
                problems.append("%s: thumb %dx%d %s" % (name, w, h, fmt))
    assert not problems, "\n".join(problems) + "\n" + m.log_text()
    assert processing(m, "empty.jpg").startswith("pending")
    w, h, _ = size_of((lib / ".display" / "strip.png.webp").read_bytes())
    assert (w, h) == (1, 2048)
    assert size_of((lib / ".display" / "cmyk.jpg.webp").read_bytes())[:2] == (400, 300)
    assert os.getxattr(lib / "cmyk.jpg", "user.mvault.color_space") == b"cmyk"
    assert not jobs(m, "status IN ('processing', 'pending', 'retry')")
    # the mount is fine: every original reads back
    for name, (make, _) in BAD_INPUTS.items():
        assert os.stat(lib / name).st_size == len((lib / name).read_bytes())
    m.unmount()


def test_avif_display_option(mvfs):
    m = mvfs(extra_opts=JOBS_FAST + ["display_format=avif"])
    lib = m.mnt / "library"
    (lib / "a.jpg").write_bytes(jpeg(900, 600))
    wait_listed(lib / ".display", ["a.jpg.avif"])
    d = (lib / ".display" / "a.jpg.avif").read_bytes()
    assert is_avif(d)
    assert os.getxattr(lib / ".display" / "a.jpg.avif", "user.mvault.mime") == b"image/avif"
    assert is_webp((lib / ".thumb" / "a.jpg.webp").read_bytes())
    assert_errno(errno.ENOENT, os.stat, lib / ".display" / "a.jpg.webp")
    m.unmount()


def test_no_workers_no_variants(mvfs):
    """-o workers=0: nothing processes, the job waits; another mount's
    worker (or `mvaultfs worker`) picks it up."""
    m = mvfs(extra_opts=["workers=0"])
    (m.mnt / "library" / "a.jpg").write_bytes(jpeg(300, 200))
    # enqueued when the upload (in the background) completes
    assert wait_until(lambda: jobs(m), "a.jpg's job to be enqueued") == ["process_assets|pending|0|"]
    m2 = mvfs(db=m.db, store=m.store, extra_opts=JOBS_FAST)
    wait_listed(m2.mnt / "library" / ".thumb", ["a.jpg.webp"])
    assert listing(m.mnt / "library" / ".thumb") == ["a.jpg.webp"]
    m2.unmount()
    m.unmount()


@pytest.mark.timing
def test_decoder_time_limit(mvfs):
    """A decoder that runs past media_timeout is killed; the job is retried
    later (a slow machine is not bad input), the mount is unharmed."""
    m = mvfs(extra_opts=JOBS_FAST + ["media_timeout=1"], env={"MVFS_TEST_MEDIA_DELAY": "3"})
    lib = m.mnt / "library"
    (lib / "slow.jpg").write_bytes(jpeg(200, 200))
    rows = poll(lambda: jobs(m, "status = 'retry'"), timeout=30)
    assert rows and "time limit of 1 s" in rows[0], (rows, m.log_text())
    assert processing(m, "slow.jpg").startswith("pending|will retry: the decoder ran past")
    assert (lib / "slow.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert sql(m, "SELECT run_at > mvault_now() + interval '20 seconds' FROM background_jobs") == ["t"]
    m.unmount()
