/* SPDX-License-Identifier: MIT */
/*
 * The one page-size constant.  faultline works in 4 KiB pages, the base page
 * of x86-64 and of most arm64 kernels; fl_engine_create refuses to start on
 * a kernel whose base page is another size (ENOTSUP), rather than serve
 * faults with the wrong granularity.
 */
#ifndef FL_PAGESIZE_H
#define FL_PAGESIZE_H

#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1UL << PAGE_SHIFT)
#define PAGE_MASK  (~(PAGE_SIZE - 1))

static inline uint64_t page_round_up(uint64_t n)
{
	return (n + PAGE_SIZE - 1) & PAGE_MASK;
}

#endif /* FL_PAGESIZE_H */
