/*
 * icp_internal.h - what icp_tree.c and icp_agent.c share: reading libcbor
 * items.  Not for use outside the ICP backend.
 */
#ifndef MVFS_ICP_INTERNAL_H
#define MVFS_ICP_INTERNAL_H

#include <cbor.h>
#include <stddef.h>
#include <stdint.h>

/* IT without its tags (the self-describe tag 55799 wraps IC messages);
 * borrowed from IT's document.  NULL stays NULL. */
cbor_item_t *icp_cbor_untag(cbor_item_t *it);
/* The value under text KEY in map MAP, untagged and borrowed; NULL when
 * MAP is not a map or has no such key. */
cbor_item_t *icp_cbor_get(cbor_item_t *map, const char *key);
/* A definite byte string's bytes (borrowed), a text copied into OUT (cut to
 * CAP - 1 bytes), an unsigned integer: 0, or -1 when IT is not one. */
int icp_cbor_bytes(cbor_item_t *it, const unsigned char **p, size_t *n);
int icp_cbor_text(cbor_item_t *it, char *out, size_t cap);
int icp_cbor_uint(cbor_item_t *it, uint64_t *v);

#endif
