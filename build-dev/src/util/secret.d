build-dev/src/util/secret.o: src/util/secret.c src/util/secret.h
src/util/secret.h:
