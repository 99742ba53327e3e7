// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the faultline program's subcommands and benchmarks.
 */
#include "cli_util.h"

#include <faultline.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* ------------------------------------------------------------------------
 * Argument parsing
 * ------------------------------------------------------------------------ */

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("faultline: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The power-of-1024 shift of a size suffix, or -1 if it is not one. */
static int size_suffix_shift(const char *s)
{
	static const char units[] = "KMGT";
	const char *u;

	if (*s == '\0')
		return 0;
	u = strchr(units, toupper((unsigned char)*s));
	if (u == NULL)
		return -1;
	s++;
	/* Accept "K", "KB", "KiB" (any case), nothing else after. */
	if (*s == 'i' || *s == 'I')
		s++;
	if (*s == 'b' || *s == 'B')
		s++;
	if (*s != '\0')
		return -1;
	return 10 * (int)(u - units + 1);
}

const char *parse_size(const char *text, uint64_t *bytes)
{
	uint64_t value = 0;
	const char *p = text;
	int shift;

	if (text == NULL || *text == '\0')
		return "empty size";
	if (!isdigit((unsigned char)*p))
		return "not a number (expected digits and an optional K, M, G "
		       "or T suffix)";
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return "too large";
		value = value * 10 + digit;
	}
	if (*p == '.' || *p == ',')
		return "not a whole number";
	shift = size_suffix_shift(p);
	if (shift < 0)
		return "unknown suffix (use K, M, G or T)";
	if (shift > 0 && value > (UINT64_MAX >> shift))
		return "too large";
	/* Sizes end up in size_t and off_t: keep them below 2^62. */
	if ((value << shift) > (UINT64_MAX >> 2))
		return "too large";
	*bytes = value << shift;
	return NULL;
}

const char *parse_uint(const char *text, unsigned min, unsigned max,
		       unsigned *value)
{
	unsigned long long v = 0;
	const char *p = text;

	if (text == NULL || *text == '\0')
		return "empty number";
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return "not a number";
		v = v * 10 + (unsigned)(*p - '0');
		if (v > max)
			return "too large";
	}
	if (v < min)
		return "too small";
	*value = (unsigned)v;
	return NULL;
}

int opt_value(int argc, char **argv, int *i, const char *name,
	      const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0 || (arg[n] != '=' && arg[n] != '\0'))
		return 0;
	if (arg[n] == '=')
		*value = arg + n + 1;
	else if (*i + 1 < argc)
		*value = argv[++*i];
	else
		*value = "";
	/* An empty value is never meant: "--dir=" must not mean "/". */
	if (**value == '\0') {
		cli_error("option %s needs a value", name);
		return -1;
	}
	return 1;
}

/* ------------------------------------------------------------------------
 * Engines and the standard output
 * ------------------------------------------------------------------------ */

const char *cli_engine_hint(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return " (userfaultfd needs root, "
		       "vm.unprivileged_userfaultfd=1 "
		       "or access to /dev/userfaultfd)";
	case ENOSYS:
		return " (no userfaultfd, or one without the features "
		       "faultline "
		       "needs: Linux 6.6 or later)";
	case ENOTSUP:
		return " (faultline needs a kernel with 4 KiB pages)";
	default:
		return "";
	}
}

void cli_engine_error(const char *who, int err)
{
	cli_error("%s: fl_engine_create failed: %s%s", who, strerror(err),
		  cli_engine_hint(err));
}

