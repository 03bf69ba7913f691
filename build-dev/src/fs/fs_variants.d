build-dev/src/fs/fs_variants.o: src/fs/fs_variants.c src/fs/fs_variants.h \
 src/cache/cache.h src/fs/fs_ns.h /usr/include/fuse3/fuse_lowlevel.h \
 /usr/include/fuse3/fuse_common.h /usr/include/fuse3/libfuse_config.h \
 /usr/include/fuse3/fuse_opt.h /usr/include/fuse3/fuse_log.h src/fs/fs.h \
 src/meta/meta.h src/util/sha256.h src/meta/meta_variants.h \
 src/util/log.h src/util/name.h
src/fs/fs_variants.h:
src/cache/cache.h:
src/fs/fs_ns.h:
/usr/include/fuse3/fuse_lowlevel.h:
/usr/include/fuse3/fuse_common.h:
/usr/include/fuse3/libfuse_config.h:
/usr/include/fuse3/fuse_opt.h:
/usr/include/fuse3/fuse_log.h:
src/fs/fs.h:
src/meta/meta.h:
src/util/sha256.h:
src/meta/meta_variants.h:
src/util/log.h:
src/util/name.h:
