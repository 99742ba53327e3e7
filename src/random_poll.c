/* SPDX-License-Identifier: MIT */
/*
 * Polling through random reads.  A handler that served something polls
 * (threads.c), so that a thread's next fault, and the completion of the
 * read it just submitted, are taken without a wake-up.  A thread that
 * reads at random waits a whole store read for each fault, and whether
 * spinning through that read pays depends on the machine: on one of our
 * virtual machines polling made random reads about 1.7 times faster (the
 * wake-up of a halted vCPU is dear there); on another, a PVM guest with
 * page-table isolation on, where a system call and a context switch are
 * dear, it made them 15-30% slower (docs/design.md, "Polling through
 * random reads").  So the engine tries both: while most recent faults wait
 * for random reads (share, a running average over about RP_SHARE_WINDOW
 * faults), it serves RP_EPOCH of them without polling, then RP_EPOCH
 * polling, compares the mean time between them (their rate: the reader's
 * own work between faults is the same both ways), and keeps the faster
 * way for RP_KEEP epochs before it tries again.  Faults served at once,
 * or waiting for readahead or swap, poll as before: the trial only
 * decides while random reads are most of the faults.
 */
#include <stdatomic.h>

#include "random_poll.h"

enum { RP_TRY_OFF, RP_TRY_ON, RP_KEEP_BEST };

void random_poll_init(struct random_poll *rp)
{
	*rp = (struct random_poll){.skip = 1, .phase = RP_TRY_OFF};
	pthread_mutex_init(&rp->lock, NULL);
}

void random_poll_destroy(struct random_poll *rp)
{
	pthread_mutex_destroy(&rp->lock);
}

static int mostly_random(const struct random_poll *rp)
{
	return atomic_load_explicit(&rp->share, memory_order_relaxed) >
	       RP_SHARE_ONE / 2;
}

/* An epoch's mean gap is in: the next step of the trial.  rp->lock held. */
static void epoch_end(struct random_poll *rp, uint64_t mean)
{
	switch (rp->phase) {
	case RP_TRY_OFF:
		rp->mean_off = mean;
		rp->phase = RP_TRY_ON;
		atomic_store(&rp->skip, 0);
		break;
	case RP_TRY_ON: /* keep the faster: the shorter gap */
		rp->phase = RP_KEEP_BEST;
		rp->kept = 0;
		atomic_store(&rp->skip, rp->mean_off < mean);
		break;
	default:
		if (++rp->kept >= RP_KEEP) {
			rp->phase = RP_TRY_OFF;
			atomic_store(&rp->skip, 1);
		}
	}
}

void random_poll_note(struct random_poll *rp, int random, uint64_t now)
{
	uint32_t old = atomic_load_explicit(&rp->share, memory_order_relaxed);
	uint32_t target = random ? RP_SHARE_ONE : 0;

	atomic_store_explicit(&rp->share,
			      old > target
				      ? old - (old - target) / RP_SHARE_WINDOW
				      : old + (target - old) / RP_SHARE_WINDOW,
			      memory_order_relaxed);
	if (!random)
		return;
	pthread_mutex_lock(&rp->lock);
	if (!mostly_random(rp)) {
		rp->last_at = 0; /* gaps count only between random reads */
	} else {
		if (rp->last_at && now - rp->last_at < RP_GAP_MAX_NS) {
			rp->sum += now - rp->last_at;
			rp->n++;
		}
		rp->last_at = now;
		if (rp->n >= RP_EPOCH) {
			epoch_end(rp, rp->sum / rp->n);
			rp->sum = rp->n = 0;
		}
	}
	pthread_mutex_unlock(&rp->lock);
}

int random_poll_skip(const struct random_poll *rp)
{
	return mostly_random(rp) && atomic_load(&rp->skip);
}
