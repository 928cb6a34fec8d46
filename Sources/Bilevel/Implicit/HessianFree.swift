/// The Hessian-free approximation `H ≈ λ I` of implicit differentiation (Zhang et al. 2024, the "Hessian-free"
/// hypergradient): `v = H⁻¹ b ≈ b / λ`, so the implicit correction becomes
///
///     ∇F(x) ≈ ∇ₓF − (1/λ) ∇²ₓᵧf · ∇ᵧF.
///
/// No Hessian-vector product at all: the cost is one upper gradient and one mixed product. Exact when
/// `∇²ᵧᵧf = λ I` (e.g. an isotropic ridge penalty dominating the lower loss); otherwise a crude,
/// biased, but very cheap surrogate whose quality `compareWith` measures against a CG solve. With a
/// constrained lower level (`KKTImplicit`) it approximates the reduced Hessian by λ on the null space.
public struct HessianFree: HessianInverseSolver, Sendable {
    /// The curvature λ > 0 assumed for every direction.
    public var lambda: Double
    /// A reference solver to measure the approximation against (`referenceError`), or `nil`.
    public var compareWith: ConjugateGradient?

    /// `"hessian-free"`.
    public var name: String { "hessian-free" }

    /// `H ≈ λ I`, optionally compared with `compareWith`.
    public init(lambda: Double, compareWith: ConjugateGradient? = nil) {
        self.lambda = lambda
        self.compareWith = compareWith
    }

    /// `v = b / λ` (see the type's documentation).
    ///
    /// - Throws: `BilevelError.invalidArgument` for λ ≤ 0 or non-finite, and whatever the reference
    ///   solver throws.
    public func solve(_ system: LinearSystem, rhs b: Tensor) throws -> LinearSolution {
        try requirePositive("HessianFree.lambda", lambda)
        let v = b / lambda
        var solution = LinearSolution(solution: v, iterations: 0, residual: nil, converged: true, notes: ["hessian-free: H ≈ \(lambda) I, no HVPs"])
        solution.referenceError = try system.referenceError(of: v, rhs: b, reference: compareWith)
        return solution
    }
}

extension HessianInverseSolver where Self == HessianFree {
    /// `H ≈ λ I` (see `HessianFree`).
    public static func hessianFree(lambda: Double, compareWith: ConjugateGradient? = nil) -> HessianFree {
        HessianFree(lambda: lambda, compareWith: compareWith)
    }
}
