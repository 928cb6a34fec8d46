/// The engine op behind `root`, `fixedPoint` and `argmin`: the solution `y*(p)` of `G(p, y) = 0` for
/// the parameter vector p (a bundle's leaves, flattened), differentiated by the implicit function theorem
/// (the implicit-differentiation formula of Liu et al. 2021 (survey), eq. 31, with `∇ᵧf` replaced by a
/// general residual G):
///
///     JVP:  ẏ = −(∂G/∂y)⁻¹ (∂G/∂p) ṗ,
///     VJP:  p̄ = −(∂G/∂p)ᵀ u,   u = (∂G/∂y)⁻ᵀ ȳ.
///
/// `∂G/∂y` is never formed: its products are JVPs and VJPs of G taken by the engine, and the linear
/// solves go through any `HessianInverseSolver` (CG, Neumann, fixed point, exact, …) on an operator
/// `M` written as the Hessian of a quadratic — `½⟨v, M v⟩` when M is symmetric (`argmin`), otherwise the
/// normal equations `½‖Mᵀw‖²` (Hessian `M Mᵀ`, then `v = Mᵀw`).
///
/// Differentiable to any order: the adjoint solution `u` (and the tangent solution) is itself this op,
/// applied to `(p, y*, ȳ)` with the linear residual `(∂G/∂y)ᵀ u − ȳ` (resp. `(∂G/∂y) w − ṙ`), so an
/// enclosing transform differentiates the backward pass by the same theorem — through the parameters,
/// through `y*` and through the seed — instead of through the iterations of a solver.
///
/// Sendability: the closures are the user's and are run only by the thread that runs the transform, as
/// every traced value (see the engine's `Trace`).
struct ImplicitRoot: UnaryPrimitive, @unchecked Sendable {
    /// Gives every op its identity (closures cannot be compared).
    final class Identity: Sendable {}

    /// `"root"`, `"fixedPoint"`, `"argmin"`, with `.adjoint` / `.tangent` for the derived solves.
    let label: String
    /// `G(p, y)` for the parameter vector p, of y's shape.
    let residual: (Tensor, Tensor) -> Tensor
    /// `y*(p)` on a constant p.
    let forwardSolve: (Tensor) -> Tensor
    /// The linear solver of the derivative (and Newton) systems.
    let solver: any HessianInverseSolver
    /// Whether `∂G/∂y` is symmetric (a Hessian), so the systems are solved directly.
    let symmetric: Bool
    /// Newton's tolerance for the derived linear solves: `‖R‖ ≤ tolerance · max(1, ‖R(v₀)‖)`.
    let tolerance: Double
    /// Newton's step cap for the derived linear solves.
    let maxIterations: Int
    /// The shape of y.
    let shape: [Int]
    /// This op's identity.
    let identity = Identity()

    static func == (a: ImplicitRoot, b: ImplicitRoot) -> Bool { a.identity === b.identity }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(identity)) }

    var name: String { label }
    func outputShape(_ shape: [Int]) -> [Int] { self.shape }
    func value(_ p: Tensor) -> Tensor { forwardSolve(p) }

    /// `−(∂G/∂y)⁻¹ (∂G/∂p) ṗ`.
    func jvp(_ t: Tensor, x p: Tensor, y: Tensor) -> Tensor {
        let residual = self.residual
        let partial = AutoDiff.jvp(at: p, direction: t) { p in residual(p, y) }.tangent
        return -linearSolution(transposed: false, p, y, rhs: partial)
    }

    /// `−(∂G/∂p)ᵀ (∂G/∂y)⁻ᵀ ȳ`.
    func vjp(_ g: Tensor, x p: Tensor, y: Tensor) -> Tensor {
        let residual = self.residual
        let u = linearSolution(transposed: true, p, y, rhs: g)
        return -AutoDiff.vjp(at: p) { p in residual(p, y) }.pullback(u)
    }

    func swiftSource(_ x: String) -> String { "\(label)(/* residual closure, not stageable */ \(x))" }

    /// The `v` with `(∂G/∂y) v = b` (`transposed`: `(∂G/∂y)ᵀ v = b`) at `(p, y)`, as this op applied to the
    /// packed vector `[p, vec y, vec b]` with a residual linear in v, so that it is differentiable in p,
    /// y and b (one solve per derivative, whatever the number of parameters).
    private func linearSolution(transposed: Bool, _ p: Tensor, _ y: Tensor, rhs b: Tensor) -> Tensor {
        let (k, n, residual, yShape) = (p.count, y.count, self.residual, y.shape)
        let linearResidual: (Tensor, Tensor) -> Tensor = { q, v in
            let ps = q.slice(alongAxis: 0, 0..<k), point = q.slice(alongAxis: 0, k..<(k + n)).reshaped(to: yShape)
            let product = transposed
                ? AutoDiff.vjp(at: point) { residual(ps, $0) }.pullback(v)
                : AutoDiff.jvp(at: point, direction: v) { residual(ps, $0) }.tangent
            return product - q.slice(alongAxis: 0, (k + n)..<(k + 2 * n)).reshaped(to: yShape)
        }
        let label = self.label + (transposed ? ".adjoint" : ".tangent")
        let (solver, symmetric, tolerance, maxIterations) = (self.solver, self.symmetric, self.tolerance, self.maxIterations)
        let op = ImplicitRoot(
            label: label, residual: linearResidual,
            forwardSolve: { q in
                newtonSolve(label, linearResidual, q, from: Tensor(zeros: yShape), solver: solver,
                            symmetric: symmetric, tolerance: tolerance, maxIterations: maxIterations)
            },
            solver: solver, symmetric: symmetric, tolerance: tolerance, maxIterations: maxIterations, shape: yShape)
        return op(concatenate([p, y.reshaped(to: [n]), b.reshaped(to: [n])]))
    }
}

