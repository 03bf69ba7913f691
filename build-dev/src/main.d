build-dev/src/main.o: src/main.c /usr/include/fuse3/fuse_lowlevel.h \
 /usr/include/fuse3/fuse_common.h /usr/include/fuse3/libfuse_config.h \
 /usr/include/fuse3/fuse_opt.h /usr/include/fuse3/fuse_log.h \
 src/backend/backend.h src/cache/cache.h src/fs/fs.h src/cache/cache.h \
 src/meta/meta.h src/util/sha256.h src/fs/fs_variants.h src/meta/meta.h \
 src/meta/meta_embedded.h src/meta/meta_s3conf.h src/backend/s3_creds.h \
 src/util/secret.h src/util/log.h src/worker/worker.h src/media/media.h
/usr/include/fuse3/fuse_lowlevel.h:
/usr/include/fuse3/fuse_common.h:
/usr/include/fuse3/libfuse_config.h:
/usr/include/fuse3/fuse_opt.h:
/usr/include/fuse3/fuse_log.h:
src/backend/backend.h:
src/cache/cache.h:
src/fs/fs.h:
src/cache/cache.h:
src/meta/meta.h:
src/util/sha256.h:
src/fs/fs_variants.h:
src/meta/meta.h:
src/meta/meta_embedded.h:
src/meta/meta_s3conf.h:
src/backend/s3_creds.h:
src/util/secret.h:
src/util/log.h:
src/worker/worker.h:
src/media/media.h:
