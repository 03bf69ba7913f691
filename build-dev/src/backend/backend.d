build-dev/src/backend/backend.o: src/backend/backend.c \
 src/backend/backend.h src/backend/be_local.h src/backend/be_s3.h \
 src/util/log.h
src/backend/backend.h:
src/backend/be_local.h:
src/backend/be_s3.h:
src/util/log.h:
