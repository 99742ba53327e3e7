// SPDX-License-Identifier: MIT
/*
 * The faultline program, run as a user runs it: its help to a pipe, write
 * errors on its standard output (/dev/full), which must never look like
 * success, and userfaultfd refused, which must give the hint and leave no
 * data file behind.  Refusal needs no root: the child runs under a seccomp
 * filter that fails userfaultfd(2) and the /dev/userfaultfd ioctl, as the
 * kernel does for an unprivileged user.  The same filter checks that a test
 * binary (this one) skips with exit status 77 and says why.
 *
 * The program is ../faultline from this binary's directory (the build's
 * layout: BUILD/faultline, BUILD/tests/test_cli).
 */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#endif

#define OUT_MAX 16384

/* What a run printed and how it ended. */
struct run {
	int status; /* exit status, or 128 + signal */
	char out[OUT_MAX], err[OUT_MAX];
	size_t out_len, err_len;
};

enum stdout_to { TO_PIPE, TO_FULL };

/* 0: userfaultfd as it is; else the errno a refusal gives. */
static int refuse_errno;

/* BUILD/faultline, from /proc/self/exe = BUILD/tests/test_cli. */
static const char *program(void)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	REQUIRE(n > 0);
	exe[n] = '\0';
	snprintf(path, sizeof(path), "%s/../faultline", dirname(exe));
	REQUIRE(access(path, X_OK) == 0);
	return path;
}

/* In the child: userfaultfd(2) and USERFAULTFD_IOC_NEW fail with err. */
static int refuse_userfaultfd(int err)
{
#ifdef AUDIT_ARCH_NATIVE
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
		/* the request's low 32 bits (little-endian machines) */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
			 (unsigned)USERFAULTFD_IOC_NEW, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
#else
	errno = ENOSYS;
	return -1;
#endif
}

#define NO_SECCOMP 125 /* the child's status when the filter failed */

static void __attribute__((noreturn))
child(char *const argv[], enum stdout_to to, int out_fd, int err_fd)
{
	int fd = to == TO_FULL ? open("/dev/full", O_WRONLY) : out_fd;

	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd, STDERR_FILENO) < 0)
		_exit(126);
	if (refuse_errno && refuse_userfaultfd(refuse_errno))
		_exit(NO_SECCOMP);
	execv(argv[0], argv);
	_exit(127);
}

/* Append what fd has to buf (keeping at most OUT_MAX - 1); 0 at EOF. */
static int drain(int fd, char *buf, size_t *len)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return 0;
	for (ssize_t i = 0; i < n && *len < OUT_MAX - 1; i++)
		buf[(*len)++] = chunk[i];
	buf[*len] = '\0';
	return 1;
}

/* Run argv (argv[0] a path) with stdout to a pipe or /dev/full. */
static void run(char *const argv[], enum stdout_to to, struct run *r)
{
	int out[2], err[2], status;
	struct pollfd pfd[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	REQUIRE(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
	fflush(stdout);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		child(argv, to, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	pfd[0] = (struct pollfd){.fd = out[0], .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = err[0], .events = POLLIN};
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		if (poll(pfd, 2, -1) < 0) {
			REQUIRE(errno == EINTR);
			continue;
		}
		if (pfd[0].revents && !drain(out[0], r->out, &r->out_len))
			pfd[0].fd = -1;
		if (pfd[1].revents && !drain(err[0], r->err, &r->err_len))
			pfd[1].fd = -1;
	}
	close(out[0]);
	close(err[0]);
	REQUIRE(waitpid(pid, &status, 0) == pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status)
				      : 128 + WTERMSIG(status);
}

/* faultline with arguments (NULL-terminated). */
#define FAULTLINE(r, to, ...)                                                  \
	do {                                                                   \
		char *argv_[] = {(char *)program(), __VA_ARGS__, NULL};        \
		run(argv_, to, r);                                             \
	} while (0)

static void check_output(const struct run *r, const char *stream,
			 const char *text, const char *what, int line)
{
	if (!strstr(stream, text))
		h_fail(__FILE__, line,
		       "%s: no \"%s\" in its output (exit %d); stderr: %s",
		       what, text, r->status, r->err);
}

#define CHECK_OUT(r, text, what) check_output(r, (r)->out, text, what, __LINE__)
#define CHECK_ERR_OUT(r, text, what)                                           \
	check_output(r, (r)->err, text, what, __LINE__)

/* Nothing left in dir (the program removes, or never made, its files). */
static int dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	REQUIRE(d != NULL);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n == 0;
}

/* The smallest demo: one thread, one page. */
#define DEMO_ARGS "demo", "--threads", "1", "--size", "4K", "--dir"

TEST(help_to_a_pipe)
{
	struct run r;

	FAULTLINE(&r, TO_PIPE, "--help");
	CHECK_EQ(r.status, 0);
	CHECK_OUT(&r, "usage: faultline", "--help");
	CHECK_EQ(r.err_len, 0);
	FAULTLINE(&r, TO_PIPE, "help", "demo");
	CHECK_EQ(r.status, 0);
	CHECK_OUT(&r, "usage: faultline demo", "help demo");
}

/* Output lost to a write error is a failure, said on stderr. */
TEST(write_error_on_stdout_fails)
{
	static const char *const commands[][3] = {
		{"help"},	   {"--help"},	       {"version"},
		{"--version"},	   {"demo", "--help"}, {"bench", "--help"},
		{"help", "bench"},
	};
	struct run r;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const char *const *c = commands[i];

		FAULTLINE(&r, TO_FULL, (char *)c[0], (char *)c[1]);
		if (r.status != 1)
			h_fail(__FILE__, __LINE__,
			       "faultline %s %s > /dev/full: exit %d", c[0],
			       c[1] ? c[1] : "", r.status);
		CHECK_ERR_OUT(&r, "write error on standard output", c[0]);
	}
}

TEST(demo_write_error_fails)
{
	const char *dir = h_tmpdir();
	struct run r;

	h_require_userfaultfd();
	FAULTLINE(&r, TO_PIPE, DEMO_ARGS, (char *)dir);
	CHECK_EQ(r.status, 0); /* it works, so what follows is the output */
	CHECK_OUT(&r, "demo: OK", "demo");
	FAULTLINE(&r, TO_FULL, DEMO_ARGS, (char *)dir);
	CHECK_EQ(r.status, 1);
	CHECK_ERR_OUT(&r, "write error on standard output", "demo");
	CHECK(dir_empty(dir));
}

TEST(bench_write_error_fails)
{
	struct run r;

	h_require_userfaultfd();
	FAULTLINE(&r, TO_FULL, "bench", "anon", "--size", "4K", "--runs", "1",
		  "--dir", (char *)h_tmpdir());
	CHECK_EQ(r.status, 1);
	CHECK_ERR_OUT(&r, "write error on standard output", "bench");
	CHECK(dir_empty(h_tmpdir()));
}

/* A case that needs an engine, run (below) with userfaultfd refused. */
TEST(engine_needed)
{
	CHECK_EQ(fl_engine_destroy(h_engine(1)), 0);
}

/* Whether a refusing child could be made here (seccomp), else a note. */
static int refusal_works(const struct run *r)
{
	if (r->status != NO_SECCOMP)
		return 1;
	h_note("no seccomp filter here: refusal not checked");
	return 0;
}

/* Without userfaultfd: the hint, exit 1, and no data file written. */
static void refused(int err, const char *hint)
{
	const char *dir = h_tmpdir();
	struct run r;

	refuse_errno = err;
	FAULTLINE(&r, TO_PIPE, DEMO_ARGS, (char *)dir);
	if (!refusal_works(&r))
		return;
	CHECK_EQ(r.status, 1);
	CHECK_ERR_OUT(&r, hint, "demo");
	CHECK(strstr(r.out, "data file") == NULL); /* none was written */
	CHECK(dir_empty(dir));
	FAULTLINE(&r, TO_PIPE, "bench", "seqscan", "--dir", (char *)dir);
	CHECK_EQ(r.status, 1);
	CHECK_ERR_OUT(&r, hint, "bench");
	CHECK(dir_empty(dir));
	refuse_errno = 0;
}

TEST(userfaultfd_not_permitted_hint)
{
	refused(EPERM, "vm.unprivileged_userfaultfd=1");
}

TEST(userfaultfd_missing_hint)
{
	refused(ENOSYS, "Linux 6.6 or later");
}

/* A test binary skips (77) with one line saying why; the cases before the
 * first that needs an engine are run and reported. */
TEST(test_binary_skips_without_userfaultfd)
{
	static const struct {
		int err;
		const char *why;
	} refusals[] = {
		{EPERM, "SKIP test_cli: userfaultfd not permitted (EPERM)"},
		{ENOSYS, "SKIP test_cli: userfaultfd unavailable"},
	};
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct run r;

	REQUIRE(n > 0);
	exe[n] = '\0';
	for (size_t i = 0; i < 2; i++) {
		/* in the order they are defined, which is the order run */
		char *argv[] = {exe, "help_to_a_pipe", "engine_needed",
				"userfaultfd_missing_hint", NULL};

		refuse_errno = refusals[i].err;
		run(argv, TO_PIPE, &r);
		refuse_errno = 0;
		if (!refusal_works(&r))
			return;
		CHECK_EQ(r.status, 77);
		CHECK_OUT(&r, "PASS test_cli.help_to_a_pipe", "test_cli");
		CHECK_OUT(&r, refusals[i].why, "test_cli");
		CHECK(strstr(r.out, "engine_needed") == NULL);
		CHECK(strstr(r.out, "userfaultfd_missing_hint") == NULL);
		CHECK(strstr(r.out, "SUMMARY") == NULL);
	}
}
