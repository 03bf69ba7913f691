"""A bulk import keeps the planner's statistics up to date (0012): right
after 10,000 files were copied into a new library the planner still took
the tables for nearly empty, and listing that folder took four times as
long. The daemon has the file tables analyzed after 500, 1,000, 2,000 ...
upload records, through mvfs_analyze (which runs as the tables' owner:
the daemon's role may not ANALYZE them itself)."""

import os

from cachetest import mvsync


def test_tables_analyzed_as_the_library_grows(mvfs):
    m = mvfs()
    d = m.mnt / "library" / "import"
    d.mkdir()
    before = m.sql("SELECT coalesce(last_analyze::text, 'never') FROM pg_stat_user_tables"
                   " WHERE relname = 'memory_items'")
    for i in range(510):
        (d / ("f%04d.txt" % i)).write_bytes(b"%d\n" % i)
    r = mvsync(m, 120)
    assert r.returncode == 0, r.stderr
    assert "statistics brought up to date after 500 upload records" in m.log_text(), m.log_text()
    after = m.sql("SELECT coalesce(last_analyze::text, 'never') FROM pg_stat_user_tables"
                  " WHERE relname = 'memory_items'")
    assert after != before and after != ["never"], (before, after)
    assert len(os.listdir(d)) == 510
    m.unmount()
