/*
 * meta_migrations.h - the schema migrations embedded in the binary.
 *
 * src/meta/sql/NNNN_name.sql files become meta_migrations[] at build time
 * (scripts/embed-sql.sh), ordered by their number; the array ends with a
 * zeroed entry.  A migration, once released, is never edited: a change is a
 * new file with the next number.
 */
#ifndef MVFS_META_MIGRATIONS_H
#define MVFS_META_MIGRATIONS_H

struct meta_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct meta_migration meta_migrations[];

#endif
