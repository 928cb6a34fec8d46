// A heap-allocation counter for tests (Linux/glibc only): the test executable defines malloc, calloc,
// realloc, free and the aligned allocators, forwarding each to glibc's own entry points, and counts the
// allocations made by any thread between `allocation_counter_start` and `allocation_counter_stop`.
#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H

/// 1 when allocations are counted on this platform (Linux with glibc), 0 elsewhere.
int allocation_counter_available(void);
/// Resets the count and starts counting.
void allocation_counter_start(void);
/// Stops counting and returns the number of allocations (malloc, calloc, realloc, aligned) since the start.
long allocation_counter_stop(void);

#endif
