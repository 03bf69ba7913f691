/*
 * s3_creds.c - credentials from the environment and ~/.aws/credentials.
 *
 * The credentials file is INI, parsed with libinih.  Values are copied once
 * and wiped when released; none of them is ever logged, only the name of
 * the place they came from.
 */
#include "backend/s3_creds.h"

#include <errno.h>
#include <ini.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void s3_creds_release(struct s3_creds *c)
{
	if (!c)
		return;
	wipe_free(c->access_key);
	wipe_free(c->secret_key);
	wipe_free(c->session_token);
	c->access_key = c->secret_key = c->session_token = NULL;
}

struct profile_scan {
	const char *profile;
	struct s3_creds *c;
	int oom;
};

static int set_dup(char **dst, const char *v, int *oom)
{
	char *d = strdup(v);

	if (!d) {
		*oom = 1;
		return 0;
	}
	wipe_free(*dst);
	*dst = d;
	return 1;
}

static int on_ini(void *arg, const char *section, const char *name, const char *value)
{
	struct profile_scan *ps = arg;

	if (strcmp(section, ps->profile) != 0)
		return 1;
	if (strcmp(name, "aws_access_key_id") == 0)
		return set_dup(&ps->c->access_key, value, &ps->oom);
	if (strcmp(name, "aws_secret_access_key") == 0)
		return set_dup(&ps->c->secret_key, value, &ps->oom);
	if (strcmp(name, "aws_session_token") == 0 || strcmp(name, "aws_security_token") == 0)
		return set_dup(&ps->c->session_token, value, &ps->oom);
	return 1;
}

int s3_creds_lookup(struct s3_creds *c)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN"), *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *profile = getenv("AWS_PROFILE"), *home = getenv("HOME");
	struct profile_scan ps = { 0 };
	char path[4096];
	FILE *f;

	memset(c, 0, sizeof(*c));
	if (ak && *ak && sk && *sk) {
		c->access_key = strdup(ak);
		c->secret_key = strdup(sk);
		c->session_token = tok && *tok ? strdup(tok) : NULL;
		snprintf(c->source, sizeof(c->source), "the environment (AWS_ACCESS_KEY_ID)");
		if (!c->access_key || !c->secret_key || (tok && *tok && !c->session_token)) {
			s3_creds_release(c);
			return -ENOMEM;
		}
		return 0;
	}
	if (file && *file)
		snprintf(path, sizeof(path), "%s", file);
	else if (home && *home)
		snprintf(path, sizeof(path), "%s/.aws/credentials", home);
	else
		return -ENOENT;
	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	ps.profile = profile && *profile ? profile : "default";
	ps.c = c;
	ini_parse_file(f, on_ini, &ps);
	fclose(f);
	if (ps.oom) {
		s3_creds_release(c);
		return -ENOMEM;
	}
	if (!c->access_key && !c->secret_key) {
		s3_creds_release(c);
		return -ENOENT;
	}
	snprintf(c->source, sizeof(c->source), "'%.100s' [%.40s]", path, ps.profile);
	if (!c->access_key || !c->secret_key) {
		s3_creds_release(c);
		return -EINVAL;
	}
	return 0;
}
