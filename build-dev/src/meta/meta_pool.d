build-dev/src/meta/meta_pool.o: src/meta/meta_pool.c \
 src/meta/meta_internal.h /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h src/meta/meta.h src/util/log.h
src/meta/meta_internal.h:
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
src/meta/meta.h:
src/util/log.h:
