/*
 * store_label.h - the names of stores as storage edges know them.
 *
 * Seed 001's backend_t labels a place where a memory's metadata or content
 * is: 'neon-db' (the PostgreSQL that holds the rows), 'vercel-blob',
 * 'icp-canister', and ours, 's3' and 'local' (0001_schema.sql).  People
 * name a store by a short name (icp, vblob, neon) or by the label itself;
 * both reach the one label.
 */
#ifndef MVFS_STORE_LABEL_H
#define MVFS_STORE_LABEL_H

/* The backend_t label NAME stands for ("icp" and "icp-canister" ->
 * "icp-canister", "vblob" and "vercel-blob" -> "vercel-blob", "neon" and
 * "neon-db" -> "neon-db", "s3", "local"), a static string; NULL for any
 * other name (NULL included). */
const char *store_label(const char *name);

/* The label of the store a -o store= URL opens: s3:// -> "s3", vblob:// ->
 * "vercel-blob", icp:// -> "icp-canister", anything else (a folder) ->
 * "local".  The same name its objects' storage_backend column gets. */
const char *store_label_of_url(const char *url);

/* The short name of LABEL ("icp-canister" -> "icp"), or LABEL itself. */
const char *store_label_short(const char *label);

#endif
