build-dev/src/fs/fs_file.o: src/fs/fs_file.c src/fs/fs_ns.h \
 /usr/include/fuse3/fuse_lowlevel.h /usr/include/fuse3/fuse_common.h \
 /usr/include/fuse3/libfuse_config.h /usr/include/fuse3/fuse_opt.h \
 /usr/include/fuse3/fuse_log.h src/fs/fs.h src/cache/cache.h \
 src/meta/meta.h src/util/sha256.h src/backend/backend.h src/util/log.h \
 src/util/mime.h
src/fs/fs_ns.h:
/usr/include/fuse3/fuse_lowlevel.h:
/usr/include/fuse3/fuse_common.h:
/usr/include/fuse3/libfuse_config.h:
/usr/include/fuse3/fuse_opt.h:
/usr/include/fuse3/fuse_log.h:
src/fs/fs.h:
src/cache/cache.h:
src/meta/meta.h:
src/util/sha256.h:
src/backend/backend.h:
src/util/log.h:
src/util/mime.h:
