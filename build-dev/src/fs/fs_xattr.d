build-dev/src/fs/fs_xattr.o: src/fs/fs_xattr.c src/fs/fs_ns.h \
 /usr/include/fuse3/fuse_lowlevel.h /usr/include/fuse3/fuse_common.h \
 /usr/include/fuse3/libfuse_config.h /usr/include/fuse3/fuse_opt.h \
 /usr/include/fuse3/fuse_log.h src/fs/fs.h src/cache/cache.h \
 src/meta/meta.h src/util/sha256.h src/util/log.h src/util/name.h \
 src/util/utf8.h
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
src/util/log.h:
src/util/name.h:
src/util/utf8.h:
