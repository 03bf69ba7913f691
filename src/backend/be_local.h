/*
 * be_local.h - the local-folder backend.
 *
 * Objects are plain files at ROOT/KEY, so a key "sha256/ab/cd/abcd..." is
 * the file ROOT/sha256/ab/cd/abcd...  Follows the contract in backend.h, with
 * these local particulars:
 *  - Keys are 1..1024 bytes of [A-Za-z0-9._/-], with no leading '/', no
 *    empty, "." or ".." component, no component over 200 bytes, and no
 *    component starting with ".tmp." (reserved for files being written);
 *    anything else is -EINVAL.
 *  - A key cannot be both an object and a "directory" of other keys (both
 *    "a" and "a/b"); the second put fails with -ENOTDIR or -EISDIR.
 *    backend_key_for() keys never collide this way.
 *  - EDQUOT is reported as -ENOSPC: either way the store is full for us.
 *  - put does not keep SHA256_HEX (the key already names the content).
 *  - del leaves empty directories behind; list does not show them.
 */
#ifndef MVFS_BE_LOCAL_H
#define MVFS_BE_LOCAL_H

#include "backend/backend.h"

/* Opens the store rooted at ROOT, creating ROOT (mode 0700, missing parents
 * too) when it does not exist.  Returns a backend to release with
 * backend_free(), or NULL with errno set and a log line. */
struct backend *local_backend_open(const char *root);

#endif
