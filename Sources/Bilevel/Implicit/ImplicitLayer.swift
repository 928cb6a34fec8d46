// Implicit layers: solutions of equations as differentiable ops (root, fixed point, argmin). Their
// derivatives come from the implicit function theorem (see `ImplicitRoot`), so they compose with every
// transform — inside `gradient`, under `hvp`, in the lower level of a `BilevelProblem`, nested in each
// other — at any order.

/// The solution `y*(x)` of `G(x, y) = 0` near `initial`, as a differentiable op: its derivative is
/// `∂y*/∂x = −(∂G/∂y)⁻¹ ∂G/∂x` (implicit function theorem), applied through `solver` with the products of
/// `∂G/∂y` taken by the engine (no Jacobian is formed unless the solver is `.exact`).
///
/// The value is found by Newton's method from `initial` (each step one linear solve through `solver`),
/// until `‖G‖ ≤ tolerance · max(1, ‖G(x, initial)‖)`. `∂G/∂y` need not be symmetric: the systems are solved
/// on the normal equations (Hessian `M Mᵀ`), so CG applies; pass `symmetric: true` when it is (then
/// directly, as in `argmin`).
///
/// - Parameters:
///   - residual: `G(x, y)`, written with engine ops, returning y's structure; x and y may be any
///     `TensorBundle` (y's leaves are solved for jointly, as one vector).
///   - x: the parameters the solution is differentiated with respect to.
///   - initial: the starting guess (its value only: the derivative does not depend on it).
///   - solver: the linear solver for the Newton and derivative systems.
///   - symmetric: whether `∂G/∂y` is symmetric.
///   - tolerance, maxIterations: Newton's stopping rule.
/// - Precondition: G returns y's shape and Newton converges within `maxIterations`; otherwise the program
///   stops with the residual, the step count and the linear solver's last state.
public func root<X: TensorBundle, Y: TensorBundle>(
    of residual: @escaping (X, Y) -> Y, at x: X, initial: Y,
    solver: any HessianInverseSolver = ConjugateGradient(maxIterations: 500, tolerance: 1e-13),
    symmetric: Bool = false, tolerance: Double = 1e-11, maxIterations: Int = 50
) -> Y {
    let start = initial.flattened.detached
    return applyImplicitRoot(
        "root", of: residual, at: x, initial: initial, solver: solver, symmetric: symmetric,
        tolerance: tolerance, newtonSteps: maxIterations
    ) { flatResidual, ps in
        newtonSolve("root", flatResidual, ps, from: start, solver: solver, symmetric: symmetric,
                    tolerance: tolerance, maxIterations: maxIterations)
    }
}

/// The fixed point `y* = Φ(x, y*)` reached by iterating `y ← Φ(x, y)` from `initial`, as a differentiable
/// op: the root of `G(x, y) = y − Φ(x, y)`, so `∂y*/∂x = (I − ∂Φ/∂y)⁻¹ ∂Φ/∂x` (a deep-equilibrium layer).
///
/// The value iterates Φ until `‖Φ(x, y) − y‖ ≤ tolerance · max(1, ‖Φ(x, initial) − initial‖)`; Φ must be a
/// contraction near y*. The derivative systems go through `solver` as in `root`.
///
/// - Precondition: Φ keeps y's shape and the iteration converges within `maxIterations`; otherwise the
///   program stops with the last step's size.
public func fixedPoint<X: TensorBundle, Y: TensorBundle>(
    of map: @escaping (X, Y) -> Y, at x: X, initial: Y,
    solver: any HessianInverseSolver = ConjugateGradient(maxIterations: 500, tolerance: 1e-13),
    tolerance: Double = 1e-12, maxIterations: Int = 10_000
) -> Y {
    let start = initial.flattened.detached
    return applyImplicitRoot(
        "fixedPoint", of: { x, y in y.zipTensors(map(x, y), -) }, at: x, initial: initial, solver: solver, symmetric: false,
        tolerance: tolerance, newtonSteps: 50
    ) { flatResidual, ps in
        var y = start, change = Double.infinity, scale = 1.0
        for iteration in 0..<maxIterations {
            let next = y - flatResidual(ps, y)  // Φ(x, y) = y − G(x, y)
            guard next.shape == y.shape else {
                fatalError("fixedPoint: Φ(x, y) has shape \(next.shape) but y has shape \(y.shape)")
            }
            change = (next - y).squaredNorm().scalar.squareRoot()
            if iteration == 0 { scale = max(1, change) }
            y = next
            if change <= tolerance * scale { return y }
            guard change.isFinite else { break }
        }
        fatalError("fixedPoint: ‖Φ(x, y) − y‖ = \(change) after \(maxIterations) iterations (tolerance \(tolerance) × \(scale)); Φ may not be a contraction here — raise maxIterations or use root(of:) with Newton")
    }
}

/// The minimiser `y*(x) = argmin_y f(x, y)` near `initial`, as a differentiable op: the root of
/// `∇ᵧf(x, y) = 0`, so `∂y*/∂x = −(∇²ᵧᵧf)⁻¹ ∇²ᵧₓf`, the implicit hypergradient's Jacobian (Liu et al. 2021
/// (survey), eq. 31). `∇²ᵧᵧf` is symmetric, so the systems go to `solver` directly (CG needs f
/// strictly convex in y near y*).
///
/// The value is found by Newton's method on `∇ᵧf` (Hessian solves through `solver`), as in `root`.
///
/// - Precondition: f is scalar and Newton converges; otherwise the program stops with the residual.
public func argmin<X: TensorBundle, Y: TensorBundle>(
    of objective: @escaping (X, Y) -> Tensor, at x: X, initial: Y,
    solver: any HessianInverseSolver = ConjugateGradient(maxIterations: 500, tolerance: 1e-13),
    tolerance: Double = 1e-11, maxIterations: Int = 50
) -> Y {
    root(of: { x, y in gradient(at: y) { y in objective(x, y) } }, at: x, initial: initial,
         solver: solver, symmetric: true, tolerance: tolerance, maxIterations: maxIterations)
}

/// Applies the `ImplicitRoot` of `residual` to `vec x` (x's leaves flattened), solving for `vec y`: the
/// residual and the forward solve (`forward(flat residual, vec x)`, on constants) see both as vectors;
/// derived linear solves use Newton with at most `newtonSteps` steps.
private func applyImplicitRoot<X: TensorBundle, Y: TensorBundle>(
    _ label: String, of residual: @escaping (X, Y) -> Y, at x: X, initial: Y,
    solver: any HessianInverseSolver, symmetric: Bool, tolerance: Double, newtonSteps: Int,
    forward: @escaping (_ residual: @escaping (Tensor, Tensor) -> Tensor, _ parameters: Tensor) -> Tensor
) -> Y {
    let (xTemplate, yTemplate) = (x, initial)
    let flatResidual: (Tensor, Tensor) -> Tensor = { p, y in
        residual(xTemplate.unflattening(p), yTemplate.unflattening(y)).flattened
    }
    let op = ImplicitRoot(
        label: label, residual: flatResidual, forwardSolve: { forward(flatResidual, $0) }, solver: solver,
        symmetric: symmetric, tolerance: tolerance, maxIterations: newtonSteps, shape: [initial.scalarCount])
    return yTemplate.unflattening(op(x.flattened))
}
