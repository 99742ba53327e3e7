// SPDX-License-Identifier: MIT
/* Faults that cannot be served: SIGBUS beyond the end of the object, to the
 * faulting thread, counted, and the engine goes on; SIGSEGV beyond PROT. */
#include "harness.h"

/* The probe at p raised signo, at an address within p's page. */
static void check_signal_at(int got, const struct h_sig *sig, int signo,
			    const void *p, int line)
{
	uintptr_t a = (uintptr_t)sig->addr, want = (uintptr_t)p;

	if (got != signo) {
		h_fail(__FILE__, line, "expected signal %d at %p, got %d",
		       signo, p, got);
		return;
	}
	if (a < (want & ~(PG - 1)) || a >= (want & ~(PG - 1)) + PG)
		h_fail(__FILE__, line, "si_addr %p, expected %p", sig->addr, p);
}

#define CHECK_SIGNAL(got, sig, signo, p)                                       \
	check_signal_at(got, sig, signo, p, __LINE__)

/* A 3-page file mapped over 6 pages: pages 3-5 are wholly beyond the end */
TEST(beyond_eof_sigbus)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p, v;
	struct h_sig sig;
	struct fl_stats s0, s1;
	int r;

	h_file_create(&f, 3 * PG, 51);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, 6 * PG, PROT_READ, MAP_SHARED, o, 0);
	s0 = h_estats(e);
	r = h_try_read(p + 4 * PG + 100, &v, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, p + 4 * PG + 100);
	s1 = h_estats(e);
	CHECK_GE(s1.errors - s0.errors, 1);
	CHECK_GE(h_mstats(e, p).errors, 1);
	/* the good pages are still served to this thread */
	CHECK_EQ(h_mismatch(p, 3 * PG, 51, 0), -1);
	/* the first page past the end, and the last one, again */
	r = h_try_read(p + 3 * PG, &v, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, p + 3 * PG);
	r = h_try_read(p + 6 * PG - 1, &v, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, p + 6 * PG - 1);
	r = h_try_read(p + 4 * PG + 100, &v, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, p + 4 * PG + 100);
	/* each page's first fault reaches the engine (later ones may be
	 * answered by the kernel, if the engine poisoned the page) */
	CHECK_GE(h_estats(e).errors - s0.errors, 3);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Stores beyond the end, through shared and private mappings. */
