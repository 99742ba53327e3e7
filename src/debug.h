/* SPDX-License-Identifier: MIT */
/*
 * Debug checks of the locking contracts.  fl_assert(cond) aborts with the
 * condition's text when it is false, in builds made with -DFL_DEBUG (the
 * test suite's); in release builds it compiles to nothing and evaluates
 * nothing.
 *
 * map_lock_depth counts the engine map-lock holds of the calling thread
 * (engine.h keeps it), so that a function can state "map lock held" or
 * "map lock not held" and a debug build checks it: fault_run checks each
 * fault_once result against it (DONE and AGAIN return it held, RETRY and
 * PARKED dropped), and every blocking wait checks it is zero.
 */
#ifndef FL_DEBUG_H
#define FL_DEBUG_H

#ifdef FL_DEBUG
void fl_assert_fail(const char *cond, const char *file, int line)
	__attribute__((noreturn));
#define fl_assert(cond)                                                        \
	((cond) ? (void)0 : fl_assert_fail(#cond, __FILE__, __LINE__))
extern __thread int map_lock_depth;
#define map_lock_depth_add(n) (map_lock_depth += (n))
#else
#define fl_assert(cond)	      ((void)sizeof(cond))
#define map_lock_depth_add(n) ((void)0)
#endif

/* The calling thread holds no map lock: it may block. */
#define fl_assert_may_block() fl_assert(map_lock_depth_get() == 0)

#ifdef FL_DEBUG
static inline int map_lock_depth_get(void)
{
	return map_lock_depth;
}
#else
static inline int map_lock_depth_get(void)
{
	return 0;
}
#endif

#endif /* FL_DEBUG_H */
