build-dev/src/media/media_vips.o: src/media/media_vips.c \
 src/media/media.h
src/media/media.h:
