build-dev/src/cache/cache.o: src/cache/cache.c src/cache/cache_internal.h \
 src/cache/cache.h src/backend/backend.h src/util/log.h
src/cache/cache_internal.h:
src/cache/cache.h:
src/backend/backend.h:
src/util/log.h:
