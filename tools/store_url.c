// SPDX-License-Identifier: MIT
/* Stores named on the command line (see store_url.h). */
#include "store_url.h"
#include "cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int is_store_url(const char *name)
{
	return !strncmp(name, "redis://", 8) ||
	       !strncmp(name, "redis+cluster://", 16);
}

int store_fill_pattern(const char *who, struct fl_store *store, uint64_t seed,
		       uint64_t size)
{
	const size_t chunk = 8u << 20;
	char *buf = malloc(chunk);
	uint64_t off;

	if (!buf) {
		cli_error("%s: out of memory", who);
		return -1;
	}
	for (off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;

		pattern_fill(seed, buf, n, off);
		if (store->ops->write(store, buf, n, off) != (ssize_t)n) {
			cli_error("%s: writing the store failed: %s", who,
				  strerror(errno));
			free(buf);
			return -1;
		}
	}
	free(buf);
	return 0;
}
