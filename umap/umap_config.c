// SPDX-License-Identifier: MIT
/*
 * UMap's settings: the UMAP_* environment variables, read once on first
 * use, and the umapcfg_get_* / umapcfg_set_* calls.
 *
 * Locking: settings_lock guards the settings.  A setter that must reach the
 * live group drops it first and calls umap_regions_limits_changed (which
 * takes the region lock, then settings_lock through umap_settings_get):
 * settings_lock is never held while the region lock is taken.
 */
#include "umap_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;
static struct umap_settings settings;

static void warn(const char *what, const char *value)
{
	fprintf(stderr, "libfaultline-umap: ignoring %s=%s\n", what, value);
}

/* The environment variable name as a number in [lo, hi], or 0 if unset;
 * a malformed value is ignored with a warning. */
static int env_number(const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *s = getenv(name);
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || s[0] == '-' || v < lo || v > hi) {
		warn(name, s);
		return 0;
	}
	*out = v;
	return 1;
}

/* 90% of the memory the kernel says is available, in UMap pages (UMap:
 * "90% of free memory"). */
static uint64_t default_buffer_pages(uint64_t page_size)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
				break;
		fclose(f);
	}
	if (!kib) {
		long pages = sysconf(_SC_AVPHYS_PAGES);

		kib = pages > 0 ? (unsigned long long)pages * 4 : 1024 * 1024;
	}
	return kib * 1024 / 10 * 9 / page_size ?: 1;
}

static void settings_read_env(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct umap_settings *s = &settings;
	uint64_t v;

	s->page_size = UMAP_SYS_PAGE;
	if (env_number("UMAP_PAGESIZE", UMAP_SYS_PAGE, UMAP_MAX_PAGE_SIZE,
		       &v)) {
		if (v % UMAP_SYS_PAGE)
			warn("UMAP_PAGESIZE", getenv("UMAP_PAGESIZE"));
		else
			s->page_size = v, s->fixed_read_size = 1;
	}
	s->fillers = cpus > 0 ? (uint64_t)cpus : 1;
	if (s->fillers > UMAP_MAX_IO_THREADS)
		s->fillers = UMAP_MAX_IO_THREADS;
	env_number("UMAP_PAGE_FILLERS", 1, UMAP_MAX_IO_THREADS, &s->fillers);
	s->evictors = cpus > 0 ? (uint64_t)cpus : 1;
	env_number("UMAP_PAGE_EVICTORS", 1, UINT32_MAX, &s->evictors);
	if (env_number("UMAP_READ_AHEAD", 0, UMAP_MAX_BATCH_PAGES,
		       &s->read_ahead))
		s->fixed_read_size = 1;
	v = 90;
	env_number("UMAP_EVICT_HIGH_WATER_THRESHOLD", 1, 100, &v);
	s->high_water = (int)v;
	v = 70;
	env_number("UMAP_EVICT_LOW_WATER_THRESHOLD", 0, 100, &v);
	s->low_water = (int)v;
	if (s->low_water > s->high_water) {
		warn("UMAP_EVICT_LOW_WATER_THRESHOLD",
		     getenv("UMAP_EVICT_LOW_WATER_THRESHOLD"));
		s->low_water = s->high_water;
	}
	if (!env_number("UMAP_BUFSIZE", 1, UINT64_MAX / UMAP_MAX_PAGE_SIZE,
			&s->buffer_pages))
		s->buffer_pages = default_buffer_pages(s->page_size);
	s->max_fault_events = 256;
}

void umap_settings_get(struct umap_settings *s)
{
	pthread_once(&settings_once, settings_read_env);
	pthread_mutex_lock(&settings_lock);
	*s = settings;
	pthread_mutex_unlock(&settings_lock);
}

void umap_settings_engine_config(const struct umap_settings *s,
				 struct fl_config *config)
{
	uint64_t ra;

	fl_config_init(config); /* faultline's defaults and FAULTLINE_* */
	config->io_threads = (unsigned)s->fillers;
	if (s->fixed_read_size) {
		/* A UMap fault reads its UMap page and read_ahead more. */
		ra = s->page_size / UMAP_SYS_PAGE * (1 + s->read_ahead);
		config->readahead_pages = ra > UMAP_MAX_BATCH_PAGES
						  ? UMAP_MAX_BATCH_PAGES
						  : (unsigned)ra;
	}
}

uint64_t umap_settings_max_bytes(const struct umap_settings *s)
{
	return s->buffer_pages * s->page_size;
}

uint64_t umap_settings_high_bytes(const struct umap_settings *s)
{
	return umap_settings_max_bytes(s) / 100 * (uint64_t)s->high_water;
}

/* ---- umapcfg_get_* ------------------------------------------------------ */

#define GETTER(type, name, field)                                              \
	type umapcfg_get_##name(void)                                          \
	{                                                                      \
		struct umap_settings s;                                        \
		umap_settings_get(&s);                                         \
		return (type)s.field;                                          \
	}

GETTER(uint64_t, umap_page_size, page_size)
GETTER(uint64_t, max_pages_in_buffer, buffer_pages)
GETTER(uint64_t, num_fillers, fillers)
GETTER(uint64_t, num_evictors, evictors)
GETTER(uint64_t, read_ahead, read_ahead)
GETTER(uint64_t, max_fault_events, max_fault_events)
GETTER(int, evict_high_water_threshold, high_water)
GETTER(int, evict_low_water_threshold, low_water)

long umapcfg_get_system_page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* ---- umapcfg_set_* ------------------------------------------------------ */

/*
 * Settings the engine is made with (page size, read-ahead, fillers) can
 * change only while no region is mapped: the engine lives while regions
 * do.  Returns 1 if the caller may change them, else warns.
 */
static int engine_setting_allowed(const char *what)
{
	if (!umap_regions_live())
		return 1;
	fprintf(stderr,
		"libfaultline-umap: %s ignored while regions are mapped\n",
		what);
	return 0;
}

static void set_locked(void (*apply)(uint64_t), uint64_t v)
{
	pthread_once(&settings_once, settings_read_env);
	pthread_mutex_lock(&settings_lock);
	apply(v);
	pthread_mutex_unlock(&settings_lock);
}

static void apply_page_size(uint64_t v)
{
	settings.page_size = v;
	settings.fixed_read_size = 1;
}

void umapcfg_set_umap_page_size(uint64_t page_size)
{
	if (!page_size || page_size % UMAP_SYS_PAGE ||
	    page_size > UMAP_MAX_PAGE_SIZE) {
		fprintf(stderr, "libfaultline-umap: bad UMap page size %llu\n",
			(unsigned long long)page_size);
		return;
	}
	if (engine_setting_allowed("umapcfg_set_umap_page_size"))
		set_locked(apply_page_size, page_size);
}

static void apply_read_ahead(uint64_t v)
{
	settings.read_ahead = v;
	settings.fixed_read_size = 1;
}

void umapcfg_set_read_ahead(uint64_t num_pages)
{
	if (num_pages > UMAP_MAX_BATCH_PAGES)
		num_pages = UMAP_MAX_BATCH_PAGES;
	if (engine_setting_allowed("umapcfg_set_read_ahead"))
		set_locked(apply_read_ahead, num_pages);
}

static void apply_fillers(uint64_t v)
{
	settings.fillers = v;
}

void umapcfg_set_num_fillers(uint64_t num_fillers)
{
	if (!num_fillers)
		return;
	if (num_fillers > UMAP_MAX_IO_THREADS)
		num_fillers = UMAP_MAX_IO_THREADS;
	if (engine_setting_allowed("umapcfg_set_num_fillers"))
		set_locked(apply_fillers, num_fillers);
}

static void apply_evictors(uint64_t v)
{
	settings.evictors = v;
}

void umapcfg_set_num_evictors(uint64_t num_evictors)
{
	if (num_evictors)
		set_locked(apply_evictors, num_evictors);
}

static void apply_max_fault_events(uint64_t v)
{
	settings.max_fault_events = v;
}

void umapcfg_set_max_fault_events(uint64_t max_events)
{
	if (max_events)
		set_locked(apply_max_fault_events, max_events);
}

static void apply_buffer_pages(uint64_t v)
{
	settings.buffer_pages = v;
}

void umapcfg_set_max_pages_in_buffer(uint64_t max_pages)
{
	if (!max_pages || max_pages > UINT64_MAX / UMAP_MAX_PAGE_SIZE)
		return;
	set_locked(apply_buffer_pages, max_pages);
	umap_regions_limits_changed();
}

static void apply_high_water(uint64_t v)
{
	settings.high_water = (int)v;
	if (settings.low_water > settings.high_water)
		settings.low_water = settings.high_water;
}

void umapcfg_set_evict_high_water_threshold(int percent)
{
	if (percent < 1 || percent > 100)
		return;
	set_locked(apply_high_water, (uint64_t)percent);
	umap_regions_limits_changed();
}

static void apply_low_water(uint64_t v)
{
	settings.low_water = (int)v;
	if (settings.high_water < settings.low_water)
		settings.high_water = settings.low_water;
}

void umapcfg_set_evict_low_water_threshold(int percent)
{
	if (percent < 0 || percent > 100)
		return;
	set_locked(apply_low_water, (uint64_t)percent);
	umap_regions_limits_changed();
}
