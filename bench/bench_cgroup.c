// SPDX-License-Identifier: MIT
/*
 * Kernel baselines under a memory limit: a memory cgroup of the same limit
 * as faultline's group (cgroup v1 memory.limit_in_bytes, or v2 memory.max,
 * whichever the machine has), and a forked child that joins it, runs one
 * configuration and reports its result through a pipe.
 */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CGROUP_V1 "/sys/fs/cgroup/memory"
#define CGROUP_V2 "/sys/fs/cgroup"

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[sizeof(((struct tmpdata *)0)->dir) + 64];
	size_t len = strlen(text);
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, text, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

/* cgroup v2 with the memory controller enabled for children of the root. */
static int v2_memory(void)
{
	char buf[512];
	ssize_t n;
	int fd = open(CGROUP_V2 "/cgroup.subtree_control", O_RDONLY);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, "memory") != NULL;
}

int kcg_create(struct kcg *cg, uint64_t limit)
{
	char text[32];
	struct stat st;

	memset(cg, 0, sizeof(*cg));
	cg->limit = limit;
	if (stat(CGROUP_V1 "/memory.limit_in_bytes", &st) == 0) {
		snprintf(cg->td.dir, sizeof(cg->td.dir),
			 CGROUP_V1 "/faultline-bench-%d", (int)getpid());
		cg->limit_file = "memory.limit_in_bytes";
		cg->procs_file = "tasks";
	} else if (v2_memory()) {
		snprintf(cg->td.dir, sizeof(cg->td.dir),
			 CGROUP_V2 "/faultline-bench-%d", (int)getpid());
		cg->limit_file = "memory.max";
		cg->procs_file = "cgroup.procs";
	} else {
		goto skipped;
	}
	if (mkdir(cg->td.dir, 0755) < 0 && errno != EEXIST)
		goto skipped;
	/* Removed by tmpdata_remove, and on a fatal signal too. */
	tmpdata_track(&cg->td);
	snprintf(text, sizeof(text), "%llu", (unsigned long long)limit);
	if (write_file(cg->td.dir, cg->limit_file, text) < 0) {
		kcg_remove(cg);
		goto skipped;
	}
	cg->ok = 1;
	return 0;
skipped:
	cg->td.dir[0] = '\0';
	printf("  kernel baseline: skipped (no cgroup access)\n");
	return -1;
}

void kcg_remove(struct kcg *cg)
{
	if (cg->td.dir[0] != '\0')
		tmpdata_remove(&cg->td);
	cg->ok = 0;
}

/* What the child sends back. */
struct kcg_msg {
	int rc;
	struct bench_run run;
};

static int read_full(int fd, void *buf, size_t len, double deadline)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		double left = deadline - now_seconds();
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		n = read(fd, (char *)buf + done, len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

int kcg_run(struct kcg *cg, int (*fn)(void *arg, struct bench_run *out),
	    void *arg, struct bench_run *out, void *back, size_t back_len)
{
	struct kcg_msg msg;
	double deadline;
	int pfd[2], status, ok;
	pid_t pid;

	if (pipe(pfd) < 0) {
		cli_error("bench: pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		cli_error("bench: fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		char text[32];

		close(pfd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The parent's watchdog and handlers are not the child's. */
		alarm(0);
		signal(SIGALRM, SIG_DFL);
		memset(&msg, 0, sizeof(msg));
		snprintf(text, sizeof(text), "%d", (int)getpid());
		if (write_file(cg->td.dir, cg->procs_file, text) < 0) {
			cli_error("bench: cannot join cgroup %s: %s",
				  cg->td.dir, strerror(errno));
			msg.rc = -1;
		} else {
			msg.rc = fn(arg, &msg.run);
		}
		fflush(stdout);
		fflush(stderr);
		write_full(pfd[1], &msg, sizeof(msg));
		if (back_len)
			write_full(pfd[1], back, back_len);
		_exit(0);
	}
	close(pfd[1]);
	deadline = now_seconds() + KCG_TIMEOUT_S;
	ok = read_full(pfd[0], &msg, sizeof(msg), deadline) == 0 &&
	     (back_len == 0 ||
	      read_full(pfd[0], back, back_len, deadline) == 0);
	close(pfd[0]);
	if (!ok)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!ok) {
		cli_error("bench: kernel baseline in cgroup %s: no result "
			  "(child %s)",
			  cg->td.dir,
			  WIFSIGNALED(status) ? strsignal(WTERMSIG(status))
					      : "exited early");
		return -1;
	}
	*out = msg.run;
	return msg.rc;
}

/* Print a group's statistics on one line ("  # LABEL: ..."). */
void bench_group_summary(fl_group *group, const char *label)
{
	struct fl_group_stats s;
	char u[32], p[32], m[32];

	if (fl_group_stats(group, &s) < 0) {
		printf("  # %s: no group statistics (%s)\n", label,
		       strerror(errno));
		return;
	}
	printf("  # %s: group usage %s peak %s max %s; reclaimed %llu "
	       "written-back %llu oom-events %llu faults %llu+%llu "
	       "(minor+major)\n",
	       label, format_size(s.usage, u, sizeof(u)),
	       format_size(s.peak, p, sizeof(p)),
	       format_size(s.max, m, sizeof(m)),
	       (unsigned long long)s.pages_reclaimed,
	       (unsigned long long)s.pages_written_back,
	       (unsigned long long)s.oom_events,
	       (unsigned long long)s.minor_faults,
	       (unsigned long long)s.major_faults);
}

int bench_group_check(fl_group *group, const char *what)
{
	struct fl_group_stats s;

	if (fl_group_stats(group, &s) < 0) {
		cli_error("bench %s: fl_group_stats failed: %s", what,
			  strerror(errno));
		return -1;
	}
	if (s.peak > s.max || s.usage > s.max) {
		cli_error("bench %s: GROUP LIMIT EXCEEDED: usage %llu peak "
			  "%llu max %llu",
			  what, (unsigned long long)s.usage,
			  (unsigned long long)s.peak,
			  (unsigned long long)s.max);
		return -1;
	}
	return 0;
}

uint64_t bench_quarter_limit(const struct bench_opts *o, uint64_t size)
{
	uint64_t limit = size / 4 / o->page * o->page;

	return limit < o->page ? o->page : limit;
}

void *bench_map_in_group(fl_engine *engine, const char *name, const char *path,
			 uint64_t size, uint64_t max, fl_group **group,
			 fl_object **obj)
{
	void *p;

	*group = bench_group_create(engine, name, max);
	if (*group == NULL)
		return NULL;
	*obj = fl_object_open(engine, path, O_RDONLY);
	if (*obj == NULL) {
		cli_error("bench %s: fl_object_open: %s", name,
			  strerror(errno));
		return NULL;
	}
	p = fl_mmap_group(engine, *group, NULL, size, PROT_READ, MAP_SHARED,
			  *obj, 0);
	if (p == MAP_FAILED) {
		cli_error("bench %s: fl_mmap_group failed: %s", name,
			  strerror(errno));
		fl_object_close(*obj);
		return NULL;
	}
	return p;
}

fl_group *bench_group_create(fl_engine *engine, const char *name, uint64_t max)
{
	fl_group *g = fl_group_create(engine, NULL, name);

	if (g == NULL) {
		cli_error("bench: fl_group_create failed: %s", strerror(errno));
		return NULL;
	}
	if (fl_group_set_max(g, max) < 0) {
		cli_error("bench: fl_group_set_max failed: %s",
			  strerror(errno));
		return NULL;
	}
	return g;
}
