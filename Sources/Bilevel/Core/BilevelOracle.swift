/// Every derivative a hypergradient method takes of a `BilevelProblem`, counted.
///
/// Methods query the problem only through an oracle, so `Diagnostics.counts` is exact and tests can
/// assert, e.g., that a first-order method never asks for a Hessian-vector product.
///
/// With `problem.derivatives == .staged` the gradients, second-order products and the step's value,
/// JVP and VJP replay programs staged once per problem and shapes (`DerivativeMode.staged`); the counts
/// are the same either way.
public final class BilevelOracle {
    /// The problem queried.
    public let problem: BilevelProblem
    /// The queries made so far.
    public private(set) var counts = DerivativeCounts()
    /// What the oracle wants the method's diagnostics to say (a derivative that fell back from staged to
    /// eager evaluation, and why), each once.
    public private(set) var notes: [String] = []

    /// An oracle with zero counts.
    public init(_ problem: BilevelProblem) { self.problem = problem }

    /// `F(x, y)` (not counted: a value, not a derivative).
    public func upperValue(_ x: Tensor, _ y: Tensor) -> Tensor { problem.upper(x, y) }

    /// `f(x, y)` (not counted).
    public func lowerValue(_ x: Tensor, _ y: Tensor) -> Tensor { problem.lower(x, y) }

    /// `(∇ₓF, ∇ᵧF)` at `(x, y)`: one reverse sweep.
    public func upperGradients(_ x: Tensor, _ y: Tensor) -> (x: Tensor, y: Tensor) {
        counts.gradients += 1
        if let program = staged(.upperGradients, [x.shape, y.shape]) { return pair(program.outputs(at: [x, y])) }
        let (gx, gy) = gradient(at: x, y, of: problem.upper)
        return (gx, gy)
    }

    /// `(∇ₓf, ∇ᵧf)` at `(x, y)`: one reverse sweep.
    public func lowerGradients(_ x: Tensor, _ y: Tensor) -> (x: Tensor, y: Tensor) {
        counts.gradients += 1
        if let program = staged(.lowerGradients, [x.shape, y.shape]) { return pair(program.outputs(at: [x, y])) }
        let (gx, gy) = gradient(at: x, y, of: problem.lower)
        return (gx, gy)
    }

    /// `(∇²ₓᵧf · v, ∇²ᵧᵧf · v)` at `(x, y)` from one nested sweep (gradient-dot trick
    /// `∇₍ₓ,ᵧ₎ ⟨∇ᵧf, v⟩`); counts one HVP.
    public func lowerSecondOrder(_ x: Tensor, _ y: Tensor, _ v: Tensor) -> (xy: Tensor, yy: Tensor) {
        counts.hvps += 1
        if let program = staged(.lowerSecondOrder, [x.shape, y.shape]) { return pair(program.outputs(at: [x, y, v])) }
        let (hxy, hyy) = hvp(at: x, y, directions: (Tensor(zeros: x.shape), v), of: problem.lower)
        return (hxy, hyy)
    }

    /// `∇²ᵧᵧf · v` at `(x, y)`.
    public func lowerHVP(_ x: Tensor, _ y: Tensor, _ v: Tensor) -> Tensor {
        counts.hvps += 1
        if let program = staged(.lowerHVP, [x.shape, y.shape]) { return program.outputs(at: [x, y, v])[0] }
        return hvp(at: y, direction: v) { y in problem.lower(x, y) }
    }

    /// `∇²ᵧᵧf · v` at the fixed point `(x, y)` of `point` (a linear solve's repeated products): the
    /// staged HVP specialized to `(x, y)` once, or `lowerHVP(x, y, v)` when there is none; counts one HVP.
    func lowerHVP(_ x: Tensor, _ y: Tensor, _ v: Tensor, at point: FixedPointHVP) -> Tensor {
        guard let program = point.program(self, x, y) else { return lowerHVP(x, y, v) }
        counts.hvps += 1
        return program.outputs(at: [v])[0]
    }

    /// `∇²ₓᵧf · v = ∇ₓ⟨∇ᵧf, v⟩` at `(x, y)`.
    public func lowerMixedProduct(_ x: Tensor, _ y: Tensor, _ v: Tensor) -> Tensor {
        counts.mixedProducts += 1
        if let program = staged(.mixedProduct, [x.shape, y.shape]) { return program.outputs(at: [x, y, v])[0] }
        return mixedHVP(at: x, y, direction: v, of: problem.lower)
    }

    /// `∇ₓ term(x)` for a scalar term built from the problem's constraint closures (one reverse sweep,
    /// counted as a gradient).
    public func constraintGradient(_ x: Tensor, of term: (Tensor) -> Tensor) -> Tensor {
        counts.gradients += 1
        return gradient(at: x, of: term)
    }

    /// `(∇ₓf_B, ∇ᵧf_B)` at `(x, y)` for the mini-batch loss `f_B = problem.lowerBatch(x, y, indices)`: one
    /// reverse sweep over the batch, counted as one gradient.
    ///
    /// - Throws: `BilevelError.invalidArgument` when the problem has no `lowerBatch`.
    public func lowerBatchGradients(_ x: Tensor, _ y: Tensor, indices: [Int]) throws -> (x: Tensor, y: Tensor) {
        let batch = try batchObjective(problem.lowerBatch, "lowerBatch", indices)
        counts.gradients += 1
        let (gx, gy) = gradient(at: x, y, of: batch)
        return (gx, gy)
    }

    /// `(∇ₓF_B, ∇ᵧF_B)` at `(x, y)` for the mini-batch loss `F_B = problem.upperBatch(x, y, indices)`: one
    /// reverse sweep over the batch, counted as one gradient.
    ///
    /// - Throws: `BilevelError.invalidArgument` when the problem has no `upperBatch`.
    public func upperBatchGradients(_ x: Tensor, _ y: Tensor, indices: [Int]) throws -> (x: Tensor, y: Tensor) {
        let batch = try batchObjective(problem.upperBatch, "upperBatch", indices)
        counts.gradients += 1
        let (gx, gy) = gradient(at: x, y, of: batch)
        return (gx, gy)
    }

    /// `∇²ᵧᵧf_B · v` at `(x, y)` for the mini-batch loss `f_B = problem.lowerBatch(x, y, indices)`; counts
    /// one HVP.
    ///
    /// - Throws: `BilevelError.invalidArgument` when the problem has no `lowerBatch`.
    public func lowerBatchHVP(_ x: Tensor, _ y: Tensor, _ v: Tensor, indices: [Int]) throws -> Tensor {
        let batch = try batchObjective(problem.lowerBatch, "lowerBatch", indices)
        counts.hvps += 1
        return hvp(at: y, direction: v) { y in batch(x, y) }
    }

    /// `∇²ₓᵧf_B · v = ∇ₓ⟨∇ᵧf_B, v⟩` at `(x, y)` for the mini-batch loss `f_B = problem.lowerBatch(x, y, indices)`;
    /// counts one mixed product.
    ///
    /// - Throws: `BilevelError.invalidArgument` when the problem has no `lowerBatch`.
    public func lowerBatchMixedProduct(_ x: Tensor, _ y: Tensor, _ v: Tensor, indices: [Int]) throws -> Tensor {
        let batch = try batchObjective(problem.lowerBatch, "lowerBatch", indices)
        counts.mixedProducts += 1
        return mixedHVP(at: x, y, direction: v, of: batch)
    }

    /// The mini-batch objective `(x, y) ↦ objective(x, y, indices)`, or an error naming the missing closure.
    private func batchObjective(
        _ objective: ((Tensor, Tensor, [Int]) -> Tensor)?, _ name: String, _ indices: [Int]
    ) throws -> (Tensor, Tensor) -> Tensor {
        guard let objective else {
            throw BilevelError.invalidArgument(name: "BilevelProblem.\(name)", reason: "a mini-batch derivative was requested but the problem has no \(name) closure; set it (and its sample count)")
        }
        return { x, y in objective(x, y, indices) }
    }

    /// One inner step `Ψ(s, x)` on constants (no derivative; not counted).
    public func step(_ state: Tensor, _ x: Tensor, like y0: Tensor) -> Tensor {
        if let program = staged(.step, [state.shape, x.shape, y0.shape]) {
            return program.outputs(at: [state.detached, x.detached])[0]
        }
        return problem.dynamics.step(state.detached, x.detached, lower: problem.lower, like: y0)
    }

    /// `Ψ(s, x)` and its tangent `A ṡ + B ẋ` (`A = ∂Ψ/∂s`, `B = ∂Ψ/∂x`): one forward sweep.
    public func stepJVP(
        _ state: Tensor, _ x: Tensor, directions: (Tensor, Tensor), like y0: Tensor
    ) -> (value: Tensor, tangent: Tensor) {
        counts.jvps += 1
        if let program = staged(.stepJVP, [state.shape, x.shape, y0.shape]) {
            let (value, tangent) = pair(program.outputs(at: [state, x, directions.0, directions.1]))
            return (value, tangent)
        }
        let dynamics = problem.dynamics, lower = problem.lower
        return jvp(at: state, x, directions: directions) { s, x in dynamics.step(s, x, lower: lower, like: y0) }
    }

    /// The tangent `A ṡ + B ẋ` of the step at `(s, x)` alone (one forward sweep, counted as a JVP): staged,
    /// the program keeps only what the tangent needs (for the step `w − η(Aᵀ(Aw − b)/n + …)`, the
    /// tangent's `AᵀA ṡ` and not the value's `Aᵀ(Aw − b)`, half the passes over A).
    public func stepTangent(_ state: Tensor, _ x: Tensor, directions: (Tensor, Tensor), like y0: Tensor) -> Tensor {
        if let program = staged(.stepTangent, [state.shape, x.shape, y0.shape]) {
            counts.jvps += 1
            return program.outputs(at: [state, x, directions.0, directions.1])[0]
        }
        return stepJVP(state, x, directions: directions, like: y0).tangent
    }

    /// `A Z + B` for the step at `(s, x)`: the tangents of Ψ in the directions `(Z_i, e_i)` for every
    /// coordinate i of x, with `Z` stacked as `[d] + s.shape` (row i is Z_i) and the basis directions
    /// `e_i` as `basis`, the `[d] + x.shape` identity (built once by the caller, reused every step) —
    /// FAD's update `Z_t = A_t Z_{t−1} + B_t` (Liu et al. 2021 (survey), eq. 16). Counts d JVPs. Staged,
    /// it replays one program batched over the d columns (`Program.vmap` of the tangent program); eager,
    /// it runs one tangent per column.
    public func stepTangents(_ state: Tensor, _ x: Tensor, columns: Tensor, basis: Tensor, like y0: Tensor) -> Tensor {
        if let program = staged(.stepTangents, [state.shape, x.shape, y0.shape]) {
            counts.jvps += x.count
            return program.outputs(at: [state, x, columns, basis])[0]
        }
        let rows = (0..<x.count).map { i in stepTangent(state, x, directions: (columns[i], basis[i]), like: y0) }
        return Tensor(shape: columns.shape, scalars: rows.flatMap(\.scalars))
    }

    /// `(Aᵀ λ, Bᵀ λ)` for the step at `(s, x)`: one reverse sweep through Ψ (which itself contains a
    /// gradient, so this is a nested, reverse-over-reverse product).
    public func stepVJP(_ state: Tensor, _ x: Tensor, cotangent: Tensor, like y0: Tensor) -> (state: Tensor, x: Tensor) {
        counts.vjps += 1
        if let program = staged(.stepVJP, [state.shape, x.shape, y0.shape]) {
            return pair(program.outputs(at: [state, x, cotangent]))
        }
        let dynamics = problem.dynamics, lower = problem.lower
        let (_, pullback) = vjp(at: state, x) { s, x in dynamics.step(s, x, lower: lower, like: y0) }
        let (ds, dx) = pullback(cotangent)
        return (ds, dx)
    }

    /// Records `note` for the diagnostics unless it was recorded already.
    func noteOnce(_ note: String) {
        if !notes.contains(note) { notes.append(note) }
    }

    /// The two outputs of a two-output program.
    private func pair(_ outputs: [Tensor]) -> (Tensor, Tensor) { (outputs[0], outputs[1]) }

    /// Runs `steps` inner steps from the state `s0` without recording, checking for NaN/Inf.
    ///
    /// - Parameter keepTrajectory: also return every state `s_0 … s_steps`.
    /// - Throws: `BilevelError.nonFinite` naming the first step that produced a non-finite value.
    public func unroll(
        from s0: Tensor, _ x: Tensor, steps: Int, like y0: Tensor, keepTrajectory: Bool = false
    ) throws -> (final: Tensor, trajectory: [Tensor]) {
        var s = s0.detached
        var trajectory = keepTrajectory ? [s] : []
        if keepTrajectory { trajectory.reserveCapacity(steps + 1) }
        for t in 0..<steps {
            s = step(s, x, like: y0)
            if s.hasNonFinite { throw BilevelError.nonFinite(quantity: "the inner iterate", step: t + 1) }
            if keepTrajectory { trajectory.append(s) }
        }
        return (s, trajectory)
    }
}