/// Newton's method for `R(q, v) = 0` in v on constants: `v ← v − M⁻¹ R(q, v)`, `M = ∂R/∂v` applied by
/// JVPs (and `Mᵀ` by VJPs) through `solver`, until `‖R‖ ≤ tolerance · max(1, ‖R(q, v₀)‖)`. A residual
/// linear in v is solved by the first step (later steps refine it).
///
/// Stops the program (an op cannot throw) with the residual, the step count and the linear solver's last
/// state when the cap is reached, the residual is not finite, or R does not have v's shape.
func newtonSolve(
    _ label: String, _ residual: @escaping (Tensor, Tensor) -> Tensor, _ q: Tensor, from initial: Tensor,
    solver: any HessianInverseSolver, symmetric: Bool, tolerance: Double, maxIterations: Int
) -> Tensor {
    var v = initial
    var r = residual(q, v)
    guard r.shape == v.shape else {
        fatalError("\(label): the residual G(x, y) has shape \(r.shape) but y has shape \(v.shape); G must return one equation per unknown")
    }
    let scale = max(1, norm(r))
    var steps = 0, lastSolve = "no linear solve"
    while !(norm(r) <= tolerance * scale) {
        guard steps < maxIterations, norm(r).isFinite else {
            fatalError("\(label): ‖G‖ = \(norm(r)) after \(steps) Newton steps (tolerance \(tolerance) × \(scale)); last linear solve: \(lastSolve). Raise maxIterations or the linear solver's accuracy, loosen the tolerance, or start closer to the solution")
        }
        let point = v
        let solution = solveLinear(
            applying: { d in AutoDiff.jvp(at: point, direction: d) { residual(q, $0) }.tangent },
            transposed: { w in AutoDiff.vjp(at: point) { residual(q, $0) }.pullback(w) },
            rhs: r, symmetric: symmetric, solver: solver, label: label)
        lastSolve = "\(solver.name), \(solution.iterations) iterations, relative residual \(solution.residual.map { "\($0)" } ?? "not computed")"
        v = v - solution.solution
        r = residual(q, v)
        steps += 1
    }
    return v
}

/// `M v = b` for an operator given by its products `M d` and `Mᵀ w`, through a `HessianInverseSolver`:
/// directly on `½⟨v, M v⟩` when M is symmetric, otherwise on the normal equations `½‖Mᵀw‖²` (`M Mᵀ w = b`,
/// `v = Mᵀ w`).
private func solveLinear(
    applying apply: @escaping (Tensor) -> Tensor, transposed transpose: @escaping (Tensor) -> Tensor,
    rhs b: Tensor, symmetric: Bool, solver: any HessianInverseSolver, label: String
) -> LinearSolution {
    let quadratic: (Tensor, Tensor) -> Tensor = symmetric
        ? { _, v in 0.5 * (v * apply(v)).sum() }
        : { _, w in 0.5 * transpose(w).squaredNorm() }
    let problem = BilevelProblem(upper: { _, v in v.sum() }, lower: quadratic)
    let system = LinearSystem(oracle: BilevelOracle(problem), x: Tensor(0), y: Tensor(zeros: b.shape))
    do {
        var solution = try solver.solve(system, rhs: b)
        if !symmetric { solution.solution = transpose(solution.solution) }
        return solution
    } catch {
        fatalError("\(label): the linear solve of a Newton or derivative step failed: \(error)")
    }
}

/// `‖t‖₂`.
private func norm(_ t: Tensor) -> Double { t.squaredNorm().scalar.squareRoot() }
