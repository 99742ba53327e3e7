// SPDX-License-Identifier: MIT
/* The test harness: case runner, checks, files, resources, signal probes. */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES     256
#define CHECKS_FAILED 3	 /* a child's exit status; sanitizers use 1 */
#define SKIP_STATUS   77 /* the binary's (and a child's) status: skipped */

struct h_case {
	const char *name;
	void (*fn)(void);
};

static struct h_case cases[MAX_CASES];
static int ncases;
static const char *binary = "test";
static const char *current = "?";
static char tmpdir[200];
static int fail_count;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

void h_register(const char *name, void (*fn)(void))
{
	if (ncases == MAX_CASES) {
		fprintf(stderr, "harness: too many cases\n");
		abort();
	}
	cases[ncases].name = name;
	cases[ncases].fn = fn;
	ncases++;
}

void h_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	__atomic_add_fetch(&fail_count, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&out_lock);
	printf("  %s.%s: %s:%d: ", binary, current, file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

void h_note(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	printf("  %s.%s: note: ", binary, current);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

int h_failures(void)
{
	return __atomic_load_n(&fail_count, __ATOMIC_SEQ_CST);
}

static int nofork;
static sigjmp_buf nofork_env;

void h_abort_case(void)
{
	fflush(stdout);
	if (nofork)
		siglongjmp(nofork_env, 1);
	/* No exit handlers: a half-done case must not add leak reports. */
	_exit(CHECKS_FAILED);
}

/* ---- files ------------------------------------------------------------ */

const char *h_tmpdir(void)
{
	return tmpdir;
}

static void make_tmpdir(void)
{
	static const char *const bases[] = {"/var/tmp", "/tmp", "."};
	struct statfs sfs;

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (statfs(bases[i], &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
			continue; /* O_DIRECT would not be exercised there */
		snprintf(tmpdir, sizeof(tmpdir), "%s/faultline-test-XXXXXX",
			 bases[i]);
		if (mkdtemp(tmpdir))
			return;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/faultline-test-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("harness: mkdtemp");
		exit(2);
	}
	fprintf(stderr, "harness: warning: %s is on tmpfs\n", tmpdir);
}

static int rm_one(const char *path, const struct stat *st, int type,
		  struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void remove_tmpdir(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void h_fill(void *p, size_t len, uint32_t seed, uint64_t off)
{
	unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = h_pattern(seed, off + i);
}

void h_file_create(struct h_file *f, uint64_t size, uint32_t seed)
{
	static int counter;
	unsigned char buf[65536];
	int n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
	int fd;

	snprintf(f->path, sizeof(f->path), "%s/data-%d-%d", tmpdir,
		 (int)getpid(), n);
	f->size = size;
	f->seed = seed;
	fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	for (uint64_t off = 0; off < size;) {
		size_t len =
			size - off < sizeof(buf) ? size - off : sizeof(buf);
		h_fill(buf, len, seed, off);
		ssize_t w = pwrite(fd, buf, len, off);
		REQUIRE(w == (ssize_t)len);
		off += len;
	}
	REQUIRE(close(fd) == 0);
}

void h_file_remove(struct h_file *f)
{
	unlink(f->path);
}

long h_mismatch(const void *p, size_t len, uint32_t seed, uint64_t off)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i] != h_pattern(seed, off + i))
			return (long)i;
	return -1;
}

long h_nonzero(const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return (long)i;
	return -1;
}

size_t h_pread(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	REQUIRE(fd >= 0);
	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		REQUIRE(r >= 0);
		if (r == 0)
			break;
		done += (size_t)r;
	}
	close(fd);
	return done;
}

uint64_t h_file_size(const char *path)
{
	struct stat st;

	REQUIRE(stat(path, &st) == 0);
	return (uint64_t)st.st_size;
}

/* ---- resources -------------------------------------------------------- */

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	REQUIRE(d != NULL);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int h_count_fds(void)
{
	return count_dir("/proc/self/fd") - 1; /* the directory's own fd */
}

int h_count_threads(void)
{
	return count_dir("/proc/self/task");
}

int h_maps_name_at(const void *p, const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    (uintptr_t)p >= lo && (uintptr_t)p < hi) {
			found = strstr(line, name) != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

int h_settle_threads(int want)
{
	int n = h_count_threads();

	for (int i = 0; i < 1000 && n > want; i++) {
		usleep(10000);
		n = h_count_threads();
	}
	return n;
}

/* ---- waiting for events ----------------------------------------------- */

int h_wait_until(int (*cond)(void *), void *arg)
{
	double end = h_now() + H_WAIT_SECONDS;

	while (!cond(arg)) {
		if (h_now() > end)
			return cond(arg);
		usleep(1000);
	}
	return 1;
}

/* The state letter of thread tid (R, S, D, ...), or 0 if it is gone. */
static char thread_state(pid_t tid)
{
	char path[64], buf[512], *close_paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "tid (comm) S ...": comm may hold spaces and parentheses. */
	close_paren = strrchr(buf, ')');
	return close_paren && close_paren[1] == ' ' ? close_paren[2] : 0;
}

static int thread_blocked(void *arg)
{
	char state = thread_state(*(pid_t *)arg);

	return state == 'S' || state == 'D';
}

int h_wait_thread_blocked(pid_t tid)
{
	return h_wait_until(thread_blocked, &tid);
}

/* ---- threads ---------------------------------------------------------- */

struct thread_arg {
	int idx;
	void (*fn)(int idx, void *arg);
	void *arg;
};

static void *thread_main(void *p)
{
	struct thread_arg *t = p;

	t->fn(t->idx, t->arg);
	return NULL;
}

void h_run_threads(int n, void (*fn)(int idx, void *arg), void *arg)
{
	pthread_t tid[64];
	struct thread_arg ta[64];

	REQUIRE(n > 0 && n <= 64);
	for (int i = 0; i < n; i++) {
		ta[i] = (struct thread_arg){i, fn, arg};
		REQUIRE(pthread_create(&tid[i], NULL, thread_main, &ta[i]) ==
			0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
}

double h_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- signals ---------------------------------------------------------- */

static __thread sigjmp_buf *probe_env;
static __thread struct h_sig *probe_sig;
static unsigned long stray;

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/* "harness: SIGBUS at 0x... (si_code N) outside a probe", with write(2)
 * only: this runs in a signal handler. */
static void report_fault(int signo, const siginfo_t *si)
{
	char msg[96], *p = msg, *digits;
	uintptr_t addr = (uintptr_t)si->si_addr;
	int code = si->si_code;

	p = put_str(p, signo == SIGBUS ? "harness: SIGBUS at 0x"
				       : "harness: SIGSEGV at 0x");
	for (int shift = (int)sizeof(addr) * 8 - 4; shift >= 0; shift -= 4)
		*p++ = "0123456789abcdef"[(addr >> shift) & 15];
	p = put_str(p, " (si_code ");
	if (code < 0) { /* SI_QUEUE: sent by the engine (fault_signal_thread) */
		*p++ = '-';
		code = -code;
	}
	digits = p;
	do { /* the digits, last first, then turned round */
		*p++ = (char)('0' + code % 10);
		code /= 10;
	} while (code);
	for (char *a = digits, *b = p - 1; a < b; a++, b--) {
		char t = *a;

		*a = *b;
		*b = t;
	}
	p = put_str(p, ") outside a probe\n");
	if (write(STDOUT_FILENO, msg, (size_t)(p - msg)) < 0)
		return;
}

static void on_fault(int signo, siginfo_t *si, void *uc)
{
	sigjmp_buf *env = probe_env;

	if (env) {
		probe_sig->signo = signo;
		probe_sig->addr = si->si_addr;
		probe_sig->code = si->si_code;
		probe_env = NULL;
		siglongjmp(*env, 1);
	}
	if (si->si_code <= 0) {
		/* Sent by kill/tgkill, not raised by an access: note it. */
		__atomic_add_fetch(&stray, 1, __ATOMIC_SEQ_CST);
		return;
	}
	/* A real fault outside a probe: say where, then let it kill the
	 * process (returning, the access faults again). */
	report_fault(signo, si);
	signal(signo, SIG_DFL);
}

unsigned long h_stray_signals(void)
{
	return __atomic_load_n(&stray, __ATOMIC_SEQ_CST);
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/* sig is never NULL here and never changes after sigsetjmp. */
static __attribute__((noinline)) int probe(volatile unsigned char *p, int write,
					   unsigned char *val,
					   struct h_sig *const sig)
{
	sigjmp_buf env;

	memset(sig, 0, sizeof(*sig));
	if (sigsetjmp(env, 1))
		return sig->signo;
	probe_sig = sig;
	probe_env = &env;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (write)
		*p = *val;
	else
		*val = *p;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	probe_env = NULL;
	return 0;
}

int h_try_read(const void *p, unsigned char *val, struct h_sig *sig)
{
	struct h_sig local;
	unsigned char v = 0;
	int r = probe((volatile unsigned char *)p, 0, &v, sig ? sig : &local);

	if (val && r == 0)
		*val = v;
	return r;
}

int h_try_write(void *p, unsigned char val, struct h_sig *sig)
{
	struct h_sig local;

	return probe(p, 1, &val, sig ? sig : &local);
}

/* ---- skipping where userfaultfd cannot be used ------------------------- */

/* Why the binary is skipped (an errno), set by a case's child: shared. */
static int *skip_errno;

static int userfaultfd_refused(int err)
{
	return err == EPERM || err == EACCES || err == ENOSYS;
}

static void print_skip(int err)
{
	if (err == ENOSYS)
		printf("SKIP %s: userfaultfd unavailable or lacking a feature "
		       "faultline needs (ENOSYS): it needs Linux 6.6 or later "
		       "built with CONFIG_USERFAULTFD\n",
		       binary);
	else
		printf("SKIP %s: userfaultfd not permitted (%s): run as root "
		       "or sysctl vm.unprivileged_userfaultfd=1, or give "
		       "read/write access to /dev/userfaultfd\n",
		       binary, err == EPERM ? "EPERM" : "EACCES");
	fflush(stdout);
}

/* End the running case, and with it the binary, as skipped. */
static void __attribute__((noreturn)) skip_binary(int err)
{
	*skip_errno = err;
	fflush(stdout);
	if (nofork) {
		print_skip(err);
		remove_tmpdir();
		exit(SKIP_STATUS);
	}
	_exit(SKIP_STATUS); /* no exit handlers: nothing to report */
}

/* ---- faultline helpers ------------------------------------------------ */

fl_engine *h_engine_create(const struct fl_config *cfg)
{
	fl_engine *e = fl_engine_create(cfg);

	if (!e && userfaultfd_refused(errno))
		skip_binary(errno);
	REQUIRE(e != NULL);
	return e;
}

void h_require_userfaultfd(void)
{
	struct fl_config c;

	fl_config_init(&c);
	c.handler_threads = 1;
	c.io_threads = 1;
	c.print_stats_at_destroy = 0;
	REQUIRE(fl_engine_destroy(h_engine_create(&c)) == 0);
}

fl_engine *h_engine_cfg(unsigned threads, unsigned around, unsigned readahead)
{
	struct fl_config c;

	fl_config_init(&c);
	if (threads)
		c.handler_threads = threads;
	if (around)
		c.fault_around_pages = around;
	if (readahead)
		c.readahead_pages = readahead;
	return h_engine_create(&c);
}

fl_engine *h_engine(unsigned threads)
{
	return h_engine_cfg(threads, 0, 0);
}

fl_object *h_open(fl_engine *e, const struct h_file *f, int flags)
{
	fl_object *o = fl_object_open(e, f->path, flags);

	REQUIRE(o != NULL);
	return o;
}

void *h_map(fl_engine *e, size_t len, int prot, int flags, fl_object *obj,
	    off_t off)
{
	void *p = fl_mmap(e, NULL, len, prot, flags, obj, off);

	REQUIRE(p != MAP_FAILED);
	REQUIRE(p != NULL);
	return p;
}

struct fl_stats h_estats(fl_engine *e)
{
	struct fl_stats s;

	memset(&s, 0xa5, sizeof(s));
	REQUIRE(fl_engine_stats(e, &s) == 0);
	return s;
}

struct fl_stats h_mstats(fl_engine *e, const void *addr)
{
	struct fl_stats s;

	memset(&s, 0xa5, sizeof(s));
	REQUIRE(fl_mapping_stats(e, addr, &s) == 0);
	return s;
}

/* ---- running cases ---------------------------------------------------- */

/* Wait (bounded) for resource counts to settle back to a baseline: a
 * joined thread may linger in /proc/self/task for a moment. */
static void check_resources(int fds0, int threads0)
{
	int fds = 0, threads = 0;

	for (int i = 0; i < 1000; i++) {
		fds = h_count_fds();
		threads = h_count_threads();
		if (fds == fds0 && threads == threads0)
			return;
		usleep(10000);
	}
	if (fds != fds0)
		h_fail(__FILE__, __LINE__, "fd leak: %d open before, %d after",
		       fds0, fds);
	if (threads != threads0)
		h_fail(__FILE__, __LINE__,
		       "thread leak: %d threads before, %d after", threads0,
		       threads);
}

static void run_in_child(const struct h_case *c)
{
	int fds0 = h_count_fds();
	int threads0 = h_count_threads();

	c->fn();
	if (h_failures() == 0)
		check_resources(fds0, threads0);
	if (h_stray_signals())
		h_fail(__FILE__, __LINE__, "%lu stray SIGBUS/SIGSEGV",
		       h_stray_signals());
	fflush(stdout);
	if (h_failures())
		_exit(CHECKS_FAILED);
	exit(0); /* runs LeakSanitizer in the sanitizer build */
}

static int case_timeout(void)
{
	const char *s = getenv("FL_TEST_TIMEOUT");
	int t = s ? atoi(s) : 0;

	return t > 0 ? t : 120;
}

/* 1 if the case passed, 0 if it failed, -1 if it skipped the binary. */
static int run_case(const struct h_case *c)
{
	double t0 = h_now(), deadline = t0 + case_timeout();
	int status = 0, timed_out = 0;
	pid_t pid, r;

	current = c->name;
	fail_count = 0;
	if (nofork) {
		int fds0 = h_count_fds(), threads0 = h_count_threads();

		if (sigsetjmp(nofork_env, 1) == 0) {
			c->fn();
			if (h_failures() == 0)
				check_resources(fds0, threads0);
		}
		status = h_failures() ? CHECKS_FAILED << 8 : 0;
	} else {
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0) {
			perror("harness: fork");
			exit(2);
		}
		if (pid == 0)
			run_in_child(c);
		for (;;) {
			r = waitpid(pid, &status, WNOHANG);
			if (r == pid)
				break;
			if (h_now() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				timed_out = 1;
				break;
			}
			usleep(2000);
		}
	}
	if (!timed_out && WIFEXITED(status) &&
	    WEXITSTATUS(status) == SKIP_STATUS && *skip_errno)
		return -1;
	if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("PASS %s.%s (%.2fs)\n", binary, c->name, h_now() - t0);
		return 1;
	}
	if (timed_out)
		printf("FAIL %s.%s: timed out after %d s (hung fault?)\n",
		       binary, c->name, case_timeout());
	else if (WIFSIGNALED(status))
		printf("FAIL %s.%s: killed by signal %d (%s)\n", binary,
		       c->name, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == CHECKS_FAILED)
		printf("FAIL %s.%s: checks failed\n", binary, c->name);
	else
		printf("FAIL %s.%s: exit status %d (sanitizer report or "
		       "leak)\n",
		       binary, c->name, WEXITSTATUS(status));
	return 0;
}

static int selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

static void *nothing(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	const char *slash = strrchr(argv[0], '/');
	int passed = 0, failed = 0, result;
	pthread_t t;

	/* ThreadSanitizer starts a thread of its own with the first one made:
	 * make it now, so that no case counts it as a leak. */
	if (pthread_create(&t, NULL, nothing, NULL) == 0)
		pthread_join(t, NULL);

	setvbuf(stdout, NULL, _IOLBF, 0);
	binary = slash ? slash + 1 : argv[0];
	nofork = getenv("FL_TEST_NOFORK") && atoi(getenv("FL_TEST_NOFORK"));
	if (sysconf(_SC_PAGESIZE) != (long)PG) {
		printf("FAIL %s: page size %ld, the suite expects %zu\n",
		       binary, sysconf(_SC_PAGESIZE), PG);
		return 1;
	}
	/* Shared with the cases' children, which set it to skip. */
	skip_errno = mmap(NULL, sizeof(*skip_errno), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (skip_errno == MAP_FAILED) {
		perror("harness: mmap");
		return 2;
	}
	install_handlers();
	make_tmpdir();
	for (int i = 0; i < ncases; i++) {
		if (!selected(cases[i].name, argc, argv))
			continue;
		result = run_case(&cases[i]);
		if (result < 0) {
			/* Every case left would skip too: stop here. */
			print_skip(*skip_errno);
			remove_tmpdir();
			if (!failed)
				return SKIP_STATUS;
			printf("SUMMARY %s: %d passed, %d failed\n", binary,
			       passed, failed);
			return 1;
		}
		if (result)
			passed++;
		else
			failed++;
	}
	remove_tmpdir();
	printf("SUMMARY %s: %d passed, %d failed\n", binary, passed, failed);
	return failed ? 1 : 0;
}
