// Loops over a staged step: the step is staged (and differentiated) once and replayed T times, so a
// loop of T steps never becomes a T-fold program.

extension Program {
    /// The states `s₀ = initial, s_{t+1} = step(s_t, parameters…)` for `t < steps`, all `steps + 1` of
    /// them (a reverse sweep reads them backwards), replaying this program as the step.
    ///
    /// The program takes the state first and then `parameters`, and returns the next state (same shape).
    /// With the step's `vjp()` program, reverse-mode unrolling is a loop over two staged programs:
    /// `p ← ∇F(s_T)`, then for `t = T−1 … 0`: `(p, x̄ₜ) = vjp(s_t, x, p)`, `x̄ += x̄ₜ`.
    ///
    /// - Precondition: one output of the state's shape; `parameters` match the remaining inputs.
    public func scan(from initial: Tensor, parameters: [Tensor], steps: Int) -> [Tensor] {
        engineCheck(
            outputs.count == 1 && outputShapes[0] == initial.shape && inputShapes.first == initial.shape,
            "\(AutoDiffError.shapeMismatch(op: "Program.scan", lhs: initial.shape, rhs: outputShapes.first ?? [], reason: "the step must map the state (first argument) to a new state of the same shape"))")
        engineCheck(steps >= 0, "\(AutoDiffError.invalidArgument(op: "Program.scan", reason: "steps must be non-negative, got \(steps)"))")
        var states = [initial]
        states.reserveCapacity(steps + 1)
        for _ in 0..<steps { states.append(self.outputs(at: [states[states.count - 1]] + parameters)[0]) }
        return states
    }
}
