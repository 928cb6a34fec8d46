import CKernels

/// Runs `body(i)` for every `i` in `0..<count`, spread over the cores, and returns when all are done.
///
/// The iterations run on the package's own persistent worker threads (`ckernels_parallel_for`: one per
/// core beyond the first, joined by the calling thread, waiting about 100 µs between calls and then
/// sleeping), not on GCD: a loop of gradient steps calls this 1000–2000 times per hypergradient, and
/// workers that are still awake for the next step start at once instead of being woken through the
/// kernel (measured in ThreadPool.c: P2's function row at 1000×100, T = 1000, 13–19 ms against 26–28 ms
/// with `DispatchQueue.concurrentPerform` on a calm machine). When another thread's call already
/// occupies the workers (or `body` calls `parallelFor` again), the iterations run serially on the
/// calling thread; callers fix their splits by the shape alone, so the results are the same either way.
///
/// The kernels hand `body` raw pointers into buffers that each iteration reads or writes in disjoint
/// parts; the iterations never share a mutable location. That is a guarantee the compiler cannot
/// check, so the closure crosses into the worker threads as an untyped context pointer here, in one
/// place, instead of every kernel restating it.
func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    guard count > 1 else {
        if count == 1 { body(0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var task = body
        withUnsafeMutablePointer(to: &task) { pointer in
            ckernels_parallel_for(count, { context, index in
                context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
            }, pointer)
        }
    }
}
