build-dev/src/backend/be_s3.o: src/backend/be_s3.c src/backend/be_s3.h \
 src/backend/backend.h src/backend/http.h src/backend/s3_creds.h \
 src/backend/s3_err.h src/backend/s3_internal.h src/backend/sigv4.h \
 src/util/log.h src/util/sha256.h
src/backend/be_s3.h:
src/backend/backend.h:
src/backend/http.h:
src/backend/s3_creds.h:
src/backend/s3_err.h:
src/backend/s3_internal.h:
src/backend/sigv4.h:
src/util/log.h:
src/util/sha256.h:
