build-dev/src/backend/s3_err.o: src/backend/s3_err.c src/backend/s3_err.h \
 src/backend/http.h
src/backend/s3_err.h:
src/backend/http.h:
