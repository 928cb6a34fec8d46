// Per-thread scratch buffers for the GEMM's packed panels, so a product allocates nothing once a thread
// has run one of its size (the staged executor promises calls without heap allocation). Each thread keeps
// `SCRATCH_SLOTS` buffers, 64-byte aligned, that only grow; they are freed when the thread exits (a
// pthread key's destructor), so short-lived threads do not leak them.
#include "Variants.h"

#include <pthread.h>
#include <stdlib.h>

enum { SCRATCH_SLOTS = 2 };

typedef struct {
    double *buffers[SCRATCH_SLOTS];
    long capacities[SCRATCH_SLOTS];
} Scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_key_made = PTHREAD_ONCE_INIT;
static _Thread_local Scratch *thread_scratch;

static void free_scratch(void *pointer) {
    Scratch *scratch = pointer;
    for (int slot = 0; slot < SCRATCH_SLOTS; slot++) free(scratch->buffers[slot]);
    free(scratch);
}

static void make_scratch_key(void) {
    if (pthread_key_create(&scratch_key, free_scratch) != 0) abort();
}

double *ckernels_scratch(int slot, long count) {
    if (slot < 0 || slot >= SCRATCH_SLOTS) abort();
    if (!thread_scratch) {
        pthread_once(&scratch_key_made, make_scratch_key);
        thread_scratch = calloc(1, sizeof(Scratch));
        if (!thread_scratch || pthread_setspecific(scratch_key, thread_scratch) != 0) abort();
    }
    if (count < 1) count = 1;
    if (thread_scratch->capacities[slot] < count) {
        free(thread_scratch->buffers[slot]);
        void *memory = NULL;
        if (posix_memalign(&memory, 64, (size_t)count * sizeof(double)) != 0) abort();
        thread_scratch->buffers[slot] = memory;
        thread_scratch->capacities[slot] = count;
    }
    return thread_scratch->buffers[slot];
}
