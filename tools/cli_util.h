/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the faultline program's subcommands and benchmarks:
 * argument parsing, the seeded data pattern, temporary data files that are
 * removed even when the program dies, and timing.
 */
#ifndef FAULTLINE_CLI_UTIL_H
#define FAULTLINE_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
 * Argument parsing
 * ------------------------------------------------------------------------ */

/*
 * Parse a byte count: decimal digits and an optional suffix K, M, G or T
 * (powers of 1024; "KiB", "KB" and lower case are accepted too).  Returns
 * NULL and sets *bytes on success, or a short reason ("empty", "not a
 * number", ...) for an error message on failure; *bytes is then untouched.
 */
const char *parse_size(const char *text, uint64_t *bytes);

/*
 * Parse a decimal unsigned integer in [min, max].  Same convention as
 * parse_size: NULL on success, a reason on failure.
 */
const char *parse_uint(const char *text, unsigned min, unsigned max,
		       unsigned *value);

/*
 * Match an option that takes a value, written "--name VALUE" or
 * "--name=VALUE".  Returns 1 and sets *value (advancing *i past a separate
 * value) on a match, 0 if argv[*i] is another option, and -1 after printing
 * a message if the value is missing or empty.
 */
int opt_value(int argc, char **argv, int *i, const char *name,
	      const char **value);

/* Print "faultline: " and a formatted message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------------
 * Engines and the standard output
 * ------------------------------------------------------------------------ */

/*
 * What to do about an errno of fl_engine_create, as " (...)" to append to
 * the message: userfaultfd not permitted (EPERM, EACCES), missing or too
 * old (ENOSYS), another page size (ENOTSUP); "" for other errors.
 */
const char *cli_engine_hint(int err);

/* Print "faultline: WHO: fl_engine_create failed: ERROR (hint)". */
void cli_engine_error(const char *who, int err);

/*
 * Whether this process may make engines: make one and destroy it.  On
 * failure print why (cli_engine_error) and return -1.  Called before
 * anything is written (data files), so that a refusal leaves nothing.
 */
int cli_check_engine(const char *who);

/*
 * At exit, flush and close the standard output and check it: a write error
 * (a full disk, /dev/full, a closed descriptor) prints a message and makes
 * the exit status 1, so that lost output never looks like success.
 */
void cli_check_stdout_at_exit(void);

/* Format a byte count for people ("64 MiB", "1.5 GiB", "4096 B"). */
const char *format_size(uint64_t bytes, char *buf, size_t len);

/* ------------------------------------------------------------------------
 * Data pattern: a pure function of (seed, byte offset), so any byte of a
 * data file can be checked without keeping a copy of the file.
 * ------------------------------------------------------------------------ */

/* The 64-bit word stored at byte offset 8 * index (little-endian). */
static inline uint64_t pattern_word(uint64_t seed, uint64_t index)
{
	/* splitmix64: cheap, and every word differs from its neighbours. */
	uint64_t z = seed + (index + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fill buf (len a multiple of 8) with the pattern from byte offset off. */
void pattern_fill(uint64_t seed, void *buf, size_t len, uint64_t off);

/*
 * Compare buf (len a multiple of 8) with the pattern from byte offset off.
 * Returns the byte offset (relative to buf) of the first differing word,
 * or len if all match.
 */
size_t pattern_check(uint64_t seed, const void *buf, size_t len, uint64_t off);

/* ------------------------------------------------------------------------
 * Temporary data files
 * ------------------------------------------------------------------------ */

/*
 * A private directory (made with mkdtemp under a parent directory) holding
 * one data file.  Registered paths are removed by tmpdata_remove, and also
 * if the program is killed by a fatal signal or the watchdog.
 */
struct tmpdata {
	char dir[4000]; /* leaves room for "/data" in path */
	char path[4096];
};

/*
 * Make a directory "faultline-TAG.XXXXXX" under parent and a data file in
 * it of size bytes filled with the pattern of seed, written and synced to
 * disk.  Prints a message and returns -1 on failure (nothing left behind).
 */
int tmpdata_create(struct tmpdata *td, const char *parent, const char *tag,
		   uint64_t size, uint64_t seed);

/*
 * Have td (dir set, path empty or set) removed by a fatal signal's cleanup
 * too, like the data files: for directories made by other means, such as
 * a memory cgroup.  tmpdata_remove removes it and ends the tracking.
 */
void tmpdata_track(struct tmpdata *td);

/* Remove the data file and its directory.  Safe to call twice. */
void tmpdata_remove(struct tmpdata *td);

/* 1 if path is on tmpfs: memory, not a disk, so nothing there is cold. */
int path_is_tmpfs(const char *path);

/*
 * Catch fatal signals (SIGSEGV, SIGBUS, SIGINT, SIGTERM, SIGHUP, SIGPIPE,
 * SIGQUIT, SIGALRM) so that a crash, an interrupt, a closed pipe or a hang
 * still removes the registered data files; arm a watchdog that ends the
 * program (exit status 1) after seconds (0: no watchdog).  what names the
 * program part in the message.
 */
void cleanup_on_fatal_signals(const char *what, unsigned seconds);

/* ------------------------------------------------------------------------
 * Timing
 * ------------------------------------------------------------------------ */

/* Monotonic time in seconds. */
double now_seconds(void);

#endif /* FAULTLINE_CLI_UTIL_H */
