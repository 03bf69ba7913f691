/*
 * store_label.c - short store names to seed 001's backend_t labels and
 * back (store_label.h).
 */
#include "util/store_label.h"

#include <string.h>
#include <strings.h>

static const struct { const char *label, *alias; } labels[] = {
	{ "neon-db", "neon" },
	{ "vercel-blob", "vblob" },
	{ "icp-canister", "icp" },
	{ "s3", "s3" },
	{ "local", "local" },
};

#define NLABELS (sizeof(labels) / sizeof(labels[0]))

const char *store_label(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NLABELS; i++)
		if (strcmp(name, labels[i].label) == 0 || strcmp(name, labels[i].alias) == 0)
			return labels[i].label;
	return NULL;
}

const char *store_label_of_url(const char *url)
{
	if (url && strncasecmp(url, "s3://", 5) == 0)
		return "s3";
	if (url && strncasecmp(url, "vblob://", 8) == 0)
		return "vercel-blob";
	if (url && strncasecmp(url, "icp://", 6) == 0)
		return "icp-canister";
	return "local";
}

const char *store_label_short(const char *label)
{
	for (size_t i = 0; i < NLABELS; i++)
		if (label && strcmp(label, labels[i].label) == 0)
			return labels[i].alias;
	return label;
}
