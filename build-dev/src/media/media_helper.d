build-dev/src/media/media_helper.o: src/media/media_helper.c \
 src/media/media.h src/util/log.h
src/media/media.h:
src/util/log.h:
