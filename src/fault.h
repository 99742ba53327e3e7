/* SPDX-License-Identifier: MIT */
/* The fault handler: faultline's handle_mm_fault. */
#ifndef FL_FAULT_H
#define FL_FAULT_H

#include <linux/userfaultfd.h>
#include <stdint.h>

struct fl_engine;
struct fault;

/*
 * Fault records, allocated by a handler thread before it reads messages
 * (threads.c), so that serving a fault never needs an allocation to wait.
 */
struct fault *fault_alloc(void);
void fault_free(struct fault *f);

/*
 * When a batch of fault messages was read, in the engine's msg_batches
 * numbers: begun, the number before the read(2) (a clean numbered after
 * the read has begun or a larger number); ended, a number taken once it
 * had returned (a lift numbered later came after the read).  See
 * read_messages.
 */
struct msg_batch {
	uint64_t begun, ended;
};

/*
 * Serve one page-fault message, read in the given batch,
 * in the record rec; cpu is the CPU it was read on as the faulting
 * thread's own (local polling, threads.c), or -1: a fault that parks and
 * is resumed elsewhere has its wake offered to that CPU's poller.  No
 * lock held on entry or return.  Every message is answered (a mapping,
 * SIGBUS, or a wake-up), now or after it waited.  Returns 0 if rec is
 * free for the next message, or, if the fault parked and owns rec now
 * (it is freed when the fault is done), FAULT_HANDLE_RANDOM_READ if it
 * waits for a read it started where the mapping's faults are random
 * (readahead_random: MADV_RANDOM, or read-around kept going unused),
 * else 1.
 */
#define FAULT_HANDLE_RANDOM_READ 2
int fault_handle(struct fl_engine *engine, const struct uffd_msg *msg,
		 const struct msg_batch *batch, struct fault *rec, int cpu);

#endif /* FL_FAULT_H */
