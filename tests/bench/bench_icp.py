"""The ICP store's throughput on loopback, next to s3rver's: mvaultfs on an
asset canister of the test replica (tests/icp/replica.js) and mvaultfs on
s3rver, each ingesting one big file and N files of 4 MiB (cp, then
`mvaultfs sync`), then reading them back through a fresh data folder.

    MVFS_BENCH_S3_BIG_MIB=256 MVFS_BENCH_S3_FILES=50 python3 tests/bench/bench_icp.py

Same sizes and table as bench_s3.py (whose Bench it uses); appended to
build/bench.txt.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))
sys.path.insert(0, str(REPO / "tests" / "icp"))

from bench_s3 import BIG_MIB, NFILES, PAR, MiB, run  # noqa: E402
from icpreplica import IcpReplica  # noqa: E402
from s3server import S3rver  # noqa: E402


def table(b, note):
    who = ["mvaultfs-s3", "mvaultfs-icp"]
    lines = ["", "ICP next to S3 (loopback, %d MiB big file, %d x 4 MiB files, %d in parallel)" % (BIG_MIB, NFILES, PAR),
             "%-22s %14s %14s %9s" % ("measure (MB/s)", *who, "icp/s3")]
    for what, r in b.rows.items():
        mb = BIG_MIB if "big" in what else NFILES * 4
        rate = {w: (mb * MiB / 1e6 / r[w]) if r.get(w) else None for w in who}
        lines.append("%-22s %s %9s" % (what, " ".join("%14.1f" % rate[w] if rate[w] else "%14s" % "-" for w in who),
                                       "%.2f" % (rate[who[1]] / rate[who[0]]) if rate[who[0]] and rate[who[1]] else "-"))
    lines.append(note)
    return "\n".join(lines)


def contenders(b, pg):
    with S3rver(folder=b.work / "s3rver") as s3, IcpReplica(log=b.work / "replica.log") as ic:
        pem = ic.identity(b.work / "id.pem")
        chunk = os.environ.get("MVFS_BENCH_ICP_CHUNK")
        yield from (("mvaultfs-s3", lambda: b.mvaultfs_on("mvaultfs-s3", pg, s3.url("bench"), s3.env(),
                                                          "s3_endpoint=" + s3.endpoint)),
                    ("mvaultfs-icp", lambda: b.mvaultfs_on("mvaultfs-icp", pg,
                                                           ic.url(**({"chunk": chunk} if chunk else {})), {},
                                                           "icp_identity=%s" % pem)))


if __name__ == "__main__":
    run("mvfs-bench-icp.", contenders,
        lambda b, note: table(b, "ICP: the test replica (node, one process, BLS-signing every certificate); " + note))
