build-dev/src/meta/meta_gc.o: src/meta/meta_gc.c \
 src/meta/meta_jobs_internal.h src/meta/meta_internal.h \
 /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h src/meta/meta.h \
 src/meta/meta_jobs.h src/util/log.h
src/meta/meta_jobs_internal.h:
src/meta/meta_internal.h:
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
src/meta/meta.h:
src/meta/meta_jobs.h:
src/util/log.h:
