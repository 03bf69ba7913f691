/*
 * be_s3.h - the S3 backend (AWS S3, MinIO, Ceph RGW, R2, s3rver, ...).
 *
 * Store URL: s3://BUCKET[/PREFIX][?option=value&...].  Every key K is the
 * object PREFIX/K.  Options in the URL (no secrets: the URL is logged):
 *   endpoint=URL        http(s)://host[:port]; default https://s3.REGION.amazonaws.com
 *   region=NAME         default us-east-1
 *   path_style=0|1      default: virtual host, except for IP-address and
 *                       localhost endpoints and bucket names that are not
 *                       DNS labels, which always use path style
 *   unsigned_payload=0|1  1: send UNSIGNED-PAYLOAD instead of the body's hash;
 *                       default 1 over https (TLS protects the body), 0 over http
 *   ca_file=PATH        PEM CAs to trust instead of the system's (default
 *                       $AWS_CA_BUNDLE when set)
 *   part_size=BYTES     multipart part size (suffix K, M, G); default 16M
 *   threshold=BYTES     objects above it go multipart; default = part size
 *   concurrency=N       parts in flight per upload; default 4
 *   retries=N           attempts per request, the first included; default 8
 *   retry_base_ms=N, retry_cap_ms=N   backoff (default 200 and 10000)
 *   timeout=SECS        a transfer may stall this long; default 30
 * struct backend_config fields override these.  Credentials come from the
 * config, else the environment, else ~/.aws/credentials (s3_creds.h).
 *
 * Follows the contract in backend.h, with these S3 particulars:
 *  - Keys follow backend_key_valid(); PREFIX/K must fit in 1024 bytes.
 *  - put stores the SHA-256 (given, or computed for single-request puts)
 *    as x-amz-meta-sha256.  Objects up to the threshold go in one PUT, with
 *    the body's SHA-256 signed (S3 checks it) unless the payload is
 *    unsigned (over https, by default: TLS checks it); larger ones as a multipart
 *    upload with parts in parallel.  An upload interrupted by transient
 *    failures is left for the next put of the key, which reuses the parts
 *    the service still holds when their MD5 matches; any other failure
 *    aborts it.  put returns 0 only once the whole object is in the store.
 *  - get_range checks Content-Range and length on every answer, and the
 *    SHA-256 of the bytes whenever the read covers the whole object and the
 *    hash is known (content-addressed key or x-amz-meta-sha256): wrong
 *    bytes are retried, then -EIO, never handed to the caller.
 *  - space is not supported (S3 has no capacity).
 */
#ifndef MVFS_BE_S3_H
#define MVFS_BE_S3_H

#include "backend/backend.h"

/* Opens the store at REST (what follows "s3://"); URL is the whole URL for
 * messages.  Checks that the bucket answers (one list request) so a wrong
 * endpoint, bucket or key fails here.  Returns NULL with errno set and one
 * log line: EACCES (credentials refused or missing, or the endpoint's
 * certificate not trusted), ENXIO (no such bucket), EHOSTUNREACH
 * (endpoint unreachable), ENOENT (no such CA file), EINVAL (bad URL or option,
 * wrong region), EPROTO (the endpoint does not answer like S3), ENOMEM. */
struct backend *s3_backend_open(const char *rest, const char *url, const struct backend_config *cfg);

#endif
