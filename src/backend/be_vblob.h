/*
 * be_vblob.h - the Vercel Blob backend: the REST API (version 12) as the
 * official @vercel/blob client speaks it.
 *
 * Store URL: vblob://STORE_ID[/PREFIX][?option=value&...].  Every key K is
 * the blob with pathname PREFIX/K (no random suffix).  Options in the URL
 * (no secrets: the URL is logged):
 *   access=private|public   the blobs' access (default private)
 *   part_size=BYTES         multipart part size (default 8M, the client's)
 *   threshold=BYTES         larger objects go multipart (default: the part size)
 *   concurrency=N           parts in flight per upload (default 4)
 *   retries=N               attempts per request, the first included (default 8)
 *   retry_base_ms=N, retry_cap_ms=N   backoff (default 200 and 10000)
 *   timeout=SECS            a transfer may stall this long (default 30)
 * The read-write token comes from the file named by -o vblob_token_file
 * (struct backend_config), else $BLOB_READ_WRITE_TOKEN; never from the URL
 * or argv, never logged.  The API is $VERCEL_BLOB_API_URL, else the
 * client's default https://vercel.com/api/blob.
 *
 * Follows the contract in backend.h, with these particulars:
 *  - put sends x-allow-overwrite: 1 (the same key always holds the same
 *    bytes) and x-add-random-suffix: 0; a reply naming another pathname is
 *    an error.  Objects above the threshold go as a multipart upload
 *    (x-mpu-action create / upload / complete), parts in parallel; a
 *    content-addressed key already stored with the right size is not sent
 *    again.  An upload never completed is never visible.
 *  - get_range reads the blob URL the API gave (ranged GET); the URL of a
 *    pathname is learned from the API's replies, and asked for (GET
 *    /?url=) when unknown.  Whole-object reads of content-addressed keys
 *    are checked against the hash.
 *  - Requests are retried on what the official client retries
 *    (unknown_error, service_unavailable, internal_server_error, network
 *    failures) and on 429 rate_limited, waiting at least its retry-after
 *    (up to a minute).
 *  - space is not supported.
 */
#ifndef MVFS_BE_VBLOB_H
#define MVFS_BE_VBLOB_H

#include "backend/backend.h"
#include "backend/http.h"

/* Opens the store at REST (what follows "vblob://"); URL is the whole URL
 * for messages.  Checks that the API answers with this token (one list
 * request).  Returns NULL with errno set and one log line: EACCES (no
 * token, or refused), EINVAL (bad URL or option, a token of another
 * store), EHOSTUNREACH (the API unreachable), EPROTO (the API does not
 * answer like Vercel Blob), ENXIO (no such store), ENOMEM. */
struct backend *vblob_backend_open(const char *rest, const char *url, const struct backend_config *cfg);

/* The errno for an answer of the API: HTTP STATUS with the error CODE of
 * its {"error": {"code"}} body ("unknown_error" when there is none, as the
 * official client reads it), or a transport failure FAIL (status 0):
 *   forbidden, store_suspended, not_allowed            -> EACCES
 *   not_found                                          -> ENOENT
 *   store_not_found                                    -> ENXIO
 *   file_too_large                                     -> EFBIG
 *   bad_request and the client-token codes             -> EINVAL
 *   rate_limited, service_unavailable, internal_server_error,
 *   precondition_failed, transport                     -> EIO
 * Other codes (unknown_error too) by status: 401/403 EACCES, 404 ENOENT,
 * other 4xx EINVAL, else EIO. */
int vblob_errno(long status, const char *code, enum http_fail fail);

/* Whether the same request may succeed if sent again: the codes the
 * official client retries (unknown_error, service_unavailable,
 * internal_server_error), rate_limited (after its retry-after), and
 * transport failures other than TLS ones and an overflowing answer. */
int vblob_retryable(const char *code, enum http_fail fail);

#endif
