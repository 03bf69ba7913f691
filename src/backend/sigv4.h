/*
 * sigv4.h - AWS Signature Version 4, written once.
 *
 * The caller describes a request (method, canonical path, query parameters,
 * headers, payload hash); sigv4_sign() returns the Authorization header
 * value, and optionally the canonical request and string to sign it built
 * (for tests and for debugging a SignatureDoesNotMatch).  Nothing here does
 * I/O, reads the clock or the environment: the time is an argument.
 *
 * Canonical path: the caller passes it already encoded the way the service
 * wants.  For S3 that is the object path with each byte outside the
 * unreserved set percent-encoded once, '/' kept (sigv4_uri_encode with
 * KEEP_SLASH); other services encode the path twice.  Query parameters are
 * passed raw (unencoded); the signer encodes and sorts them.
 */
#ifndef MVFS_SIGV4_H
#define MVFS_SIGV4_H

#include <stddef.h>
#include <time.h>

#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

struct sigv4_param {
	const char *name;	/* raw, not yet percent-encoded */
	const char *value;	/* raw; NULL or "" for a name alone ("?uploads") */
};

struct sigv4_header {
	const char *name;	/* any case; signed lowercased */
	const char *value;	/* trimmed, inner runs of spaces collapsed */
};

struct sigv4_request {
	const char *method;		/* "GET", "PUT", ... */
	const char *canonical_uri;	/* encoded path, starting with '/' */
	const struct sigv4_param *params;
	size_t nparams;
	/* Every header to sign; must include "host" and "x-amz-date" (which
	 * must equal the time below, in sigv4_amz_date form). */
	const struct sigv4_header *headers;
	size_t nheaders;
	const char *payload_hash;	/* 64 hex digits, or UNSIGNED-PAYLOAD */
	const char *region;
	const char *service;		/* "s3" */
	time_t now;
};

struct sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token;	/* NULL when none; the caller sends and signs it */
};

/* Optional outputs of sigv4_sign, each malloc'd (the caller frees them);
 * pass NULL for the ones not wanted. */
struct sigv4_debug {
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers;
};

/* Writes "YYYYMMDDTHHMMSSZ" (17 bytes with the NUL) for NOW, in UTC. */
void sigv4_amz_date(time_t now, char out[17]);

/* Percent-encodes LEN bytes of IN the SigV4 way (RFC 3986 unreserved
 * characters kept, everything else %XX in uppercase hex), keeping '/' when
 * KEEP_SLASH.  Returns a malloc'd string, or NULL when out of memory. */
char *sigv4_uri_encode(const char *in, size_t len, int keep_slash);

/* Signs REQ with CREDS.  Returns a malloc'd Authorization header value
 * ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...")
 * or NULL with errno ENOMEM or EINVAL (a missing field).  DBG may be NULL. */
char *sigv4_sign(const struct sigv4_request *req, const struct sigv4_creds *creds,
		 struct sigv4_debug *dbg);

/* Frees the fields of DBG (not DBG itself); fields may be NULL. */
void sigv4_debug_release(struct sigv4_debug *dbg);

#endif
