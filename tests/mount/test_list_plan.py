"""A listing page of a big folder, in a database of many users, walks the
folder's index from the cursor and stops after the page; it does not read
and sort the whole folder (issue 10; docs/SCALE.md, "Findings", 1;
src/meta/sql/0021_plans.sql).  Neither does it walk any table from before
its cursor, and a big folder takes few pages: 256 rows, then each page four
times the last, up to 2,048 (fs_ns.c, LIST_PAGE_MAX; each page is planned
afresh).  `ls -l` of it asks the daemon no ACL a file: one question, whose
ENOTSUP ls remembers for the whole mount (DECISIONS.md, "Listings of big
folders").

The data set is tests/bench/scale_data.py's, made small (100 users, 8,000
memories; user1 holds 3,000, 2,790 of them active in library/folder1): enough for
the planner to expect one row of a folder, as it did at 1/100 scale, and
choose a full sort of it for every page.  auto_explain, loaded for this
test's database only, logs the plan of every statement the daemon sends,
the pages included (statements nested in mvault_list_page).
"""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from mvtest import wait_until
from pgtest import default_bin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import scale_data  # noqa: E402

# meta_list's order; the pages' text, not the trash's (which sorts)
PAGE_ORDER = "ORDER BY x.memory_id, i.ino"
FULL_SORT = re.compile(r"^\s*(?:->\s+)?Sort\s+\(", re.M)
# auto_explain.log_analyze with log_timing off: "(actual rows=N loops=M)"
PAGE_ROWS = re.compile(r"Limit\s+\(cost=[^)]*\)\s+\(actual rows=(\d+) loops=1\)")
SCAN_ROWS = re.compile(r"((?:Index|Index Only|Seq) Scan (?:using \S+ )?on \S+ (?:i|m|x))\s+\(cost=[^)]*\)"
                       r"\s+\(actual rows=(\d+) loops=1\)")


def walked_past(plan):
    """The scans of the listing's own tables (x, i, m) in PLAN that read
    more rows than the page returned, past the few in the trash it skips
    (2%): a walk from before the cursor reads every page before it."""
    page = PAGE_ROWS.search(plan)
    if not page:
        return ["no Limit node: " + plan[:300]]
    return ["%s: %s rows for a page of %s" % (s.group(1), s.group(2), page.group(1))
            for s in SCAN_ROWS.finditer(plan) if int(s.group(2)) > int(page.group(1)) * 1.1 + 8]


def page_plans(log_text):
    """The plans auto_explain logged for listing pages: each log entry
    starts on a line of its own, its plan on the indented lines after."""
    entries = re.split(r"\n(?=\S)", log_text)
    return [e for e in entries if "duration:" in e and " plan:" in e and PAGE_ORDER in e]


def test_big_folder_page_is_a_walk_not_a_sort(pg_server, mvfs):
    db = pg_server.create_db("t_list_plan_%s" % uuid.uuid4().hex[:8])
    r = subprocess.run([default_bin(), "db", "migrate", "-o", "db=" + pg_server.dsn(db)],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    scale_data.psql(pg_server, scale_data.SUPERUSER, scale_data.GENERATE, dbname=db, timeout=300,
                    vars=dict(U=100, M=8000, H=3000, J=200))
    pg_server.sql(db, "VACUUM (ANALYZE)", timeout=300)
    for setting in ("session_preload_libraries = 'auto_explain'", "auto_explain.log_min_duration = 0",
                    "auto_explain.log_nested_statements = on", "auto_explain.log_analyze = on",
                    "auto_explain.log_timing = off"):
        pg_server.sql(db, 'ALTER DATABASE "%s" SET %s' % (db, setting))
    log = Path(pg_server.dir) / "server.log"
    start = log.stat().st_size

    m = mvfs(db=db, extra_opts=["user=user1", "workers=0", "push=off"], args=["-d"])
    # statfs, which find (fts) asks before it reads a folder, is answered
    # from the count made at mount, in the background: not one of its own
    # while the request waits (before: ~60 ms for 10,000 files)
    wait_until(lambda: "sql: usage" in m.daemon.log_text(), "statfs's count at mount", timeout=30)
    statfs_start = len(m.daemon.log_text())
    os.statvfs(m.mnt / "library")
    text = m.daemon.log_text()
    asked = re.search(r"unique: (\d+), opcode: STATFS", text[statfs_start:])
    assert asked, text[statfs_start:][-2000:]
    answered = text.index("unique: %s, success" % asked.group(1), statfs_start + asked.end())
    assert "sql: usage" not in text[statfs_start + asked.end():answered], "statfs waited for a count"

    requests_start = len(m.log_text(tail=10 ** 7))
    out = subprocess.run(["ls", "-l", str(m.mnt / "library" / "folder1")], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    requests = m.log_text(tail=10 ** 7)[requests_start:]
    assert len(out.splitlines()) == 1 + 2790      # "total", then the files (60 are in the trash)
    assert len(os.listdir(m.mnt / "galleries" / "Gallery 2")) == 300
    m.unmount()

    # every page of files was read ahead (the first when the folder was
    # opened, each next while the kernel took the one before), none while
    # a READDIRPLUS waited for it (before: each of them)
    ahead = requests.count("listing: a page of")
    waited = requests.count("read while the kernel waited")
    assert ahead == 4 and waited == 0, "4 pages of files: %d read, %d of them while the kernel waited" % (
        ahead, waited)
    # ... and the folder's second half beside its first, on a connection
    # of its own (its first page the largest, 2,048)
    assert requests.count("(second half)") == 1, "no second half read beside the first"

    # ls -l: security.selinux and system.posix_acl_access of one file, both
    # ENOTSUP, and no more (ls remembers the device); before: one a file
    xattrs = requests.count("opcode: GETXATTR")
    assert xattrs <= 2, "ls -l of 2,790 files sent %d GETXATTRs" % xattrs

    with open(log, errors="replace") as f:
        f.seek(start)
        plans = page_plans(f.read())
    folder = [p for p in plans if "FROM user_library x" in p]
    gallery = [p for p in plans if "FROM gallery_items x" in p]
    # a page reads what an entry shows, not what opening a file needs
    # (meta_list_entries): no storage key, MIME type or created_at text
    fat = [p for p in folder + gallery
           if re.search(r"storage_key|mime_type|to_char", re.search(r"Query Text: (.*)", p).group(1))]
    assert not fat, "a listing page read columns no entry shows:\n%s" % fat[0][:3000]
    # 2,790 files: 256, then two halves of ~1,267 read side by side: 1,024
    # + the rest, and one page (3 pages before the halves, 11 pages of 256
    # before the growing pages); 300: 256 + 44 (too few for halves)
    assert len(folder) == 4, "the folder of 2,790 files took %d listing pages" % len(folder)
    assert len(gallery) == 2, "the gallery of 300 took %d listing pages" % len(gallery)
    sorted_whole = [p for p in plans if FULL_SORT.search(p)]
    assert not sorted_whole, "%d of %d pages sorted their whole folder, e.g.:\n%s" % (
        len(sorted_whole), len(plans), sorted_whole[0][:4000])
    walks = [w for p in plans for w in walked_past(p)]
    assert not walks, walks[:5]
