/*
 * be_icp.h - the Internet Computer backend: objects as assets of a stock
 * ICP asset canister (certified assets, as dfx and icp-cli deploy it).
 *
 * Store URL: icp://CANISTER_ID?host=URL[&identity=FILE][&option=value...]
 *   host=URL        the replica or boundary node (e.g. https://icp-api.io,
 *                   http://127.0.0.1:4943 for dfx start)
 *   identity=FILE   Ed25519 PEM (-o icp_identity= overrides); none: anonymous,
 *                   which may read but not write
 *   chunk=BYTES     bytes per store/create_chunk call (default 1 MiB, a cache
 *                   block; at most 2 MiB, but the IC refuses messages over
 *                   2 MiB, envelope included: 2097152 is refused)
 *   concurrency=N   create_chunk calls in flight per upload (default 4)
 *   retries=N       attempts per request, the first included (default 5)
 *
 * Key K is the asset "/K" (encoding "identity", type
 * application/octet-stream).  Follows the contract in backend.h, with these
 * particulars:
 *  - put of up to CHUNK bytes is one `store`; larger ones a batch
 *    (create_batch, create_chunk per CHUNK, CONCURRENCY at a time, commit_batch with CreateAsset and
 *    SetAssetContent), which the canister applies atomically.  The SHA-256 is
 *    sent along and checked by the canister.  A put of a key that already
 *    holds the same SHA-256 and length sends nothing.
 *  - The identity needs the canister's Commit permission; without it a put or
 *    delete is -EACCES.
 *  - get_range reads the chunks it needs (get, then get_chunk); a read of the
 *    whole object is checked against its SHA-256.
 *  - list asks `list` (every asset) and keeps those under the prefix.
 *  - Certificates are NOT BLS-verified (see icp_agent.h).
 *  - space is not supported.
 */
#ifndef MVFS_BE_ICP_H
#define MVFS_BE_ICP_H

#include "backend/backend.h"

/* Opens the canister at REST (what follows "icp://"); URL is the whole URL
 * for messages.  Fetches the replica's status (root key) and asks the
 * canister for a missing asset, so a wrong host, canister or a canister that
 * is not an asset canister fails here.  NULL with errno and one log line:
 * EINVAL (bad URL, option or identity), ENOENT (no identity file),
 * EHOSTUNREACH, EPROTO (not an IC replica or not an asset canister), ENXIO
 * (no such canister), ENOMEM. */
struct backend *icp_backend_open(const char *rest, const char *url, const struct backend_config *cfg);

#endif
