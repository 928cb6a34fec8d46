// Reverse mode: vjp, gradient, valueWithGradient (one, two and many arguments).

/// A reverse-mode tape entry: the op that produced a value, the inputs and output its VJP rule reads
/// (as seen by the levels below), and the entries of its inputs on the tape (`-1`: not tracked there,
/// so that input's rule is never run). The base class is the leaf (a variable of the level, no inputs);
/// one generic subclass per arity, specialised per op, holds the rest.
///
/// A node is a class with constant fields, so the backward walk reads an op and its tensors in place
/// (no copy, no retain of each tensor), and the generic subclass calls the op's rules without an
/// existential. Sendable: immutable after creation, and every field is Sendable.
class TapeNode: @unchecked Sendable {
    /// The one leaf node every level shares.
    static let leaf = TapeNode()

    /// Adds the adjoints of the node's inputs, from the output's adjoint `adjoint` (taken: the node
    /// may overwrite it in place), into `adjoints`. A leaf has no inputs.
    func propagate(_ adjoint: inout Tensor?, into adjoints: inout [Tensor?]) {}
}

/// `y = op(x)`; `input` is x's entry.
final class UnaryNode<Op: UnaryPrimitive>: TapeNode, @unchecked Sendable {
    /// `y` is kept only when the rules read it (`vjpReadsOutput`); otherwise they are handed `x`.
    let op: Op, x: Tensor, y: Tensor?, input: Int

    init(_ op: Op, x: Tensor, y: Tensor, input: Int) {
        (self.op, self.x, self.y, self.input) = (op, x, op.vjpReadsOutput || x.shape != y.shape ? y : nil, input)
    }

    /// `x̄ += op.vjp(ȳ)`; at first order (every tensor a constant) through `vjpInPlace` when the op has it.
    override func propagate(_ adjoint: inout Tensor?, into adjoints: inout [Tensor?]) {
        var g = adjoint.take()!
        if let y { pull(&g, y) } else { pull(&g, x) }
        Level.accumulate(&adjoints[input], g)
    }

    /// `g ← op.vjp(g, x, output)`.
    @inline(__always)
    private func pull(_ g: inout Tensor, _ output: Tensor) {
        if !(Level.takesFastPath(g, x, x) && op.vjpInPlace(&g, x: x, y: output)) {  // one input: x twice
            g = op.vjp(g, x: x, y: output)
        }
    }
}

/// `y = op(a, b)`; `inputA`, `inputB` are their entries (or `-1`).
final class BinaryNode<Op: BinaryPrimitive>: TapeNode, @unchecked Sendable {
    /// `y` is kept only when the rules read it (`vjpReadsOutput`) or `a` is broadcast; otherwise
    /// they are handed `a`.
    let op: Op, a: Tensor, b: Tensor, y: Tensor?, inputA: Int, inputB: Int

    init(_ op: Op, a: Tensor, b: Tensor, y: Tensor, inputA: Int, inputB: Int) {
        let kept = op.vjpReadsOutput || a.shape != y.shape ? y : nil
        (self.op, self.a, self.b, self.y, self.inputA, self.inputB) = (op, a, b, kept, inputA, inputB)
    }

    /// `ā += op.vjpA(ȳ)`, `b̄ += op.vjpB(ȳ)` for the tracked inputs, `a`'s first; at first order
    /// through `vjpAInPlace` / `vjpBInPlace` when the op has them. On that fast path, when both are
    /// wanted, `b`'s is computed first on a copy and `a`'s takes `ȳ` itself: `a`'s rule is the one that
    /// is often the identity (`a - b`), so no copy is made for it (measured: a copy for `a` added one
    /// buffer to Rosenbrock's peak). The tensor rules keep `a` first: holding `b`'s result while `a`'s
    /// runs would add a buffer to the peak as well.
    override func propagate(_ adjoint: inout Tensor?, into adjoints: inout [Tensor?]) {
        if let y { pull(&adjoint, y, into: &adjoints) } else { pull(&adjoint, a, into: &adjoints) }
    }

    /// `propagate` with the output (or its stand-in) `output`.
    @inline(__always)
    private func pull(_ adjoint: inout Tensor?, _ output: Tensor, into adjoints: inout [Tensor?]) {
        let fast = Level.takesFastPath(adjoint!, a, b)
        let adjointB = fast && inputA >= 0 && inputB >= 0 ? adjointOfB(adjoint!, output, fast: true) : nil
        if inputA >= 0 {
            var g = inputB >= 0 && adjointB == nil ? adjoint! : adjoint.take()!
            if !(fast && op.vjpAInPlace(&g, a: a, b: b, y: output)) { g = op.vjpA(g, a: a, b: b, y: output) }
            Level.accumulate(&adjoints[inputA], g)
        }
        if inputB >= 0 { Level.accumulate(&adjoints[inputB], adjointB ?? adjointOfB(adjoint.take()!, output, fast: fast)) }
    }

    /// `op.vjpB(g)`, in place on `g` when `fast` and the op has the path.
    @inline(__always)
    private func adjointOfB(_ g: consuming Tensor, _ output: Tensor, fast: Bool) -> Tensor {
        var g = g
        if !(fast && op.vjpBInPlace(&g, a: a, b: b, y: output)) { g = op.vjpB(g, a: a, b: b, y: output) }
        return g
    }
}

/// `y = op(inputs…)`; `entries[i]` is input i's entry (or `-1`).
final class NaryNode<Op: Primitive>: TapeNode, @unchecked Sendable {
    let op: Op, inputs: [Tensor], y: Tensor, entries: [Int]

    init(_ op: Op, inputs: [Tensor], y: Tensor, entries: [Int]) {
        (self.op, self.inputs, self.y, self.entries) = (op, inputs, y, entries)
    }

    /// `x̄ᵢ += op.vjp(ȳ, input: i)` for every tracked input.
    override func propagate(_ adjoint: inout Tensor?, into adjoints: inout [Tensor?]) {
        for (position, entry) in entries.enumerated() where entry >= 0 {
            Level.accumulate(&adjoints[entry], op.vjp(adjoint!, input: position, inputs: inputs, output: y))
        }
    }
}

extension Level {
    /// Back-propagates `seed` from entry `output` through the tape and returns the adjoints of
    /// `wanted` (a `nil` adjoint means no path leads there).
    ///
    /// VJP rules run as ordinary tensor ops, so when outer levels are active the adjoints they produce
    /// are recorded there: this is what makes the backward pass differentiable. The level itself must be
    /// inactive, so nothing is recorded on the tape being walked. Each adjoint is taken out of its slot
    /// before its node runs, so its storage is uniquely referenced and the first-order fast paths
    /// (`ElementwiseVJP`) overwrite it in place.
    ///
    /// Cost per op (bench row `scalar-chain/gradient`, `y ← sin(y · 1.0000001)`, 10⁶ ops, minimum ms of
    /// one run of each binary, taken back to back on the shared 2-core machine, ±20 % between runs):
    /// - enum nodes, tensor-op VJPs (before): 633 / 628 ms;
    /// - in-place element VJPs alone, enum nodes kept: 611 / 681 ms, no gain: copying each node out of
    ///   the enum for the `switch` (op existential + three tensors: about 7 retains and releases) cost
    ///   more than the two allocations saved;
    /// - nodes as generic final classes (`UnaryNode<Op>`…), whose constant fields the walk reads in
    ///   place, with the in-place VJPs: 496 / 491 ms;
    /// - `b`'s adjoint on the copy, `a`'s in place (see `BinaryNode`): 485 / 488 ms, and Rosenbrock's
    ///   peak back to its old 9.93 MB (10.68 MB when `a - b` copied the adjoint for `a`);
    /// - no output kept when the VJP does not read it (`vjpReadsOutput`): 475 / 484 ms;
    /// - the traced paths consuming the trace (one level retain less per op): 451 / 547 ms;
    /// - final (with `inPlaceLimit`), three runs against the unchanged binary in the same minutes:
    ///   502 / 498 / 553 ms against 635 / 653 / 680 ms; the plain chain takes 83 ms, so the tape costs
    ///   about 420 ns per op instead of about 560: short of the 100 ns aimed at.
    /// Not tried, or not worth it: a scale primitive for `tensor * Double` (the constant's allocation is
    /// also paid by the plain run, so it is not tape overhead, and the staged passes match `multiply`);
    /// releasing the tape during the walk and a flat value array of nodes (an earlier round: within
    /// noise). What remains is mostly reference counting of each tensor's `shape` and `storage` arrays
    /// and one node allocation per op.
    func backpropagate(from output: Int, seed: Tensor, to wanted: [Int]) -> [Tensor?] {
        engineCheck(!isActive, "internal: a level is back-propagated only after it is closed")
        guard output >= 0 else { return wanted.map { _ in nil } }
        var adjoints = [Tensor?](repeating: nil, count: output + 1)
        adjoints[output] = seed
        let leaf = TapeNode.leaf
        for i in stride(from: output, through: 0, by: -1) where adjoints[i] != nil {
            let node = nodes[i]
            if node === leaf { continue }  // leaves keep their adjoint: they are returned
            var adjoint = adjoints[i].take()
            node.propagate(&adjoint, into: &adjoints)
        }
        return wanted.map { $0 >= 0 ? adjoints[$0] : nil }
    }

    /// Adjoints of at most this many elements take the in-place fast paths. A larger adjoint runs the
    /// tensor rules (one pass of a vectorised kernel each): it is often shared (`a + b` hands the same
    /// adjoint to both inputs), and overwriting a shared buffer first copies it, a second pass (measured:
    /// Rosenbrock n = 10⁵ gradient 0.81 → 1.03 ms with no limit).
    static let inPlaceLimit = 4096

    /// Whether a node runs its in-place fast path: first order (the adjoint and the inputs are
    /// constants, so no level records the backward pass) and an adjoint within `inPlaceLimit`.
    @inline(__always)
    static func takesFastPath(_ adjoint: Tensor, _ a: Tensor, _ b: Tensor) -> Bool {
        adjoint.storage.count <= inPlaceLimit && adjoint.activeTrace == nil && a.activeTrace == nil && b.activeTrace == nil
    }

    /// `total += contribution`, in place when both are constants.
    @inline(__always)
    static func accumulate(_ total: inout Tensor?, _ contribution: Tensor) {
        guard total != nil else {
            total = contribution
            return
        }
        if total!.activeTrace == nil && contribution.activeTrace == nil {
            Elementwise.addInPlace(&total!, contribution)
        } else {
            total = total! + contribution
        }
    }
}

/// The value of `f` at `xs` and its pullback: the map from a cotangent of the output (same shape) to
/// the cotangents of every argument, `v ↦ (∂f/∂xᵢ)ᵀ v`. The pullback may be called any number of times.
///
/// The pullback's results are themselves differentiable by any enclosing transform.
///
/// - Precondition (pullback): the cotangent has the output's shape.
public func valueWithPullback(
    at xs: [Tensor], of f: ([Tensor]) -> Tensor
) -> (value: Tensor, pullback: (Tensor) -> [Tensor]) {
    let level = Level(.reverse)
    let tracked = xs.map { level.track($0) }
    let y = f(tracked)
    let value = y.primal(at: level)
    let output = y.entry(at: level)
    let inputs = tracked.map { $0.entry(at: level) }
    level.isActive = false
    let pullback: (Tensor) -> [Tensor] = { v in
        engineCheck(
            v.shape == value.shape,
            "\(AutoDiffError.shapeMismatch(op: "pullback", lhs: v.shape, rhs: value.shape, reason: "the cotangent must have the output's shape"))")
        let adjoints = level.backpropagate(from: output, seed: v, to: inputs)
        return zip(adjoints, xs).map { $0 ?? $1.constantZeros }
    }
    return (value, pullback)
}

/// The value of `f` at `x` and its pullback `v ↦ (∂f/∂x)ᵀ v` (a vector-Jacobian product).
public func vjp(at x: Tensor, of f: (Tensor) -> Tensor) -> (value: Tensor, pullback: (Tensor) -> Tensor) {
    let (value, pullback) = valueWithPullback(at: [x]) { f($0[0]) }
    return (value, { pullback($0)[0] })
}

/// The value of `f` at `(x, y)` and its pullback `v ↦ ((∂f/∂x)ᵀ v, (∂f/∂y)ᵀ v)`.
public func vjp(
    at x: Tensor, _ y: Tensor, of f: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, pullback: (Tensor) -> (Tensor, Tensor)) {
    let (value, pullback) = valueWithPullback(at: [x, y]) { f($0[0], $0[1]) }
    return (value, { v in let g = pullback(v); return (g[0], g[1]) })
}

/// The value of a scalar function and its gradient with respect to every argument.
///
/// - Precondition: `f` returns one element; otherwise the message says so and names the shape.
public func valueWithGradient(at xs: [Tensor], of f: ([Tensor]) -> Tensor) -> (value: Tensor, gradients: [Tensor]) {
    let (value, pullback) = valueWithPullback(at: xs, of: f)
    engineCheck(value.count == 1, "\(AutoDiffError.nonScalarOutput(transform: "gradient", shape: value.shape))")
    return (value, pullback(value.filled(with: 1)))
}

/// The value of a scalar function `f` at `x` and its gradient `∇f(x)` (reverse mode, one sweep).
///
/// - Precondition: `f` returns one element.
public func valueWithGradient(at x: Tensor, of f: (Tensor) -> Tensor) -> (value: Tensor, gradient: Tensor) {
    let (value, gradients) = valueWithGradient(at: [x]) { f($0[0]) }
    return (value, gradients[0])
}

/// The value of a scalar `f(x, y)` and both partial gradients `(∇ₓf, ∇ᵧf)`.
///
/// - Precondition: `f` returns one element.
public func valueWithGradient(
    at x: Tensor, _ y: Tensor, of f: (Tensor, Tensor) -> Tensor
) -> (value: Tensor, gradient: (Tensor, Tensor)) {
    let (value, gradients) = valueWithGradient(at: [x, y]) { f($0[0], $0[1]) }
    return (value, (gradients[0], gradients[1]))
}

/// The gradient `∇f(x)` of a scalar function (reverse mode). Nestable: `f` may itself take gradients,
/// and the result may be differentiated again.
///
/// ```swift
/// let g = gradient(at: x) { x in (x * x).sum() }   // 2x
/// ```
///
/// - Precondition: `f` returns one element.
public func gradient(at x: Tensor, of f: (Tensor) -> Tensor) -> Tensor {
    valueWithGradient(at: x, of: f).gradient
}

/// Both partial gradients `(∇ₓf, ∇ᵧf)` of a scalar `f(x, y)`.
///
/// - Precondition: `f` returns one element.
public func gradient(at x: Tensor, _ y: Tensor, of f: (Tensor, Tensor) -> Tensor) -> (Tensor, Tensor) {
    valueWithGradient(at: x, y, of: f).gradient
}
