/// Errors the bilevel layer throws. Each `description` names the quantity, the values and what to do.
public enum BilevelError: Error, CustomStringConvertible, Sendable {
    /// A step count or truncation length is out of range (T = 0, M > T, …).
    case invalidSteps(name: String, value: Int, requirement: String)
    /// A tensor argument has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    /// A tensor argument has no elements.
    case emptyTensor(name: String)
    /// A NaN or infinity appeared (in the inputs, or at inner step `step`).
    case nonFinite(quantity: String, step: Int?)
    /// An iterative solver stopped at its iteration cap above its tolerance (thrown in strict mode).
    case didNotConverge(solver: String, iterations: Int, residual: Double, tolerance: Double)
    /// A parameter is outside its valid range.
    case invalidArgument(name: String, reason: String)
    /// The constraints admit no point.
    case infeasible(reason: String)
    /// The active constraints are linearly dependent, so the KKT system is singular.
    case degenerateActiveSet(reason: String)
    /// The problem has `constraints` but the method cannot honour them (see
    /// `HypergradientMethod.honoursConstraints`); `supported` names the methods that can.
    case unsupportedConstraints(method: String, supported: [String])

    /// A sentence naming the problem and its values.
    public var description: String {
        switch self {
        case let .invalidSteps(name, value, requirement):
            return "\(name) = \(value) is invalid: \(requirement)"
        case let .shapeMismatch(name, expected, actual):
            return "\(name) has shape \(actual) but shape \(expected) is required"
        case let .emptyTensor(name):
            return "\(name) is empty (a zero extent in its shape)"
        case let .nonFinite(quantity, step):
            return "\(quantity) contains NaN or infinity"
                + (step.map { " at inner step \($0); reduce the step size" }
                    ?? "; check the objectives and their gradients at these inputs, and reduce the inner step size or the solver's step")
        case let .didNotConverge(solver, iterations, residual, tolerance):
            return "\(solver) did not converge: relative residual \(residual) after \(iterations) iterations (tolerance \(tolerance))"
        case let .invalidArgument(name, reason):
            return "\(name): \(reason)"
        case let .infeasible(reason):
            return "the constraints are infeasible: \(reason)"
        case let .degenerateActiveSet(reason):
            return "degenerate active set: \(reason)"
        case let .unsupportedConstraints(method, supported):
            return "\(method) cannot honour problem.constraints (it would silently solve the unconstrained lower level);"
                + " use one of \(supported.joined(separator: ", ")), or remove the constraints"
        }
    }
}

/// Throws `BilevelError.invalidArgument` naming `name` unless `value` is finite and positive.
func requirePositive(_ name: String, _ value: Double) throws {
    guard value > 0 && value.isFinite else {
        throw BilevelError.invalidArgument(name: name, reason: "must be a finite positive number, got \(value)")
    }
}

/// Throws `BilevelError.nonFinite` naming `quantity` if `value` holds a NaN or an infinity: the one
/// finite check behind the inputs (`validate`), every method's hypergradient (`timed`) and the
/// right-hand side of every linear solve (`solveRecording`).
func requireFinite(_ value: Tensor, _ quantity: @autoclosure () -> String, step: Int? = nil) throws {
    guard !value.hasNonFinite else { throw BilevelError.nonFinite(quantity: quantity(), step: step) }
}
