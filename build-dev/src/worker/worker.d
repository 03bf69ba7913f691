build-dev/src/worker/worker.o: src/worker/worker.c src/worker/worker.h \
 src/media/media.h src/backend/backend.h src/cache/cache.h \
 src/meta/meta_jobs.h src/meta/meta.h src/util/log.h src/util/sha256.h
src/worker/worker.h:
src/media/media.h:
src/backend/backend.h:
src/cache/cache.h:
src/meta/meta_jobs.h:
src/meta/meta.h:
src/util/log.h:
src/util/sha256.h:
