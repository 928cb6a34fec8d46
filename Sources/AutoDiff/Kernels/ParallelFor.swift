import Dispatch

/// Runs `body(i)` for every `i` in `0..<count`, spread over the cores, and returns when all are done.
///
/// The kernels hand `body` raw pointers into buffers that each iteration reads or writes in disjoint
/// parts; the iterations never share a mutable location. That is a guarantee the compiler cannot
/// check, so the closure crosses into the worker threads through an unchecked-`Sendable` box here, in
/// one place, instead of every kernel restating it.
func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: count) { shared.value($0) }
    }
}

/// A value that is moved across threads under a guarantee the type system cannot express; see
/// `parallelFor(_:_:)`.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
