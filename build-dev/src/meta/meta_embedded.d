build-dev/src/meta/meta_embedded.o: src/meta/meta_embedded.c \
 src/meta/meta_embedded.h /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h src/util/log.h
src/meta/meta_embedded.h:
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
src/util/log.h:
