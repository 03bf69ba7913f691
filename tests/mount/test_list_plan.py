"""A listing page of a big folder, in a database of many users, walks the
folder's index from the cursor and stops after the page; it does not read
and sort the whole folder (issue 10; docs/SCALE.md, "Findings", 1;
src/meta/sql/0021_plans.sql).

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

from pgtest import default_bin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import scale_data  # noqa: E402

# meta_list's order; the pages' text, not the trash's (which sorts)
PAGE_ORDER = "ORDER BY x.memory_id, i.ino"
FULL_SORT = re.compile(r"^\s*(?:->\s+)?Sort\s+\(", re.M)


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
                    "auto_explain.log_nested_statements = on"):
        pg_server.sql(db, 'ALTER DATABASE "%s" SET %s' % (db, setting))
    log = Path(pg_server.dir) / "server.log"
    start = log.stat().st_size

    m = mvfs(db=db, extra_opts=["user=user1", "workers=0", "push=off"])
    assert len(os.listdir(m.mnt / "library" / "folder1")) == 2790     # 60 are in the trash
    assert len(os.listdir(m.mnt / "galleries" / "Gallery 2")) == 300
    m.unmount()

    with open(log, errors="replace") as f:
        f.seek(start)
        plans = page_plans(f.read())
    # pages of 256: 11 of the folder, 2 of the gallery
    assert len(plans) >= 13, "auto_explain logged %d listing pages" % len(plans)
    sorted_whole = [p for p in plans if FULL_SORT.search(p)]
    assert not sorted_whole, "%d of %d pages sorted their whole folder, e.g.:\n%s" % (
        len(sorted_whole), len(plans), sorted_whole[0][:4000])
