import Foundation

/// A way of computing the hypergradient `∇F(x) = d/dx F(x, y*(x))` of a bilevel problem.
///
/// Every method of the papers in Docs/references.md (unrolled FAD/RAD/TRAD, one-stage, implicit solves, sign-SGD, the
/// constrained and first-order families) conforms, so they are interchangeable in `minimize` and in the
/// benchmark.
public protocol HypergradientMethod {
    /// A short name for tables and diagnostics (`"RAD"`, `"implicit-cg"`, …).
    var name: String { get }
    /// The hypergradient at `x`, starting the lower level from `y0`.
    ///
    /// - Throws: `BilevelError` for invalid inputs (T = 0, shapes), NaN/Inf in the inner loop, or a
    ///   solver that did not converge when the method is strict.
    func hypergradient(of problem: BilevelProblem, at x: Tensor, from y0: Tensor) throws -> HypergradientResult
    /// Whether the method solves and differentiates the constrained lower level when
    /// `problem.constraints` is set. Default `false`: `BilevelProblem.validate(x:y0:for:)` then throws
    /// `BilevelError.unsupportedConstraints` instead of silently ignoring the constraints.
    var honoursConstraints: Bool { get }
}

extension HypergradientMethod {
    /// `false`: a method honours constraints only if it says so.
    public var honoursConstraints: Bool { false }
}

/// The methods whose `honoursConstraints` is true, as named in `BilevelError.unsupportedConstraints`.
let constrainedMethodNames = ["KKTImplicit (implicit-kkt-*)", "SmoothedImplicit (sigd-*)", "PBGD (projected)"]

/// What a method returns: the hypergradient, the final inner iterate and how it was obtained.
public struct HypergradientResult: Sendable {
    /// The estimate of `∇F(x)`, shaped like `x`.
    public var hypergradient: Tensor
    /// The last inner iterate `y_T` (or the lower-level solution used).
    public var innerSolution: Tensor
    /// Counts, solver state and timing.
    public var diagnostics: Diagnostics

    /// A result from its parts.
    public init(hypergradient: Tensor, innerSolution: Tensor, diagnostics: Diagnostics) {
        self.hypergradient = hypergradient
        self.innerSolution = innerSolution
        self.diagnostics = diagnostics
    }
}

/// How a hypergradient was computed: work done, solver state, time.
public struct Diagnostics: CustomStringConvertible, Sendable {
    /// Inner steps taken (forward iterations of Ψ).
    public var innerSteps = 0
    /// Derivative queries made through the `BilevelOracle`.
    public var counts = DerivativeCounts()
    /// Iterations of the linear (or other inner) solver, if any.
    public var solverIterations: Int?
    /// Final relative residual `‖H v − b‖ / ‖b‖` of the linear solve, if any.
    public var residual: Double?
    /// Whether the solver reached its tolerance (true for direct methods).
    public var converged = true
    /// The relative error of the approximate `H⁻¹ ∇ᵧF` against a reference solve, when requested.
    public var referenceError: Double?
    /// Wall-clock seconds spent in `hypergradient`.
    public var seconds = 0.0
    /// Anything else worth reporting (one line each).
    public var notes: [String] = []

    /// Empty diagnostics.
    public init() {}

    /// One line: steps, counts, solver state, time.
    public var description: String {
        var parts = ["inner steps \(innerSteps)", "\(counts)"]
        if let solverIterations { parts.append("solver iterations \(solverIterations)") }
        if let residual { parts.append("residual \(residual)") }
        if let referenceError { parts.append("error vs reference solve \(referenceError)") }
        if !converged { parts.append("NOT CONVERGED") }
        parts.append(String(format: "%.3f ms", seconds * 1000))
        return (parts + notes).joined(separator: ", ")
    }
}

/// Numbers of derivative evaluations, by kind.
public struct DerivativeCounts: CustomStringConvertible, Equatable, Sendable {
    /// First-order gradients of F or f.
    public var gradients = 0
    /// Hessian-vector products `∇²ᵧᵧf · v` (each mixed product `∇²ₓᵧf · v` taken with it counts once).
    public var hvps = 0
    /// Mixed products `∇²ₓᵧf · v` taken on their own.
    public var mixedProducts = 0
    /// Forward-mode JVPs of the inner step Ψ.
    public var jvps = 0
    /// Reverse-mode VJPs of the inner step Ψ.
    public var vjps = 0

    /// Zero counts.
    public init() {}

    /// `gradients g, HVPs h, …`.
    public var description: String {
        "gradients \(gradients), HVPs \(hvps), mixed \(mixedProducts), JVPs \(jvps), VJPs \(vjps)"
    }

    /// The counts of two runs added kind by kind (for methods that average several solves).
    public static func + (a: DerivativeCounts, b: DerivativeCounts) -> DerivativeCounts {
        var sum = a
        sum.gradients += b.gradients
        sum.hvps += b.hvps
        sum.mixedProducts += b.mixedProducts
        sum.jvps += b.jvps
        sum.vjps += b.vjps
        return sum
    }
}

/// Runs `body`, filling `diagnostics.seconds`, `diagnostics.counts` and the oracle's notes, and
/// checks the hypergradient it returns: no method returns NaN or infinity.
///
/// - Throws: what `body` throws; `BilevelError.nonFinite` naming the hypergradient when it is not finite
///   (an inner loop whose derivative overflows, a NaN upper gradient, a divergent solve).
public func timed(
    _ oracle: BilevelOracle, _ body: (inout Diagnostics) throws -> (Tensor, Tensor)
) throws -> HypergradientResult {
    let start = DispatchTime.now().uptimeNanoseconds
    var diagnostics = Diagnostics()
    let (hypergradient, y) = try body(&diagnostics)
    try requireFinite(hypergradient, "the hypergradient (\(diagnostics.innerSteps) inner steps\(diagnostics.residual.map { ", solve residual \($0)" } ?? ""))")
    diagnostics.counts = oracle.counts
    diagnostics.notes += oracle.notes
    diagnostics.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return HypergradientResult(hypergradient: hypergradient, innerSolution: y, diagnostics: diagnostics)
}
