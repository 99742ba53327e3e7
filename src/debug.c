/* SPDX-License-Identifier: MIT */
/* Debug checks (see debug.h); empty in release builds. */
#include "debug.h"

#ifdef FL_DEBUG
#include <stdio.h>
#include <stdlib.h>

__thread int map_lock_depth;

void fl_assert_fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "faultline: %s:%d: assertion failed: %s\n", file, line,
		cond);
	abort();
}
#else
/* ISO C forbids an empty translation unit. */
typedef int fl_debug_unused;
#endif
