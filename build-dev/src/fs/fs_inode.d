build-dev/src/fs/fs_inode.o: src/fs/fs_inode.c src/fs/fs.h \
 src/cache/cache.h src/meta/meta.h src/util/sha256.h src/util/log.h
src/fs/fs.h:
src/cache/cache.h:
src/meta/meta.h:
src/util/sha256.h:
src/util/log.h:
