/* SPDX-License-Identifier: MIT */
/*
 * Whether handlers poll while faults read at random (threads.c polls;
 * random_poll.c decides, by trying both ways).
 */
#ifndef FL_RANDOM_POLL_H
#define FL_RANDOM_POLL_H

#include <pthread.h>
#include <stdint.h>

#define RP_SHARE_ONE	1024u
#define RP_SHARE_WINDOW 16u  /* faults the running share averages over */
#define RP_EPOCH	128u /* gaps measured each way in a trial */
#define RP_KEEP		16u  /* epochs the faster way is kept */
/* A longer gap is the reader pausing, not the fault path: not counted. */
#define RP_GAP_MAX_NS 10000000u

struct random_poll {
	/* The share of recent faults that waited for a random read they
	 * started, of RP_SHARE_ONE: a running average, updated without a
	 * lock (a lost update does not matter to an average). */
	_Atomic uint32_t share;
	/* 1 while the trial says not to poll through random reads. */
	_Atomic int skip;
	pthread_mutex_t lock; /* everything below */
	uint64_t last_at;     /* the last random read's fault, or 0 */
	uint64_t sum, n;      /* this epoch's gaps between them (ns) */
	uint64_t mean_off;    /* the mean gap of the last epoch not polling */
	unsigned phase;	      /* RP_TRY_OFF, RP_TRY_ON or RP_KEEP_BEST */
	unsigned kept;	      /* epochs kept since the trial */
};

void random_poll_init(struct random_poll *rp);
void random_poll_destroy(struct random_poll *rp);
/*
 * A handler served a fault at now (lockstat_now): random is 1 if it parked
 * on a random read it started (fault_handle's FAULT_HANDLE_RANDOM_READ).
 * Any thread, no lock held.
 */
void random_poll_note(struct random_poll *rp, int random, uint64_t now);
/* 1 if handlers should not poll now: most recent faults wait for random
 * reads, and not polling through them was found the faster.  No lock. */
int random_poll_skip(const struct random_poll *rp);

#endif /* FL_RANDOM_POLL_H */
