/* SPDX-License-Identifier: MIT */
/*
 * Stores named on the command line: a file path, or a store URL
 * (redis://HOST[:PORT]/PREFIX, redis+cluster://HOST[:PORT],.../PREFIX).
 * Shared by `faultline cp` and `faultline demo --store`.
 */
#ifndef FAULTLINE_STORE_URL_H
#define FAULTLINE_STORE_URL_H

#include <faultline.h>
#include <stdint.h>

/* 1 if name is a store URL rather than a file path. */
int is_store_url(const char *name);

/*
 * Fill [0, size) of store with the seeded pattern (pattern_fill), 8 MiB
 * per write.  Returns 0, or -1 after printing why (who: the command).
 */
int store_fill_pattern(const char *who, struct fl_store *store, uint64_t seed,
		       uint64_t size);

#endif /* FAULTLINE_STORE_URL_H */
