/* SPDX-License-Identifier: MIT */
/* The fault handler: faultline's handle_mm_fault. */
#ifndef FL_FAULT_H
#define FL_FAULT_H

#include <linux/userfaultfd.h>

struct fl_engine;

/* Serve one page-fault message; always answers it with a wake-up. */
void fault_handle(struct fl_engine *engine, const struct uffd_msg *msg);

#endif /* FL_FAULT_H */