TEST(beyond_eof_write_sigbus)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p, *q;
	struct h_sig sig;
	int r;

	h_file_create(&f, 2 * PG + 10, 52);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, 5 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	q = h_map(e, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	r = h_try_write(p + 3 * PG + 1, 1, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, p + 3 * PG + 1);
	r = h_try_write(q + 4 * PG, 1, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, q + 4 * PG);
	r = h_try_read(q + 3 * PG, NULL, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, q + 3 * PG);
	/* the partial last page is fine: data, then zeros */
	CHECK_EQ(h_try_write(p + 2 * PG + 20, 9, &sig), 0);
	CHECK_EQ(h_mismatch(p, 2 * PG + 10, 52, 0), -1);
	CHECK_EQ(h_mismatch(q, 2 * PG + 10, 52, 0), -1);
	CHECK_EQ(q[2 * PG + 20], 9);
	CHECK_EQ(fl_munmap(e, p, 5 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(h_file_size(f.path), 2 * PG + 10);
	h_file_remove(&f);
}

/*
 * Thread 0 keeps touching a page beyond the end, recovering each time with
 * siglongjmp and reading good pages in between; threads 1-3 meanwhile scan
 * another object.  Everyone gets served.
 */
struct recover_ctx {
	unsigned char *bad;  /* mapping of a 2-page object over 4 pages */
	unsigned char *good; /* 128 pages */
	int sigbus_seen;
};

static void recover_thread(int idx, void *arg)
{
	struct recover_ctx *c = arg;

	if (idx == 0) {
		for (int i = 0; i < 50; i++) {
			struct h_sig sig;
			unsigned char *a = c->bad + (2 + i % 2) * PG + i;
			int r = h_try_read(a, NULL, &sig);

			if (r == SIGBUS)
				c->sigbus_seen++;
			check_signal_at(r, &sig, SIGBUS, a, __LINE__);
			if (h_mismatch(c->bad, 2 * PG, 53, 0) != -1) {
				h_fail(__FILE__, __LINE__, "good page bad");
				return;
			}
		}
		return;
	}
	for (int round = 0; round < 3; round++)
		for (int pg = idx - 1; pg < 128; pg += 3)
			if (h_mismatch(c->good + (size_t)pg * PG, PG, 54,
				       (uint64_t)pg * PG) != -1) {
				h_fail(__FILE__, __LINE__,
				       "thread %d: page %d wrong", idx, pg);
				return;
			}
}

TEST(recovery_while_others_fault)
{
	struct h_file f, g;
	struct fl_config cfg;
	fl_engine *e;
	fl_object *o, *o2;
	struct recover_ctx c = {0};

	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.fault_around_pages = 1; /* every good page is its own fault */
	cfg.readahead_pages = 4;
	e = h_engine_create(&cfg);
	h_file_create(&f, 2 * PG, 53);
	h_file_create(&g, 128 * PG, 54);
	o = h_open(e, &f, O_RDONLY);
	o2 = h_open(e, &g, O_RDONLY);
	c.bad = h_map(e, 4 * PG, PROT_READ, MAP_PRIVATE, o, 0);
	c.good = h_map(e, 128 * PG, PROT_READ, MAP_SHARED, o2, 0);
	h_run_threads(4, recover_thread, &c);
	CHECK_EQ(c.sigbus_seen, 50);
	CHECK_GE(h_estats(e).errors, 2); /* at least once per bad page */
	CHECK_EQ(h_mstats(e, c.good).errors, 0);
	CHECK_EQ(h_mismatch(c.good, 128 * PG, 54, 0), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_object_close(o2), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
	h_file_remove(&g);
}

/* A mapping at an offset wholly beyond the end: every page is SIGBUS. */
TEST(offset_beyond_eof)
{
	struct h_file f;
	fl_engine *e = h_engine(1);
	fl_object *o;
	unsigned char *p;
	struct h_sig sig;
	int r;

	h_file_create(&f, 2 * PG, 55);
	o = h_open(e, &f, O_RDONLY);
	p = fl_mmap(e, NULL, 2 * PG, PROT_READ, MAP_SHARED, o, 8 * PG);
	REQUIRE(p != MAP_FAILED); /* as mmap(2): mapping works, access fails */
	r = h_try_read(p, NULL, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, p);
	r = h_try_read(p + PG + 5, NULL, &sig);
	CHECK_SIGNAL(r, &sig, SIGBUS, p + PG + 5);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Stores to a PROT_READ mapping and any access to PROT_NONE: SIGSEGV. */
TEST(beyond_prot_sigsegv)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *ro, *none, *aro, *anone, v;
	struct h_sig sig;
	int r;

	h_file_create(&f, 8 * PG, 56);
	o = h_open(e, &f, O_RDWR);
	ro = h_map(e, 8 * PG, PROT_READ, MAP_SHARED, o, 0);
	none = h_map(e, 8 * PG, PROT_NONE, MAP_SHARED, o, 0);
	aro = h_map(e, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	anone = h_map(e, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, NULL,
		      0);

	/* store to a page not yet faulted, and to one already read */
	r = h_try_write(ro + PG + 3, 0, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, ro + PG + 3);
	CHECK_EQ(ro[2 * PG], h_pattern(56, 2 * PG));
	r = h_try_write(ro + 2 * PG, 0, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, ro + 2 * PG);
	CHECK_EQ(h_mismatch(ro, 8 * PG, 56, 0), -1);

	r = h_try_read(none + 3 * PG, &v, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, none + 3 * PG);
	r = h_try_write(none, 1, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, none);

	r = h_try_write(aro + PG, 1, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, aro + PG);
	CHECK_EQ(h_nonzero(aro, 4 * PG), -1);
	r = h_try_read(anone, &v, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, anone);
	r = h_try_write(anone + 3 * PG, 1, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, anone + 3 * PG);

	/* SIGSEGVs are not store errors */
	CHECK_EQ(h_estats(e).errors, 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Writing to a shared mapping of a read-only object is refused at mmap
 * time (EACCES), so a PROT_READ one raises SIGSEGV on store. */
TEST(readonly_object_store_sigsegv)
{
	struct h_file f;
	fl_engine *e = h_engine(1);
	fl_object *o;
	unsigned char *p;
	struct h_sig sig;
	int r;

	h_file_create(&f, 4 * PG, 57);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 4 * PG, PROT_READ, MAP_SHARED, o, 0);
	r = h_try_write(p + 5, 1, &sig);
	CHECK_SIGNAL(r, &sig, SIGSEGV, p + 5);
	CHECK_EQ(h_mismatch(p, 4 * PG, 57, 0), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}
