/* SPDX-License-Identifier: MIT */
/*
 * Internals of libfaultline-umap shared by its files: the settings
 * (umap_config.c), the forwarding store (umap_store.c) and the regions
 * (umap.c).
 */
#ifndef FAULTLINE_UMAP_INT_H
#define FAULTLINE_UMAP_INT_H

#include "umap.h"

#include <pthread.h>
#include <stdint.h>

#define UMAP_SYS_PAGE	     4096ULL
#define UMAP_MAX_IO_THREADS  64 /* faultline's limit on I/O threads */
#define UMAP_MAX_BATCH_PAGES 65536
#define UMAP_MAX_PAGE_SIZE   (UMAP_SYS_PAGE * UMAP_MAX_BATCH_PAGES)

/* The UMap settings, from the environment and the umapcfg_set_* calls. */
struct umap_settings {
	uint64_t page_size;	   /* bytes, a multiple of UMAP_SYS_PAGE */
	uint64_t buffer_pages;	   /* UMap pages */
	uint64_t fillers;	   /* faultline I/O threads */
	uint64_t evictors;	   /* reported only */
	uint64_t read_ahead;	   /* UMap pages beyond the faulting one */
	uint64_t max_fault_events; /* reported only */
	int high_water;		   /* percent of the buffer */
	int low_water;		   /* percent; reported only */
	/* Set when UMAP_PAGESIZE or UMAP_READ_AHEAD was given: the engine's
	 * read size then follows them instead of faultline's default. */
	int fixed_read_size;
};

/* A copy of the settings now (environment read on first use). */
void umap_settings_get(struct umap_settings *s);

/* The engine configuration and group limits the settings ask for. */
void umap_settings_engine_config(const struct umap_settings *s,
				 struct fl_config *config);
uint64_t umap_settings_max_bytes(const struct umap_settings *s);
uint64_t umap_settings_high_bytes(const struct umap_settings *s);

/*
 * Apply the buffer size and thresholds to the live group, if any (in
 * umap.c).  Called by the setters after they changed the settings.
 */
void umap_regions_limits_changed(void);
/* 1 while regions are mapped (the engine exists): the engine's settings
 * (page size, read-ahead, fillers) cannot change now. */
int umap_regions_live(void);

/*
 * A store that forwards to inner, so that a region can own inner only
 * once it is mapped: until umap_store_adopt, destroying the wrapper leaves
 * inner alone.  NULL with ENOMEM.
 */
struct fl_store *umap_store_wrap(struct fl_store *inner);
void umap_store_adopt(struct fl_store *wrapper);

#endif /* FAULTLINE_UMAP_INT_H */
