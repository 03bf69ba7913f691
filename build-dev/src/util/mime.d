build-dev/src/util/mime.o: src/util/mime.c src/util/mime.h \
 src/util/utf8.h
src/util/mime.h:
src/util/utf8.h:
