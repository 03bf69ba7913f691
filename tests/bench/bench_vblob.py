"""Vercel Blob against S3, both on their loopback test servers: mvaultfs on
tests/vblob/vblobserver.js next to mvaultfs on s3rver, MB/s up (cp into the
mount until `mvaultfs sync` says the bytes are in the store) and down (cat
after a remount with a fresh data folder), for one big file (default 1 GiB)
and N files of 4 MiB (default 200), 8 in parallel; bench_s3.py's harness.
MVFS_BENCH_S3_BIG_MIB and MVFS_BENCH_S3_FILES scale it down.  Prints a
table and appends it to build/bench.txt.

Both servers are node processes on this machine: the numbers compare the
two protocols' clients in mvaultfs and the servers' own costs, not the
services.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))
sys.path.insert(0, str(REPO / "tests" / "vblob"))

from bench_s3 import BIG_MIB, MiB, NFILES, PAR, S3rver, run  # noqa: E402
from vblobserver import VblobServer  # noqa: E402

WHO = ["s3rver", "vblob"]


def table(b, note):
    lines = ["", "Vercel Blob vs S3 (test servers on 127.0.0.1, %d MiB big file, %d x 4 MiB files, %d in parallel)"
             % (BIG_MIB, NFILES, PAR),
             "%-22s %10s %10s %9s" % ("measure (MB/s)", *WHO, "vblob/s3")]
    for what, r in b.rows.items():
        mb = BIG_MIB if "big" in what else NFILES * 4
        rate = {w: (mb * MiB / 1e6 / r[w]) if r.get(w) else None for w in WHO}
        cells = ["%10.1f" % rate[w] if rate[w] else "%10s" % "-" for w in WHO]
        ratio = "%9.2f" % (rate["vblob"] / rate["s3rver"]) if rate["vblob"] and rate["s3rver"] else "%9s" % "-"
        lines.append("%-22s %s %s" % (what, " ".join(cells), ratio))
    lines.append(note)
    return "\n".join(lines)


def contenders(b, pg):
    with S3rver(folder=b.work / "s3rver") as s3, VblobServer(folder=b.work / "vblob") as vb:
        yield from (("s3rver", lambda: b.mvaultfs_on("s3rver", pg, s3.url("b"), s3.env(),
                                                     "s3_endpoint=" + s3.endpoint)),
                    ("vblob", lambda: b.mvaultfs_on("vblob", pg, vb.url("b"), vb.env())))


if __name__ == "__main__":
    run("mvfs-bench-vblob.", contenders, table)
