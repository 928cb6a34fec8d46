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
    /// The sample losses (`"lowerSamples [x shape] [y shape]"`) already checked to return a scalar.
    private var scalarSampleLosses: Set<String> = []

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

    /// `∇²ᵧᵧf · v_k` at `(x, y)` for every row `v_k` of `directions` (`[K] + y.shape`), stacked as
    /// `[K] + y.shape` (row k is `H v_k`); counts K HVPs. Staged, one replay of the HVP program batched
    /// over the K rows (`Program.vmap`, x and y shared); eager (or when that program cannot be staged,
    /// noted), one `lowerHVP` per row.
    ///
    /// - Throws: `BilevelError.shapeMismatch` when `directions` is not `[K] + y.shape` with K ≥ 1.
    public func lowerHVPs(_ x: Tensor, _ y: Tensor, directions: Tensor) throws -> Tensor {
        let k = directions.shape.first ?? 0
        guard k >= 1 && directions.shape == [k] + y.shape else {
            throw BilevelError.shapeMismatch(name: "lowerHVPs directions (K ≥ 1 rows of y's shape)", expected: [max(k, 1)] + y.shape, actual: directions.shape)
        }
        if let program = staged(.lowerHVPs, [x.shape, y.shape, [k]]) {
            counts.hvps += k
            return program.outputs(at: [x, y, directions])[0]
        }
        let rows = (0..<k).map { i in lowerHVP(x, y, directions[i]) }
        return Tensor(shape: directions.shape, scalars: rows.flatMap(\.scalars))
    }

    /// The lower Hessian `H = ∇²ᵧᵧf(x, y)` as an `[n, n]` matrix over the flattened y (`n = y.count`;
    /// column i is `H e_i`): `lowerHVPs` on the n basis directions, so n counted HVPs, one batched
    /// replay when staged (the dense matrix of Liu et al. 2021 (survey), eq. 31).
    ///
    /// - Throws: `BilevelError.shapeMismatch` when y is empty.
    public func lowerHessian(_ x: Tensor, _ y: Tensor) throws -> Tensor {
        let n = y.count
        return try lowerHVPs(x, y, directions: identityMatrix(n).reshaped(to: [n] + y.shape)).reshaped(to: [n, n]).transposed
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

    /// `(∇ₓf_B, ∇ᵧf_B)` at `(x, y)` for the mini-batch loss `f_B` on the sample `indices` (`problem.lowerBatch`,
    /// else the mean of `problem.lowerSamples` over the gathered rows: staged, one program over the `[B, …]`
    /// rows per batch size B): one reverse sweep over the batch, counted as one gradient.
    ///
    /// - Throws: `BilevelError.invalidArgument` when the problem has no mini-batch form or an index is out
    ///   of range; `.shapeMismatch` when one sample's loss is not a scalar.
    public func lowerBatchGradients(_ x: Tensor, _ y: Tensor, indices: [Int]) throws -> (x: Tensor, y: Tensor) {
        let batch = try miniBatch(lower: true, x, y, indices)
        counts.gradients += 1
        if let rows = batch.rows, let program = staged(.lowerMiniBatchGradients, [x.shape, y.shape, [indices.count]]) {
            return pair(program.outputs(at: [x, y] + rows))
        }
        let (gx, gy) = gradient(at: x, y, of: batch.objective)
        return (gx, gy)
    }

    /// `(∇ₓF_B, ∇ᵧF_B)` at `(x, y)` for the mini-batch loss `F_B` on the sample `indices` (`problem.upperBatch`,
    /// else the mean of `problem.upperSamples`, as `lowerBatchGradients`): one reverse sweep over the batch,
    /// counted as one gradient.
    ///
    /// - Throws: as `lowerBatchGradients`, for the upper objective.
    public func upperBatchGradients(_ x: Tensor, _ y: Tensor, indices: [Int]) throws -> (x: Tensor, y: Tensor) {
        let batch = try miniBatch(lower: false, x, y, indices)
        counts.gradients += 1
        if let rows = batch.rows, let program = staged(.upperMiniBatchGradients, [x.shape, y.shape, [indices.count]]) {
            return pair(program.outputs(at: [x, y] + rows))
        }
        let (gx, gy) = gradient(at: x, y, of: batch.objective)
        return (gx, gy)
    }

    /// `∇²ᵧᵧf_B · v` at `(x, y)` for the lower mini-batch loss `f_B` on `indices` (as `lowerBatchGradients`);
    /// counts one HVP.
    ///
    /// - Throws: as `lowerBatchGradients`.
    public func lowerBatchHVP(_ x: Tensor, _ y: Tensor, _ v: Tensor, indices: [Int]) throws -> Tensor {
        let batch = try miniBatch(lower: true, x, y, indices)
        counts.hvps += 1
        if let rows = batch.rows, let program = staged(.lowerMiniBatchHVP, [x.shape, y.shape, [indices.count]]) {
            return program.outputs(at: [x, y, v] + rows)[0]
        }
        return hvp(at: y, direction: v) { y in batch.objective(x, y) }
    }

    /// `∇²ₓᵧf_B · v = ∇ₓ⟨∇ᵧf_B, v⟩` at `(x, y)` for the lower mini-batch loss `f_B` on `indices` (as
    /// `lowerBatchGradients`); counts one mixed product.
    ///
    /// - Throws: as `lowerBatchGradients`.
    public func lowerBatchMixedProduct(_ x: Tensor, _ y: Tensor, _ v: Tensor, indices: [Int]) throws -> Tensor {
        let batch = try miniBatch(lower: true, x, y, indices)
        counts.mixedProducts += 1
        if let rows = batch.rows, let program = staged(.lowerMiniBatchMixedProduct, [x.shape, y.shape, [indices.count]]) {
            return program.outputs(at: [x, y, v] + rows)[0]
        }
        return mixedHVP(at: x, y, direction: v, of: batch.objective)
    }

    /// The per-sample lower gradients `gₖ = ∇ᵧℓ(x, y, s_{indices[k]})` of `problem.lowerSamples`, stacked as
    /// `[K] + y.shape` (`[K, n]` for a vector y; row k for sample `indices[k]`); counts K gradients.
    /// Staged, one program per K — the gradient of one sample's loss, batched over the K gathered rows
    /// (`Program.vmap`) — runs in one replay; eager (or when staging fails, noted), one gradient per sample.
    ///
    /// - Throws: `BilevelError.invalidArgument` when the problem has no `lowerSamples` or an index is out of
    ///   range; `.shapeMismatch` when one sample's loss is not a scalar.
    public func lowerSampleGradients(_ x: Tensor, _ y: Tensor, indices: [Int]) throws -> Tensor {
        guard let samples = problem.lowerSamples else {
            throw BilevelError.invalidArgument(name: "BilevelProblem.lowerSamples", reason: "per-sample gradients were requested but the problem has no per-sample lower loss; set lowerSamples to a SampleLoss")
        }
        let rows = try sampleRows(samples, "lowerSamples", x, y, indices)
        counts.gradients += indices.count
        if let program = staged(.lowerSampleGradients, [x.shape, y.shape, [indices.count]]) {
            return program.outputs(at: [x, y] + rows)[0]
        }
        return samples.sampleGradients(x, y, rows: rows)
    }

    /// The rows of `samples` at `indices`, after checking (once per oracle and shapes) that one sample's
    /// loss is a scalar.
    private func sampleRows(_ samples: SampleLoss, _ name: String, _ x: Tensor, _ y: Tensor, _ indices: [Int]) throws -> [Tensor] {
        let rows = try samples.rows(indices, name: "BilevelProblem.\(name)")
        let key = "\(name) \(x.shape) \(y.shape)"
        if !scalarSampleLosses.contains(key) {
            try samples.requireScalarLoss(x, y, rows: rows, name: "BilevelProblem.\(name)")
            scalarSampleLosses.insert(key)
        }
        return rows
    }

    /// The mini-batch objective `(x, y) ↦ f_B(x, y)` of one level on `indices`: the caller's `lowerBatch`/
    /// `upperBatch`, else the eager mean of the level's `SampleLoss` together with the gathered rows its
    /// staged programs take (`rows == nil` for a closure over indices).
    ///
    /// - Throws: `BilevelError.invalidArgument` naming the missing closure or the bad index;
    ///   `.shapeMismatch` for a non-scalar sample loss.
    private func miniBatch(
        lower: Bool, _ x: Tensor, _ y: Tensor, _ indices: [Int]
    ) throws -> (objective: (Tensor, Tensor) -> Tensor, rows: [Tensor]?) {
        let name = lower ? "lowerBatch" : "upperBatch"
        if let closure = lower ? problem.lowerBatch : problem.upperBatch { return ({ x, y in closure(x, y, indices) }, nil) }
        guard let samples = lower ? problem.lowerSamples : problem.upperSamples else {
            throw BilevelError.invalidArgument(
                name: "BilevelProblem.\(name)",
                reason: "a mini-batch derivative was requested but the problem has no \(name) closure (with its sample count) and no \(lower ? "lowerSamples" : "upperSamples") SampleLoss; set one")
        }
        let rows = try sampleRows(samples, lower ? "lowerSamples" : "upperSamples", x, y, indices)
        return ({ x, y in samples.meanLoss(x, y, rows: rows) }, rows)
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
