build-dev/src/backend/be_local.o: src/backend/be_local.c \
 src/backend/be_local.h src/backend/backend.h src/util/log.h
src/backend/be_local.h:
src/backend/backend.h:
src/util/log.h:
