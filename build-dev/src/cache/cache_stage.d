build-dev/src/cache/cache_stage.o: src/cache/cache_stage.c \
 src/cache/cache_internal.h src/cache/cache.h src/backend/backend.h \
 src/util/log.h src/util/sha256.h
src/cache/cache_internal.h:
src/cache/cache.h:
src/backend/backend.h:
src/util/log.h:
src/util/sha256.h:
