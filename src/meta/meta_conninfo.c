/*
 * meta_conninfo.c - connection strings without their secrets showing.
 *
 * libpq parses a connection string (PQconninfoParse) and tells us its
 * password, but not where in the text it was; to overwrite argv in place
 * we need the place.  password_spans() finds it the way libpq reads the
 * two forms:
 *
 *   postgresql://USER:PASSWORD@host/db?password=PASSWORD&...
 *       user info runs to the first '@' before any '/'; the password is
 *       what follows its first ':'; parameters are '&'-separated, their
 *       names percent-decoded
 *   host=h password=PASSWORD  or  password = 'pass word\'s'
 *       a value runs to white space, or is quoted with backslash escapes
 *
 * Then, in case the two readings ever differ, the password libpq decodes
 * is also searched for literally and hidden too.
 *
 * Connecting (meta_connect): the user's string stays as it is, expanded by
 * libpq itself (PQconnectdbParams with expand_dbname), and the few
 * timeouts db_timeout implies are put before it in the parameter list, so
 * that anything the string says overrides them.
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "meta/meta_conninfo.h"
#include "meta/meta_internal.h"

#define MAX_SPANS 8

struct span {
	size_t off, len;
};

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	     : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Whether the N bytes at S, percent-decoded, spell "password". */
static int is_password_key(const char *s, size_t n)
{
	static const char want[] = "password";
	size_t k = 0;

	for (size_t i = 0; i < n; i++, k++) {
		char c = s[i];

		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		}
		if (k >= sizeof(want) - 1 || c != want[k])
			return 0;
	}
	return k == sizeof(want) - 1;
}

static size_t uri_prefix(const char *s, size_t len)
{
	static const char *const prefixes[] = { "postgresql://", "postgres://" };

	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(prefixes[i]);

		if (len >= n && strncasecmp(s, prefixes[i], n) == 0)
			return n;
	}
	return 0;
}

static size_t uri_spans(const char *s, size_t len, size_t p, struct span *out)
{
	size_t q = p, n = 0;

	while (q < len && s[q] != '@' && s[q] != '/')
		q++;
	if (q < len && s[q] == '@') {
		const char *colon = memchr(s + p, ':', q - p);

		if (colon)
			out[n++] = (struct span){ (size_t)(colon + 1 - s), q - (size_t)(colon + 1 - s) };
		p = q + 1;
	}
	while (p < len && s[p] != '?')
		p++;
	while (p < len && n < MAX_SPANS) {
		size_t k = ++p, eq, e;

		while (p < len && s[p] != '&')
			p++;
		e = p;
		for (eq = k; eq < e && s[eq] != '='; eq++)
			;
		if (eq < e && is_password_key(s + k, eq - k))
			out[n++] = (struct span){ eq + 1, e - eq - 1 };
	}
	return n;
}

static size_t keyword_spans(const char *s, size_t len, struct span *out)
{
	size_t i = 0, n = 0;

	while (i < len && n < MAX_SPANS) {
		size_t k, klen, v;

		while (i < len && isspace((unsigned char)s[i]))
			i++;
		for (k = i; i < len && s[i] != '=' && !isspace((unsigned char)s[i]); i++)
			;
		klen = i - k;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len || s[i] != '=')
			break;		/* libpq refuses it too */
		i++;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i < len && s[i] == '\'') {
			for (v = ++i; i < len && s[i] != '\''; i++)
				if (s[i] == '\\' && i + 1 < len)
					i++;
		} else {
			for (v = i; i < len && !isspace((unsigned char)s[i]); i++)
				if (s[i] == '\\' && i + 1 < len)
					i++;
		}
		if (klen == 8 && strncmp(s + k, "password", 8) == 0)
			out[n++] = (struct span){ v, i - v };
		if (i < len && s[i] == '\'')
			i++;
	}
	return n;
}

/* Where the passwords are in S[0..LEN): up to MAX_SPANS spans in OUT. */
static size_t password_spans(const char *s, size_t len, struct span *out)
{
	size_t p = uri_prefix(s, len);

	return p ? uri_spans(s, len, p, out) : keyword_spans(s, len, out);
}

/* The password libpq reads in the LEN bytes at S, malloc'd; NULL if none. */
static char *parsed_password(const char *s, size_t len)
{
	char *copy = strndup(s, len), *pw = NULL;
	PQconninfoOption *opts = copy ? PQconninfoParse(copy, NULL) : NULL;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			pw = strdup(o->val);
	PQconninfoFree(opts);
	if (copy)
		memset(copy, 0, len);
	free(copy);
	return pw;
}

size_t meta_conninfo_scrub(char *s, size_t len)
{
	struct span sp[MAX_SPANS];
	size_t n, done = 0;
	char *pw = parsed_password(s, len);

	n = password_spans(s, len, sp);
	for (size_t i = 0; i < n; i++) {
		memset(s + sp[i].off, '*', sp[i].len);
		done += sp[i].len;
	}
	if (pw) {
		size_t pl = strlen(pw);
		char *hit;

		while ((hit = memmem(s, len, pw, pl))) {
			memset(hit, '*', pl);
			done += pl;
		}
		memset(pw, 0, pl);
		free(pw);
	}
	return done;
}

/* Replaces each NEEDLE in MSG (SIZE bytes of buffer) with "***". */
static void replace_all(char *msg, size_t size, const char *needle, size_t nlen)
{
	char *out, *hit, *from = msg;
	size_t used = 0;

	if (!nlen || !strstr(msg, needle) || !(out = malloc(size)))
		return;
	while ((hit = strstr(from, needle))) {
		used += (size_t)snprintf(out + used, size - used, "%.*s***", (int)(hit - from), from);
		from = hit + nlen;
		if (used >= size - 1)
			break;
	}
	if (used < size - 1)
		snprintf(out + used, size - used, "%s", from);
	memcpy(msg, out, size);
	msg[size - 1] = '\0';
	free(out);
}

void meta_conninfo_redact(const char *conninfo, char *msg, size_t size)
{
	struct span sp[MAX_SPANS];
	size_t n, len;
	char *pw;

	if (!conninfo || !msg || !size)
		return;
	len = strlen(conninfo);
	n = password_spans(conninfo, len, sp);
	for (size_t i = 0; i < n; i++) {
		char *needle = strndup(conninfo + sp[i].off, sp[i].len);

		if (needle)
			replace_all(msg, size, needle, sp[i].len);
		free(needle);
	}
	if ((pw = parsed_password(conninfo, len))) {
		replace_all(msg, size, pw, strlen(pw));
		free(pw);
	}
}

/* Appends KEY='VAL' (libpq's quoting) to F. */
static void put_kv(FILE *f, const char *key, const char *val)
{
	fprintf(f, "%s='", key);
	for (; *val; val++) {
		if (*val == '\'' || *val == '\\')
			fputc('\\', f);
		fputc(*val, f);
	}
	fputs("' ", f);
}

char *meta_conninfo_prepare(const char *conninfo, const char *passfile, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *perr = NULL, *out = NULL;
	size_t outlen = 0;
	FILE *f;

	opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		snprintf(err, errlen, "invalid connection string (-o db= or MVAULT_DB): %s",
			 perr ? perr : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		meta_conninfo_redact(conninfo, err, errlen);
		PQfreemem(perr);
		return NULL;
	}
	if (!passfile) {
		PQconninfoFree(opts);
		out = strdup(conninfo);
		if (!out)
			snprintf(err, errlen, "out of memory");
		return out;
	}
	/* the same options, in key=value form, and the passfile */
	f = open_memstream(&out, &outlen);
	if (f) {
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val && strcmp(o->keyword, "passfile") != 0)
				put_kv(f, o->keyword, o->val);
		put_kv(f, "passfile", passfile);
		if (fclose(f) != 0) {
			free(out);
			out = NULL;
		}
	}
	PQconninfoFree(opts);
	if (!out)
		snprintf(err, errlen, "out of memory");
	return out;
}

PGconn *meta_connect(const char *conninfo, int db_timeout)
{
	char ms[24], secs[16], probe[16];
	const char *keys[8], *vals[8];
	int n = 0;

	if (db_timeout > 0) {
		snprintf(ms, sizeof(ms), "%lld", (long long)db_timeout * 1000);
		snprintf(secs, sizeof(secs), "%d", db_timeout < 2 ? 2 : db_timeout);	/* libpq's least */
		snprintf(probe, sizeof(probe), "%d", db_timeout / 4 > 0 ? db_timeout / 4 : 1);
		/* data sent and not acknowledged for db_timeout: the link is
		 * gone (Linux's own bound is some 15 minutes of retransmits) */
		keys[n] = "tcp_user_timeout", vals[n++] = ms;
		/* an idle connection is probed after a quarter of it, three
		 * times a quarter apart: about db_timeout of silence */
		keys[n] = "keepalives", vals[n++] = "1";
		keys[n] = "keepalives_idle", vals[n++] = probe;
		keys[n] = "keepalives_interval", vals[n++] = probe;
		keys[n] = "keepalives_count", vals[n++] = "3";
		/* a connect to a host that does not answer */
		keys[n] = "connect_timeout", vals[n++] = secs;
	}
	keys[n] = "dbname", vals[n++] = conninfo;	/* last: what it sets wins */
	keys[n] = NULL, vals[n] = NULL;
	return PQconnectdbParams(keys, vals, 1);
}