int cli_check_engine(const char *who)
{
	struct fl_config config;
	fl_engine *engine;

	fl_config_init(&config);
	config.handler_threads = 1;
	config.io_threads = 1;
	config.print_stats_at_destroy = 0; /* a probe: nothing to report */
	engine = fl_engine_create(&config);
	if (engine == NULL) {
		cli_engine_error(who, errno);
		return -1;
	}
	if (fl_engine_destroy(engine) < 0) {
		cli_error("%s: fl_engine_destroy failed: %s", who,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static void check_stdout(void)
{
	int pending = __fpending(stdout) > 0;
	int err = 0, failed = 0;

	if (fflush(stdout) != 0) {
		err = errno;
		failed = 1;
	} else if (ferror(stdout)) {
		failed = 1; /* an earlier write failed; its errno is gone */
	}
	/* A closed descriptor with nothing written to it is no error. */
	if (fclose(stdout) != 0 && !failed && (pending || errno != EBADF)) {
		err = errno;
		failed = 1;
	}
	if (!failed)
		return;
	if (err)
		cli_error("write error on standard output: %s", strerror(err));
	else
		cli_error("write error on standard output");
	_exit(1); /* from an exit handler: exit() must not be called again */
}

void cli_check_stdout_at_exit(void)
{
	atexit(check_stdout);
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	unsigned u = 0;
	double v = (double)bytes;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

/* ------------------------------------------------------------------------
 * Data pattern
 * ------------------------------------------------------------------------ */

void pattern_fill(uint64_t seed, void *buf, size_t len, uint64_t off)
{
	uint64_t first = off / 8;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		uint64_t w = pattern_word(seed, first + i);

		memcpy((char *)buf + i * 8, &w, 8);
	}
}

size_t pattern_check(uint64_t seed, const void *buf, size_t len, uint64_t off)
{
	uint64_t first = off / 8;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		uint64_t w;

		memcpy(&w, (const char *)buf + i * 8, 8);
		if (w != pattern_word(seed, first + i))
			return i * 8;
	}
	return len;
}

/* ------------------------------------------------------------------------
 * Temporary data files
 * ------------------------------------------------------------------------ */

/* Data files to remove on a fatal signal; read by the signal handler. */
#define MAX_REGISTERED 4
static struct tmpdata *volatile registered[MAX_REGISTERED];

static void tmpdata_register(struct tmpdata *td)
{
	int i;

	for (i = 0; i < MAX_REGISTERED; i++) {
		if (registered[i] == NULL) {
			registered[i] = td;
			return;
		}
	}
}

static void tmpdata_unregister(struct tmpdata *td)
{
	int i;

	for (i = 0; i < MAX_REGISTERED; i++)
		if (registered[i] == td)
			registered[i] = NULL;
}

void tmpdata_track(struct tmpdata *td)
{
	tmpdata_register(td);
}

static int write_pattern_file(int fd, uint64_t size, uint64_t seed)
{
	const size_t chunk = 1 << 20;
	char *buf = malloc(chunk);
	uint64_t off;

	if (buf == NULL)
		return -1;
	for (off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;

		/* The pattern is word-based: fill whole words, write n. */
		pattern_fill(seed, buf, (n + 7) & ~(size_t)7, off);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			if (errno == 0)
				errno = ENOSPC;
			free(buf);
			return -1;
		}
	}
	free(buf);
	return fsync(fd);
}

int tmpdata_create(struct tmpdata *td, const char *parent, const char *tag,
		   uint64_t size, uint64_t seed)
{
	int fd;

	td->path[0] = '\0';
	if (snprintf(td->dir, sizeof(td->dir), "%s/faultline-%s.XXXXXX", parent,
		     tag) >= (int)sizeof(td->dir) ||
	    mkdtemp(td->dir) == NULL) {
		cli_error("cannot make a directory in %s: %s", parent,
			  strerror(errno));
		td->dir[0] = '\0';
		return -1;
	}
	snprintf(td->path, sizeof(td->path), "%s/data", td->dir);
	tmpdata_register(td);
	fd = open(td->path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write_pattern_file(fd, size, seed) < 0) {
		cli_error("cannot write data file %s: %s", td->path,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		tmpdata_remove(td);
		return -1;
	}
	close(fd);
	return 0;
}

void tmpdata_remove(struct tmpdata *td)
{
	tmpdata_unregister(td);
	if (td->path[0] != '\0')
		unlink(td->path);
	if (td->dir[0] != '\0')
		rmdir(td->dir);
	td->path[0] = '\0';
	td->dir[0] = '\0';
}

int path_is_tmpfs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
}

/* ------------------------------------------------------------------------
 * Fatal signals and the watchdog
 * ------------------------------------------------------------------------ */

static const char *fatal_what = "faultline";

static void write_str(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));

	(void)r;
}

/* Async-signal-safe: only write, unlink, rmdir and _exit. */
static void fatal_signal(int sig)
{
	int i;

	write_str("\nfaultline: ");
	write_str(fatal_what);
	switch (sig) {
	case SIGALRM:
		write_str(": FAILED: timed out (watchdog), giving up");
		break;
	case SIGBUS:
		write_str(": FAILED: SIGBUS (a fault could not be served)");
		break;
	case SIGSEGV:
		write_str(": FAILED: SIGSEGV");
		break;
	default:
		write_str(": interrupted");
		break;
	}
	for (i = 0; i < MAX_REGISTERED; i++) {
		struct tmpdata *td = registered[i];

		if (td == NULL)
			continue;
		if (td->path[0] != '\0')
			unlink(td->path);
		if (td->dir[0] != '\0')
			rmdir(td->dir);
	}
	write_str("; data files removed\n");
	/* A failure of the program is 1; a signal from outside, 128+sig. */
	_exit(sig == SIGALRM || sig == SIGBUS || sig == SIGSEGV ? 1
								: 128 + sig);
}

void cleanup_on_fatal_signals(const char *what, unsigned seconds)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGINT,  SIGTERM,
				   SIGALRM, SIGHUP, SIGPIPE, SIGQUIT};
	struct sigaction sa;
	size_t i;

	fatal_what = what;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fatal_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	alarm(seconds);
}

/* ------------------------------------------------------------------------
 * Timing
 * ------------------------------------------------------------------------ */

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
