#!/bin/sh
# deps.sh - install the Debian packages the build and the tests need.
# Idempotent: asks apt only when something is missing.
set -eu

PKGS="build-essential pkg-config libfuse3-dev fuse3 libpq-dev postgresql
libcurl4-openssl-dev libssl-dev libxxhash-dev python3-pytest
python3-pytest-timeout rsync attr psmisc procps util-linux"

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
