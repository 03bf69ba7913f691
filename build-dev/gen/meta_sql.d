build-dev/gen/meta_sql.o: build-dev/gen/meta_sql.c \
 src/meta/meta_migrations.h
src/meta/meta_migrations.h:
