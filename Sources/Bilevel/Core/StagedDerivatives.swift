import Foundation

/// How a `BilevelOracle` evaluates the derivatives of a problem.
public enum DerivativeMode: Sendable {
    /// Every query records a fresh tape and runs the engine's transforms (the default).
    case eager
    /// Each derivative the methods replay (the upper and lower gradients, the lower HVP `∇²ᵧᵧf · v`, the
    /// mixed product `∇²ₓᵧf · v`, the inner step Ψ and its JVP and VJP) is staged once per argument
    /// shapes into an optimized `Program` (`attemptStage`, `Program.optimized()`) and replayed for every
    /// later query, by every method and every call that uses the same problem value (jit-of-grad). A
    /// derivative whose function cannot be staged (it reads `.scalar`/`.scalars` of a value, or branches
    /// on data) is evaluated eagerly, and the method's `Diagnostics.notes` name the derivative and the
    /// value that was read. Counts are the same as in eager mode.
    ///
    /// Staging runs the closures once on shapes: whatever they capture (data sets, a step size, any
    /// outside variable) is frozen into the program as a constant, as with JAX's `jit`. A closure that
    /// reads mutable state would silently keep the value it had when staged; use `.staged` only for
    /// closures that are pure functions of their arguments and of constants.
    case staged
}

/// One staged derivative of a problem, for reports (`BilevelProblem.stagedPrograms`).
public struct StagedProgramSummary: Sendable, CustomStringConvertible {
    /// Which derivative (`"lower HVP ∇²ᵧᵧf·v"`, `"step VJP (Aᵀλ, Bᵀλ)"`, …).
    public let derivative: String
    /// The argument shapes it was staged for.
    public let shapes: [[Int]]
    /// The number of primitive applications of the optimized program (`nil` when it fell back).
    public let applicationCount: Int?
    /// Milliseconds spent staging and optimizing it (or attempting to).
    public let stageMilliseconds: Double
    /// Why it could not be staged, when it fell back to eager evaluation.
    public let fallbackReason: String?

    /// `derivative shapes: n ops, staged in t ms` or `…: eager (reason)`.
    public var description: String {
        let what = applicationCount.map { "\($0) ops" } ?? "eager (\(fallbackReason ?? ""))"
        return "\(derivative) \(shapes): \(what), \(String(format: "%.1f", stageMilliseconds)) ms to stage"
    }
}

/// The derivatives an oracle stages, each with the program it stages from the problem's closures.
enum StagedDerivative: String, Hashable, Sendable {
    case upperGradients = "upper gradients (∇ₓF, ∇ᵧF)"
    case lowerGradients = "lower gradients (∇ₓf, ∇ᵧf)"
    case lowerSecondOrder = "lower second order (∇²ₓᵧf·v, ∇²ᵧᵧf·v)"
    case lowerHVP = "lower HVP ∇²ᵧᵧf·v"
    case lowerHVPs = "lower HVPs ∇²ᵧᵧf·V, batched over the rows of V"
    case mixedProduct = "mixed product ∇²ₓᵧf·v"
    case step = "inner step Ψ(s, x)"
    case stepJVP = "step JVP (Ψ, A ṡ + B ẋ)"
    case stepTangent = "step tangent A ṡ + B ẋ"
    case stepTangents = "step tangents A Z + B, batched over x's coordinates"
    case stepVJP = "step VJP (Aᵀλ, Bᵀλ)"
    case lowerSampleGradients = "lower per-sample gradients ∇ᵧℓₖ, batched over the samples"
    case lowerMiniBatchGradients = "lower mini-batch gradients (∇ₓf_B, ∇ᵧf_B) over the gathered samples"
    case upperMiniBatchGradients = "upper mini-batch gradients (∇ₓF_B, ∇ᵧF_B) over the gathered samples"
    case lowerMiniBatchHVP = "lower mini-batch HVP ∇²ᵧᵧf_B·v over the gathered samples"
    case lowerMiniBatchMixedProduct = "lower mini-batch mixed product ∇²ₓᵧf_B·v over the gathered samples"

    /// Stages this derivative of `problem` for `shapes` (`[x, y]` for the objectives' derivatives,
    /// `[s, x, y0]` for the step's, `[x, y, [K]]` for those over K gathered samples of a `SampleLoss`,
    /// whose programs take the gathered `[K, …]` rows as their last arguments, and for the lower HVPs of
    /// K directions), running the same eager transforms the oracle's eager path runs.
    func attempt(_ problem: BilevelProblem, shapes: [[Int]]) -> Result<Program, ConcretizationError> {
        let upper = problem.upper, lower = problem.lower, dynamics = problem.dynamics
        let first = shapes[0], second = shapes[1]
        switch self {
        case .lowerSampleGradients:
            return problem.lowerSamples!.attemptSampleGradients(x: first, y: second, batch: shapes[2][0])
        case .lowerMiniBatchGradients, .upperMiniBatchGradients, .lowerMiniBatchHVP, .lowerMiniBatchMixedProduct:
            return attemptMiniBatch(problem, x: first, y: second, batch: shapes[2][0])
        case .upperGradients, .lowerGradients:
            let objective = self == .upperGradients ? upper : lower
            return attemptStage(shapes: [first, second]) { a in
                let (gx, gy) = gradient(at: a[0], a[1], of: objective)
                return [gx, gy]
            }
        case .lowerSecondOrder:
            return attemptStage(shapes: [first, second, second]) { a in
                let (hxy, hyy) = hvp(at: a[0], a[1], directions: (Tensor(zeros: first), a[2]), of: lower)
                return [hxy, hyy]
            }
        case .lowerHVP:
            return attemptStage(shapes: [first, second, second]) { a in
                [hvp(at: a[1], direction: a[2]) { y in lower(a[0], y) }]
            }
        case .lowerHVPs:
            // The HVP program, simplified (so P1's normal product already reads its Gram matrix), then
            // batched over the K directions with x and y shared, before the element-wise fusion: K
            // products in one GEMM-shaped pass (the dense Hessian for K = n basis directions).
            return StagedDerivative.lowerHVP.attempt(problem, shapes: shapes)
                .map { $0.simplified().vmap(batchedInputs: [false, false, true], batchSize: shapes[2][0]) }
        case .mixedProduct:
            return attemptStage(shapes: [first, second, second]) { a in [mixedHVP(at: a[0], a[1], direction: a[2], of: lower)] }
        case .stepTangents:
            // The tangent program, simplified (so a constant matrix's products already read its Gram
            // matrix), then batched over the d columns of Z and the d basis directions of x, before the
            // element-wise fusion: one GEMM-shaped pass per step instead of d tangent replays.
            let d = second.reduce(1, *)
            return StagedDerivative.stepTangent.attempt(problem, shapes: shapes)
                .map { $0.simplified().vmap(batchedInputs: [false, false, true, true], batchSize: d) }
        case .step, .stepJVP, .stepTangent, .stepVJP:
            let like = Tensor(zeros: shapes[2])
            let psi: (Tensor, Tensor) -> Tensor = { s, x in dynamics.step(s, x, lower: lower, like: like) }
            switch self {
            case .step:
                return attemptStage(shapes: [first, second]) { a in [psi(a[0], a[1])] }
            case .stepJVP, .stepTangent:
                return attemptStage(shapes: [first, second, first, second]) { a in
                    let (value, tangent) = jvp(at: a[0], a[1], directions: (a[2], a[3]), of: psi)
                    return self == .stepJVP ? [value, tangent] : [tangent]
                }
            default:
                return attemptStage(shapes: [first, second, first]) { a in
                    let (ds, dx) = vjp(at: a[0], a[1], of: psi).pullback(a[2])
                    return [ds, dx]
                }
            }
        }
    }
}

extension StagedDerivative {
    /// The mini-batch derivatives of a `SampleLoss`: the eager transforms of its batched mean loss
    /// (`SampleLoss.attemptMeanLoss`), staged with the `batch` gathered rows as trailing arguments.
    private func attemptMiniBatch(_ problem: BilevelProblem, x: [Int], y: [Int], batch: Int) -> Result<Program, ConcretizationError> {
        let samples = (self == .upperMiniBatchGradients ? problem.upperSamples : problem.lowerSamples)!
        let rowShapes = samples.rowShapes.map { [batch] + $0 }
        return samples.attemptMeanLoss(x: x, y: y, batch: batch).flatMap { mean in
            switch self {
            case .lowerMiniBatchGradients, .upperMiniBatchGradients:
                return attemptStage(shapes: [x, y] + rowShapes) { a in
                    let rows = Array(a[2...])
                    let (gx, gy) = gradient(at: a[0], a[1]) { x, y in mean(x, y, rows) }
                    return [gx, gy]
                }
            case .lowerMiniBatchHVP:
                return attemptStage(shapes: [x, y, y] + rowShapes) { a in
                    let rows = Array(a[3...])
                    return [hvp(at: a[1], direction: a[2]) { y in mean(a[0], y, rows) }]
                }
            default:
                return attemptStage(shapes: [x, y, y] + rowShapes) { a in
                    let rows = Array(a[3...])
                    return [mixedHVP(at: a[0], a[1], direction: a[2]) { x, y in mean(x, y, rows) }]
                }
            }
        }
    }
}

