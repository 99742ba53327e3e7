/* SPDX-License-Identifier: MIT */
/* The fault handler: faultline's handle_mm_fault. */
#ifndef FL_FAULT_H
#define FL_FAULT_H

#include <linux/userfaultfd.h>
#include <stdint.h>

struct fl_engine;

/*
 * Serve one page-fault message, read in the given batch (see msg_batches);
 * always answers it with a wake-up.
 */
void fault_handle(struct fl_engine *engine, const struct uffd_msg *msg,
		  uint64_t batch);

#endif /* FL_FAULT_H */
