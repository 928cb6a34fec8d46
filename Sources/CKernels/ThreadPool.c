// The persistent worker threads behind `ckernels_parallel_for` (the Swift `parallelFor`): cores − 1
// workers that the calling thread joins. A job is one 64-bit word, `state` = generation (32 bits) |
// piece count (16 bits) | next unclaimed piece (16 bits); a thread claims piece i by a compare-and-swap
// from i to i + 1 within the same generation, so a worker that wakes late (or during the next job) can
// never run a piece of a job it did not see published. The caller waits only for the pieces claimed,
// never for a worker to wake: a worker that is not scheduled leaves its share to the caller (one
// preempted while it runs a piece still delays the caller until it finishes that piece).
//
// Idle workers watch `state` for about SPIN_NANOSECONDS (100 µs: a loop of gradient steps calls again
// within microseconds; 2 µs of `pause`, then `sched_yield`, so a busy machine gets the core back), then
// sleep on a condition variable, so an idle engine burns no CPU.
//
// One job at a time: a second thread that calls while a job runs (or a piece that calls again, from
// the caller or a worker) finds the pool taken (`busy`) and runs its pieces serially itself.
//
// Measured (2 cores, a C loop of 20 000 calls of 8 pieces, best call): 0.09–0.11 µs with empty pieces
// against 0.13–0.14 µs for GCD's `dispatch_apply_f` (which `concurrentPerform` calls), 8.7 µs against
// 9.7–9.9 µs with ~2 µs pieces (serially 15.7 µs). GCD was cheap already; the pool's gains are no
// thread wake-ups through the kernel between the steps of a loop, and no dependence on GCD's threads.
// P2 rows (T = 1000, bench, alternating runs of both builds, load average 2–3): function 2000×500
// 144–166 ms against 188–284 ms with GCD, function 1000×100 13–19 ms against 26–28 ms, staged-RAD
// 1000×100 43–57 ms against 58–121 ms (a worker that only paused, 100 µs; the same wait with 2 µs
// or none before sleeping: 30–36 ms on function 1000×100, worse than GCD). Under load average 4.6–4.8
// the pool loses: staged-RAD 2000×500 1071–1296 ms against 621–664 ms with GCD (a worker preempted in
// the middle of a piece holds the caller for a time slice), function 2000×500 250–424 against
// 315–380 ms.
#include "CKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/// How long a waiting thread spins on `pause` before it turns to `sched_yield`, and how long an idle
/// worker waits in all before it sleeps.
enum { PAUSE_NANOSECONDS = 2000, SPIN_NANOSECONDS = 100000, MAX_WORKERS = 63, MAX_PIECES = 0xFFFF };

static struct {
    /// generation << 32 | pieces << 16 | next piece.
    _Atomic uint64_t state;
    /// Pieces of the current job finished.
    _Atomic long finished;
    /// The current job's body and its context (written before the generation that publishes them).
    void (*task)(void *, long);
    void *context;
    /// Set while a caller runs a job on the pool.
    atomic_flag busy;
    /// Workers sleeping on `wake` (guarded by `sleep_lock` for writes).
    _Atomic int sleepers;
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    int workers;
} pool = {.busy = ATOMIC_FLAG_INIT, .sleep_lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static pthread_once_t pool_started = PTHREAD_ONCE_INIT;

static inline uint64_t generation_of(uint64_t state) { return state >> 32; }
static inline long pieces_of(uint64_t state) { return (long)((state >> 16) & 0xFFFF); }
static inline long next_of(uint64_t state) { return (long)(state & 0xFFFF); }

static uint64_t nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/// One step of waiting that began at `started`: a pause for the first PAUSE_NANOSECONDS, then a
/// `sched_yield` (on a busy machine the core goes to whoever is runnable there, such as a worker that
/// was preempted in the middle of a piece this thread waits for; on an idle one it returns at once);
/// false once SPIN_NANOSECONDS have passed.
static bool wait_politely(uint64_t started, int *spins) {
    if (++*spins < 64) {
        CPU_RELAX();
        return true;
    }
    uint64_t elapsed = nanoseconds() - started;
    if (elapsed < PAUSE_NANOSECONDS) CPU_RELAX();
    else sched_yield();
    return elapsed < SPIN_NANOSECONDS;
}

/// Claims and runs pieces of the job of `generation` until none is left; returns how many it ran.
static long run_pieces(uint64_t generation) {
    long ran = 0;
    uint64_t state = atomic_load_explicit(&pool.state, memory_order_acquire);
    while (generation_of(state) == generation && next_of(state) < pieces_of(state)) {
        if (!atomic_compare_exchange_weak_explicit(&pool.state, &state, state + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        // The piece is claimed and unfinished, so the job (task, context) cannot change under us.
        pool.task(pool.context, next_of(state));
        atomic_fetch_add_explicit(&pool.finished, 1, memory_order_release);
        ran++;
        state = atomic_load_explicit(&pool.state, memory_order_acquire);
    }
    return ran;
}

/// A worker: waits for a new generation (spinning, then sleeping), joins it, repeats.
static void *worker_main(void *unused) {
    (void)unused;
    uint64_t seen = generation_of(atomic_load_explicit(&pool.state, memory_order_acquire));
    for (;;) {
        uint64_t started = nanoseconds();
        int spins = 0;
        while (generation_of(atomic_load_explicit(&pool.state, memory_order_acquire)) == seen) {
            if (!wait_politely(started, &spins)) {
                pthread_mutex_lock(&pool.sleep_lock);
                atomic_fetch_add(&pool.sleepers, 1);
                while (generation_of(atomic_load(&pool.state)) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.sleep_lock);
            }
        }
        seen = generation_of(atomic_load_explicit(&pool.state, memory_order_acquire));
        run_pieces(seen);
    }
    return NULL;
}

static void start_workers(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long wanted = cores > 1 ? cores - 1 : 0;
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attributes, worker_main, NULL) == 0) pool.workers++;
    }
    pthread_attr_destroy(&attributes);
}

int ckernels_parallel_workers(void) {
    pthread_once(&pool_started, start_workers);
    return pool.workers;
}

void ckernels_parallel_for(long count, void (*task)(void *context, long index), void *context) {
    if (count <= 0) return;
    if (count == 1 || count > MAX_PIECES || ckernels_parallel_workers() == 0 ||
        atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        for (long i = 0; i < count; i++) task(context, i);
        return;
    }
    pool.task = task;
    pool.context = context;
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    uint64_t generation = generation_of(atomic_load_explicit(&pool.state, memory_order_relaxed)) + 1;
    // Publishes task, context and the reset count with the new generation (sequentially consistent,
    // so that either a worker about to sleep sees it, or this thread sees that worker in `sleepers`).
    atomic_store(&pool.state, (generation & 0xFFFFFFFFu) << 32 | (uint64_t)count << 16);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    run_pieces(generation & 0xFFFFFFFFu);
    uint64_t started = nanoseconds();
    int spins = 0;
    while (atomic_load_explicit(&pool.finished, memory_order_acquire) < count) wait_politely(started, &spins);
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}