/// The staged programs of one problem value, keyed by derivative and argument shapes; shared by every
/// copy of the problem and safe to use from several threads (a lock guards the table; a derivative is
/// staged once, by the first thread that asks for it, while the others wait).
final class StagedPrograms: @unchecked Sendable {
    private struct Key: Hashable {
        let derivative: StagedDerivative
        let shapes: [[Int]]
    }

    private struct Entry {
        let result: Result<Program, ConcretizationError>
        let milliseconds: Double
    }

    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]
    private var order: [Key] = []

    /// The optimized program for `derivative` at `shapes`, staged on first use; or why it cannot be staged.
    func program(
        _ derivative: StagedDerivative, shapes: [[Int]], of problem: BilevelProblem
    ) -> Result<Program, ConcretizationError> {
        let key = Key(derivative: derivative, shapes: shapes)
        lock.lock()
        defer { lock.unlock() }
        if let entry = entries[key] { return entry.result }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = derivative.attempt(problem, shapes: shapes).map { $0.optimized() }
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        entries[key] = Entry(result: result, milliseconds: milliseconds)
        order.append(key)
        return result
    }

    /// Every derivative staged so far, in the order it was first asked for.
    var summaries: [StagedProgramSummary] {
        lock.lock()
        defer { lock.unlock() }
        return order.map { key in
            let entry = entries[key]!
            let program = try? entry.result.get()
            var reason: String?
            if case let .failure(error) = entry.result { reason = error.description }
            return StagedProgramSummary(
                derivative: key.derivative.rawValue, shapes: key.shapes, applicationCount: program?.applicationCount,
                stageMilliseconds: entry.milliseconds, fallbackReason: reason)
        }
    }
}

extension BilevelOracle {
    /// The staged program of `derivative` for `shapes` when the problem's derivatives are staged and the
    /// derivative can be staged; `nil` for the eager path (after noting why, once per oracle, when
    /// staging failed).
    func staged(_ derivative: StagedDerivative, _ shapes: [[Int]]) -> Program? {
        guard problem.derivatives == .staged else { return nil }
        switch problem.stagedProgramCache.program(derivative, shapes: shapes, of: problem) {
        case let .success(program):
            return program
        case let .failure(error):
            noteOnce("staged derivatives: the \(derivative.rawValue) could not be staged (\(error)); evaluated eagerly")
            return nil
        }
    }
}

/// The lower Hessian-vector product `v ↦ ∇²ᵧᵧf(x, y) · v` at one fixed point `(x, y)`, as a linear solve
/// replays it: in staged mode the staged HVP program `(x, y, v)` is specialized to `(x, y)`
/// (`Program.specialized(binding:)`) once, at the first product, so every later product runs only the
/// ops that read `v`. Eager mode, a derivative that could not be staged, a traced `(x, y)`, or a
/// specialization that folds too little to repay copying its constants keep the oracle's `lowerHVP`.
final class FixedPointHVP {
    private enum State {
        case unresolved
        case specialized(Program)
        case unspecialized
    }

    private var state = State.unresolved

    /// The products within which a specialization must repay copying its constants.
    static let paybackProducts = 4

    /// The HVP program of `v` alone at `(x, y)`, specialized on the first call; `nil` when the oracle
    /// evaluates this HVP eagerly (or `(x, y)` cannot be bound).
    func program(_ oracle: BilevelOracle, _ x: Tensor, _ y: Tensor) -> Program? {
        switch state {
        case let .specialized(program):
            return program
        case .unspecialized:
            return nil
        case .unresolved:
            guard Program.canBind([x, y]), let program = oracle.staged(.lowerHVP, [x.shape, y.shape]) else {
                state = .unspecialized
                return nil
            }
            let specialized = program.specialized(binding: [0: x, 1: y])
            // A new program copies its constants into its memory once; the staged program's copy is
            // reused by every solve. Worth it when the reads saved per product repay that copy within
            // `paybackProducts` products (P3 at n = 500, d = 50: the weighted Gram rewrite leaves a 50 × 50
            // matrix, about 2nd = 50 000 reads saved against d² = 2 500 constants; P1, whose HVP is `G v + exp(x) ⊙ v` with a d × d G, saves the d reads of exp(x)
            // against d² + d constants: not specialized; `StagedSolverTests`).
            guard Self.paybackProducts * (program.elementsRead - specialized.elementsRead) >= specialized.constantElements else {
                state = .unspecialized
                return nil
            }
            state = .specialized(specialized)
            return specialized
        }
    }
}
