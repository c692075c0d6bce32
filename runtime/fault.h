/* fault.h -- fault injection for tests (SQLite's *fault.test idea).
 *
 * Arming a fault makes the nth future event of its kind fail as if the
 * system had refused it: allocations (malloc, aligned allocation, thread
 * creation) return NULL, I/O (file open, read, write, fsync, rename) fails.
 * Tests loop n = 1, 2, ... until the operation succeeds, checking that each
 * failure returns an error and leaks or corrupts nothing.  The counters are
 * process-wide and atomic; they are meant for single-threaded test drivers.
 */
#ifndef DNRT_FAULT_H
#define DNRT_FAULT_H

/* The 'nth' next allocation fails (1 = the very next); 0 disarms. */
void dnrt_fault_fail_alloc(int nth);
/* The 'nth' next file operation fails; 0 disarms. */
void dnrt_fault_fail_io(int nth);
/* Nonzero if an armed fault has not fired yet (the operation under test
 * used fewer events than 'nth'). */
int dnrt_fault_pending(void);

#endif
