build-dev/src/util/name.o: src/util/name.c src/util/name.h \
 src/util/utf8.h
src/util/name.h:
src/util/utf8.h:
