build-dev/src/util/sha256.o: src/util/sha256.c src/util/sha256.h
src/util/sha256.h:
