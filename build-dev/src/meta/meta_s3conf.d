build-dev/src/meta/meta_s3conf.o: src/meta/meta_s3conf.c \
 src/meta/meta_s3conf.h src/meta/meta_internal.h \
 /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h src/meta/meta.h
src/meta/meta_s3conf.h:
src/meta/meta_internal.h:
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
src/meta/meta.h:
