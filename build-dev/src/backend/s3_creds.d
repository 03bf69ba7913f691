build-dev/src/backend/s3_creds.o: src/backend/s3_creds.c \
 src/backend/s3_creds.h
src/backend/s3_creds.h:
