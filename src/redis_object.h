/* SPDX-License-Identifier: MIT */
/*
 * A Redis object's URL and metadata (redis_object.c; the layout is in
 * docs/design.md, "Redis layout").  Every call runs its commands through
 * redis_exec, with no lock held.
 */
#ifndef FL_REDIS_OBJECT_H
#define FL_REDIS_OBJECT_H

#include <stdint.h>

#include "faultline.h"
#include "redis_client.h"

#define REDIS_PREFIX_MAX    200
#define REDIS_KEY_MAX	    (REDIS_PREFIX_MAX + 24)
#define REDIS_DEFAULT_BLOCK 65536u
#define REDIS_MAX_BLOCK	    (64u << 20)
#define REDIS_FORMAT	    "faultline-blocks"
#define REDIS_VERSION	    "1"

/*
 * Parse a store URL: its servers become cl's first nodes (the seeds),
 * PREFIX goes to prefix (REDIS_PREFIX_MAX + 1 bytes), *cluster says which
 * scheme.  0, or -1 (malformed: the caller says EINVAL; or ENOMEM).
 */
int redis_url_parse(struct redis_client *cl, const char *url, char *prefix,
		    int *cluster);

/*
 * Create the object at prefix if o asks (create, create_size; exclusive:
 * EEXIST if it exists), then read its metadata: *size and *block.  0, or
 * -1 with errno (ENOENT: no object; EPROTO: not a faultline object; the
 * command's errno).
 */
int redis_meta_open(struct redis_client *cl, const char *prefix,
		    const struct fl_redis_options *o, uint64_t *size,
		    uint32_t *block);

/*
 * Raise the object's size to at least end (one script: of two machines
 * growing it, the larger size wins); *now is the size after.  0, or -1
 * with errno (EFBIG beyond 2^53 bytes).
 */
int redis_meta_grow(struct redis_client *cl, const char *prefix, uint64_t end,
		    uint64_t *now);

#endif /* FL_REDIS_OBJECT_H */
