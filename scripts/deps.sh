#!/bin/sh
# deps.sh - install the Debian packages the build and the tests need.
# Idempotent: asks apt only when something is missing.
set -eu

PKGS="build-essential pkg-config libfuse3-dev fuse3 libpq-dev postgresql
libcurl4-openssl-dev libssl-dev libxxhash-dev python3-pytest
python3-pytest-timeout python3-pytest-xdist rsync attr psmisc procps util-linux"
# S3: credentials-file parser; the tests' signer cross-check (botocore) and
# the benchmarks' rivals (s3fs-fuse, rclone); node for s3rver, unless a node
# with npm is already there (a nodesource build carries its own npm).
PKGS="$PKGS libinih-dev python3-botocore s3fs rclone"
# bench_bigfile: boto3's managed upload (s3transfer) as the parallel multipart baseline,
# GNU time for the peak RSS of curl and boto3.
PKGS="$PKGS python3-boto3 time"
# Vercel Blob: its API answers in JSON, read with jansson.
PKGS="$PKGS libjansson-dev"
# The store over HTTPS in the tests (issue 16): stunnel terminates TLS in
# front of s3rver with a certificate from a CA openssl makes in the test.
PKGS="$PKGS stunnel4 openssl"
# The ICP backend (issue 13): CBOR envelopes and certificates.
PKGS="$PKGS libcbor-dev"
# S3 answers are XML, read with libxml2 (libvips pulls it in too, but the S3
# backend uses it directly); make fuzz builds its targets with clang's
# libFuzzer (Debian's clang depends on libclang-rt-14-dev, which has it).
PKGS="$PKGS libxml2-dev clang"
# What is mounted where: /proc/self/mountinfo read with libmount (util/mounts.c).
PKGS="$PKGS libmount-dev"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# Variants: libvips (its HEIF/AVIF module pulls libheif with libaom, dav1d,
# libde265 and x265); vipsthumbnail is the benchmarks' rival; PIL makes the
# tests' images.
PKGS="$PKGS libvips-dev libvips-tools python3-pil"
# The desktop's thumbnails: zlib's CRC-32 for the PNG chunks they carry.
PKGS="$PKGS zlib1g-dev"
# Folder tests: exiftool rewrites a JPEG the way photo tools save it.
PKGS="$PKGS libimage-exiftool-perl"
# The file manager's own calls (gio copy, save, move, remove, trash) in the mount
# tests; gvfs's trash backend, under a private session bus, is the trash window.
PKGS="$PKGS libglib2.0-bin gvfs gvfs-daemons dbus"
# The peers benchmark draws its chart with gnuplot (no X: the PNG terminal only).
PKGS="$PKGS gnuplot-nox"
# make deb: dpkg-buildpackage with debhelper, lintian, the man pages from
# scdoc; test_deb.py checks the units with systemd-analyze (from systemd,
# which need not run as PID 1 for it).
PKGS="$PKGS dpkg-dev debhelper lintian scdoc systemd"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
	$SUDO apt-get update -q >/dev/null
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $missing >/dev/null
	echo "deps: installed$missing"
else
	echo "deps: all present"
fi

if [ ! -c /dev/fuse ]; then
	echo "deps: /dev/fuse is missing: load the fuse module (modprobe fuse) or run the container with --device /dev/fuse" >&2
	exit 1
fi

# The S3-compatible test server, pinned in tests/package.json.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -L "$here/tests/node_modules" ]; then
	# a git worktree borrowing another checkout's: npm ci here would empty
	# that folder, under the other checkout's running tests
	[ -x "$here/tests/node_modules/.bin/s3rver" ] ||
		echo "deps: tests/node_modules links to a folder without s3rver: run make deps where it points" >&2
elif [ ! -x "$here/tests/node_modules/.bin/s3rver" ] ||
   [ "$here/tests/package-lock.json" -nt "$here/tests/node_modules/.package-lock.json" ]; then
	(cd "$here/tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	echo "deps: installed s3rver (tests/node_modules)"
fi
