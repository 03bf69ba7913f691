#!/bin/sh
# bench.sh - `make bench`: mvaultfs against a local folder on the same disk,
# and against its peers (s3fs-fuse, rclone mount) in build/bench/peers.{txt,json,png}.
# Report on stdout and in build/bench.txt. MVFS_BIN picks the binary.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p build
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench.py "$@"
# lookup cost against library size (asserted as a ratio), ls -l of 10,000 entries
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} MVFS_BENCH=1 /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
	tests/mount/test_ns_scale.py
# S3: mvaultfs, curl, s3fs-fuse and rclone mount on one s3rver (appends to build/bench.txt)
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_s3.py
# one big file (issue 16): ingest until synced, cold / block-cache / hot reads, next to curl's
# PUT and GET, over http and over https through stunnel, and on the local store next to the local
# file; each read row against its baseline with the issue's target (appends to build/bench.txt)
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_bigfile.py
MVFS_BENCH_TLS=1 MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_bigfile.py
MVFS_BENCH_STORE=local MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_bigfile.py
# block cache and write-back: cold/warm/hot reads, rsync until synced (appends to build/bench.txt)
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_cache.py
# a 2,000-file photo tree: rsync in and out, reruns, ls -lR, a folder rename (appends to build/bench.txt)
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_tree.py
# peers: local folder, mvaultfs (local store and s3rver), s3fs-fuse, rclone mount (full, writes):
# build/bench/peers.txt, peers.json, peers.png (appends the table to build/bench.txt)
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_peers.py
# gThumb under Xvfb opening a folder of 200 photos: local, from the mount with -o desktop_thumbnails,
# and without (build/bench_thumbs.txt, screenshots in build/bench/thumbs-*.png); gThumb, Xvfb and
# ImageMagick's import are for this benchmark only
command -v gthumb >/dev/null && command -v Xvfb >/dev/null && command -v import >/dev/null && \
	command -v dbus-run-session >/dev/null || apt-get install -y gthumb xvfb imagemagick dbus
MVFS_BIN=${MVFS_BIN:-$PWD/build/mvaultfs} /usr/bin/python3 tests/bench/bench_thumbs.py
