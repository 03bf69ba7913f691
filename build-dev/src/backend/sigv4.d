build-dev/src/backend/sigv4.o: src/backend/sigv4.c src/backend/sigv4.h
src/backend/sigv4.h:
