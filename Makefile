# mvaultfs - build, test, benchmark.
#
#   make          build ./mvaultfs
#   make deps     install the Debian packages (and npm test servers) the build and tests need
#   make deb      build/mvaultfs_VERSION_ARCH.deb (dpkg-buildpackage, packaging/deb/)
#   make demo     build and mount the embedded default at ./memories
#   make check    deps, build, unit tests, fuzzing (make fuzz: 10 s, the parsers side by side), mount tests
#                 (some again on S3, on Vercel Blob and on an ICP canister: test servers),
#                 then the suite again under ASan+UBSan
#   make bench    benchmarks (ratios against a local folder, against s3fs-fuse and
#                 rclone mount, and variants against vipsthumbnail), reports in
#                 build/bench.txt, build/bench/peers.{txt,json,png} and build/bench_variants.txt

PKGS     := fuse3 libpq libcurl openssl libxxhash inih vips zlib libcbor jansson libxml-2.0 mount
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# The one place the version is written: VERSION. packaging/deb/debian/changelog's
# top entry must say the same (make deb checks).
VERSION  := $(shell cat VERSION)

CC       ?= cc
# Hardened as Debian builds its packages (lintian's hardening checks): the
# .deb holds this very build (packaging/deb/debian/rules), and `make asan`
# gives its own CFLAGS (FORTIFY_SOURCE and ASan do not mix).
CFLAGS   ?= -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
LDFLAGS  ?= -Wl,-z,relro -Wl,-z,now
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=312 -DMVFS_VERSION=\"$(VERSION)\" -Isrc
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS   += $(PKG_LIBS) -lpthread

B ?= build
SRC_LIB  := $(sort $(wildcard src/util/*.c src/meta/*.c src/backend/*.c src/cache/*.c src/fs/*.c src/media/*.c src/worker/*.c))
SQL      := $(sort $(wildcard src/meta/sql/*.sql))
OBJ_LIB  := $(SRC_LIB:%.c=$(B)/%.o) $(B)/gen/meta_sql.o
# The command line: main.c picks a subcommand of src/cli (one file each, cli.h).
OBJ_CLI  := $(B)/src/main.o $(patsubst %.c,$(B)/%.o,$(sort $(wildcard src/cli/*.c)))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
# Mount tests run in TEST_JOBS processes (pytest-xdist; each has its own
# PostgreSQL and s3rver): they mostly wait on FUSE, the database and fsync,
# so 2 take about half the time of 1 on 2 cores.  TEST_JOBS=1 runs them one
# at a time.
TEST_JOBS ?= 2
# Under the sanitizers the same tests run in ASAN_TEST_JOBS: the tests with
# wall-clock assertions are skipped there and every wait is bounded six
# times as generously (MVFS_TEST_SLACK), so a third process fills the time
# the others wait (make asan's tests: 356 s with 2, 274 s with 3, here).
ASAN_TEST_JOBS ?= 3
# make check compiles in BUILD_JOBS processes (the objects, the unit tests
# and the fuzzers are independent files) and fuzzes its targets side by
# side; the test steps themselves run one after the other.
BUILD_JOBS ?= 2
# --durations: the slowest tests of each run are listed at its end, to keep make check short
PYTEST_ON := /usr/bin/python3 -m pytest --durations=15
PYTEST   := $(PYTEST_ON) -n $(TEST_JOBS)

.PHONY: all deps check unit fuzz $(FUZZ_TARGETS:%=fuzz-%) mount mount-s3 mount-icp mount-vblob asan bench demo clean layers man deb FORCE
all: mvaultfs

mvaultfs: $(B)/mvaultfs
	@if [ "$(B)" = build ]; then cp $(B)/mvaultfs ./mvaultfs; fi

$(B)/mvaultfs: $(OBJ_CLI) $(OBJ_LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Objects depend on the flags they were built with: a new VERSION (which
# main.o carries) or CFLAGS rebuilds them instead of linking stale ones.
FLAGS_LINE = $(CC) $(ALL_CFLAGS) $(LDFLAGS)
$(B)/flags: FORCE
	@mkdir -p $(B)
	@echo '$(FLAGS_LINE)' | cmp -s - $@ || echo '$(FLAGS_LINE)' > $@
FORCE:

$(B)/%.o: %.c $(B)/flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Migrations are embedded in the binary, in file-name order.
$(B)/gen/meta_sql.c: $(SQL) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-sql.sh $(SQL) > $@

$(B)/gen/meta_sql.o: $(B)/gen/meta_sql.c $(B)/flags
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(OBJ_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJ_LIB) $(LDLIBS)

deps:
	sh scripts/deps.sh

# The man pages, from their scdoc sources (kept in step with --help: test_cli.py).
MAN := $(B)/mvaultfs.1 $(B)/mount.mvaultfs.8
man: $(MAN)
$(B)/%: packaging/deb/%.scd
	@mkdir -p $(dir $@)
	scdoc < $< > $@.tmp && mv $@.tmp $@

# The Debian package. dpkg-buildpackage wants debian/ at the top of the tree
# it builds, so debian/ is copied into $(B)/deb/mvaultfs/ with a link to this
# repository; debian/rules then takes $(B)/mvaultfs and the man pages from
# here, already built, so the package costs no second compile.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB      := $(B)/mvaultfs_$(VERSION)_$(DEB_ARCH).deb
deb: $(DEB)
$(DEB): $(B)/mvaultfs $(MAN) VERSION $(shell find packaging/deb -type f)
	@v=$$(dpkg-parsechangelog -l packaging/deb/debian/changelog -S Version); \
	 if [ "$$v" != "$(VERSION)" ]; then \
		echo "packaging/deb/debian/changelog says $$v, VERSION says $(VERSION): add a changelog entry (dch -v $(VERSION))"; exit 1; fi
	rm -rf $(B)/deb && mkdir -p $(B)/deb/mvaultfs
	cp -r packaging/deb/debian $(B)/deb/mvaultfs/
	ln -s $(CURDIR) $(B)/deb/mvaultfs/repo
	cd $(B)/deb/mvaultfs && dpkg-buildpackage -b -us -uc >../build.log 2>&1 || { tail -30 ../build.log; exit 1; }
	cp $(B)/deb/mvaultfs_$(VERSION)_$(DEB_ARCH).deb $@
	lintian --fail-on error,warning $(B)/deb/mvaultfs_$(VERSION)_$(DEB_ARCH).changes

# Only src/fs talks FUSE, only src/meta talks libpq, only src/backend talks curl,
# only src/media talks libvips.
layers:
	@bad=$$(grep -rlE '#include[[:space:]]*[<"](fuse_lowlevel|fuse)\.h[>"]' src | grep -v '^src/fs/'; \
	        grep -rlE '#include[[:space:]]*[<"]libpq-fe\.h[>"]' src | grep -v '^src/meta/'; \
	        grep -rlE '#include[[:space:]]*[<"]curl/curl\.h[>"]' src | grep -v '^src/backend/'; \
	        grep -rlE '#include[[:space:]]*[<"]vips/vips\.h[>"]' src | grep -v '^src/media/'; \
	        grep -rlE '#include[[:space:]]*"backend/' src/fs); \
	 if [ -n "$$bad" ]; then echo "layer violation in: $$bad"; exit 1; fi

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Fuzzing with libFuzzer (Debian's clang): the readers of what others wrote
# (S3 answers, file names, store keys), FUZZ_SECONDS each, from the seeds in
# tests/fuzz/seeds/TARGET.  The files under test are built again by clang
# with coverage and ASan+UBSan; the rest is the plain build's objects.  A
# finding is left in $(B)/fuzz/ (crash-*, the log); run the target on it to
# see it again: $(B)/fuzz/TARGET $(B)/fuzz/crash-...
FUZZ_TARGETS := fuzz_s3_xml fuzz_names
FUZZ_OWN     := src/backend/s3_err.c src/backend/backend.c src/util/name.c src/util/utf8.c
FUZZ_SECONDS ?= 10
FUZZ_CFLAGS   = -std=gnu11 $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(CPPFLAGS) $(PKG_CFLAGS)
$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_OWN) $(OBJ_LIB)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OWN) $(filter-out $(FUZZ_OWN:%.c=$(B)/%.o),$(OBJ_LIB)) $(LDLIBS)

# Each target is a make target of its own (fuzz-TARGET): make -j2 fuzz runs
# them side by side, as make check does (each is one process, timed by the
# clock: together they take FUZZ_SECONDS, not one after the other).
fuzz: $(FUZZ_TARGETS:%=fuzz-%)
fuzz-%: $(B)/fuzz/%
	@rm -rf $(B)/fuzz/$*.corpus && mkdir -p $(B)/fuzz/$*.corpus
	@$(B)/fuzz/$* -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 -print_final_stats=1 \
		-artifact_prefix=$(B)/fuzz/ $(B)/fuzz/$*.corpus tests/fuzz/seeds/$* >$(B)/fuzz/$*.log 2>&1 || \
		{ echo "== $*"; tail -40 $(B)/fuzz/$*.log; exit 1; }
	@echo "== $* ($(FUZZ_SECONDS) s):" $$(grep -E '^stat::(number_of_executed_units|peak_rss_mb)' $(B)/fuzz/$*.log)

# deb: tests/mount/test_deb.py installs the package made from this build.
mount: all deb $(B)/tests/test_backend $(B)/tests/test_meta $(B)/tests/test_icp $(B)/tests/test_vblob
	MVFS_BIN=$(CURDIR)/$(B)/mvaultfs $(PYTEST) -q -p no:cacheprovider tests/mount

# The mount tests again with every store on s3rver (tests/s3/s3server.py).
# Only the tests whose bytes go to the store and back run a second time on
# S3: the namespace tests ask the same database either way (so do the tests
# in these files marked namespace, tests/mount/pytest.ini, skipped here and
# in mount-icp and -vblob: test_tree's folder-time race, empty files).
S3_TESTS := $(addprefix tests/mount/,test_roundtrip.py test_rsync.py test_remount.py test_ops.py \
	test_xattr.py test_cache_writeback.py test_cache_crash.py test_cache_outage.py test_cache_blocks.py \
	test_variants.py test_jobs.py test_visible.py test_versions.py test_plain.py test_tree.py test_gio.py)
mount-s3: all $(B)/tests/test_backend
	MVFS_TEST_STORE=s3 MVFS_BIN=$(CURDIR)/$(B)/mvaultfs $(PYTEST) -q -p no:cacheprovider $(wildcard $(S3_TESTS))

# A few of them again with every store an asset canister on the ICP test
# replica (tests/icp/replica.js): the round trips, remounts from the store,
# rsync, replaced versions.  Kept short: test_icp.py (in mount) covers the
# backend itself.
ICP_TESTS := $(addprefix tests/mount/,test_roundtrip.py test_remount.py test_rsync.py test_ops.py \
	test_xattr.py test_versions.py)
mount-icp: all
	MVFS_TEST_STORE=icp MVFS_BIN=$(CURDIR)/$(B)/mvaultfs $(PYTEST) -q -p no:cacheprovider $(wildcard $(ICP_TESTS))
# A telling few of them again with every store on the Vercel Blob test
# server (tests/vblob/vblobserver.js): bytes up and back, rsync's many
# files, and a crash with uploads pending.  Its own tests (the official
# client against the server, conformance, faults) are test_vblob.py, in mount.
VBLOB_TESTS := $(addprefix tests/mount/,test_roundtrip.py test_rsync.py test_cache_crash.py)
mount-vblob: all
	MVFS_TEST_STORE=vblob MVFS_BIN=$(CURDIR)/$(B)/mvaultfs $(PYTEST) -q -p no:cacheprovider $(VBLOB_TESTS)

ASAN_MAKE = $(MAKE) B=build-asan \
	CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# The whole suite again with AddressSanitizer and UndefinedBehaviorSanitizer,
# but for the tests that run none of the daemon's code (they ran in make
# mount; about 65 s): those marked outside (tests/mount/pytest.ini: the
# official ICP and Vercel Blob clients against their test servers, s3rver's
# atomic writes, test_tree's reference run on a local folder; make mount-s3,
# -icp and -vblob skip them too), test_isolation's SQL attacks on the
# database's policy, and test_deb (the package holds the plain build).
# test_tree's folder-time race runs 150 of its 1,200 rounds here: each round
# runs the same daemon code; the race itself is the plain pass's to catch.
asan:
	$(ASAN_MAKE) -j$(BUILD_JOBS) build-asan/mvaultfs $(UNIT_BIN:$(B)/%=build-asan/%)
	$(ASAN_MAKE) unit-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		MVFS_BIN=$(CURDIR)/build-asan/mvaultfs MVFS_SANITIZED=1 $(PYTEST_ON) -n $(ASAN_TEST_JOBS) -q -p no:cacheprovider tests/mount

unit-asan: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t; done

check: deps
	$(MAKE) -j$(BUILD_JOBS) layers all $(UNIT_BIN) $(FUZZ_TARGETS:%=$(B)/fuzz/%)
	$(MAKE) unit
	$(MAKE) -j$(BUILD_JOBS) -Otarget fuzz
	$(MAKE) mount mount-s3 mount-icp mount-vblob
	$(MAKE) asan

bench: deps all
	sh tests/bench/bench.sh
	MVFS_BIN=$(CURDIR)/$(B)/mvaultfs /usr/bin/python3 tests/bench/bench_variants.py

demo: deps all
	@mkdir -p memories
	@if mountpoint -q memories; then echo "memories/ is already mounted (fusermount3 -u memories to unmount)"; \
	 else ./mvaultfs memories && echo "mounted the embedded default at ./memories; unmount with: fusermount3 -u memories"; fi

clean:
	rm -rf build build-asan mvaultfs

-include $(shell find $(B) -name '*.d' 2>/dev/null)
