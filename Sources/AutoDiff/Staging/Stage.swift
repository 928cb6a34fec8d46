import Synchronization

/// Runs `f` once on symbolic tensors of `shapes` and returns the program of every primitive it
/// applied (JAX's `jit` tracing, without compilation).
///
/// A symbolic tensor has a shape and no elements. Everything `f` does with shapes (shape checks,
/// `count`, branches on shapes) runs as usual; every op on a symbolic tensor is recorded with the
/// output shape from its shape rule. Tensors that `f` captures, or creates from literals, become
/// constants of the program. Transforms inside `f` (`gradient`, `jvp`, `hvp`, …) run their rules on
/// symbolic values, so their derivatives are recorded too (the staged gradient *is* the eager backward
/// pass, recorded).
///
/// What cannot be staged: anything that reads elements of a symbolic tensor — `.scalar`, `.scalars`,
/// printing values, Swift `if` on data, ops whose public function inspects values before applying
/// (`choleskySolve` decides positive definiteness on the values; stage `CholeskyFactorization` or
/// `cholesky` + `triangularSolve` instead, which stop on a non-positive pivot only when run). Those stop with a message naming what
/// was read; restructure with tensor ops (`maximum`, `relu`, masks) or pass the decided value in as an
/// argument. A tensor being differentiated by a transform *around* `stage` cannot be captured either
/// (pass it as an argument).
///
/// - Parameters:
///   - shapes: the shape of each argument; a program only accepts arguments of these shapes (calling
///     it with other shapes stops with a message; stage again for new shapes).
///   - f: the function, returning one or more tensors.
public func stage(shapes: [[Int]], outputs f: ([Tensor]) -> [Tensor]) -> Program {
    stageProgram(shapes: shapes, in: Level(.staging), f)
}

/// `stage(shapes:outputs:)` that does not stop when `f` needs a concrete value: the first read of a
/// symbolic tensor's elements (`.scalar`, `.scalars`, printing, a Swift `if` on data) is recorded, the
/// read gets placeholder zeros so that `f` can run to its end, and the attempt returns the failure
/// instead of the (meaningless) program. Use it to stage when possible and fall back to eager
/// evaluation otherwise, as `Bilevel`'s staged derivatives do.
///
/// Best effort: code that checks the placeholder values and stops on them itself (an op that
/// validates its input's values) still stops.
///
/// - Returns: the program, or the `ConcretizationError` naming the first element read and its shape.
public func attemptStage(shapes: [[Int]], outputs f: ([Tensor]) -> [Tensor]) -> Result<Program, ConcretizationError> {
    let level = Level(.staging)
    let key = ObjectIdentifier(level)
    stagingAttempts.withLock { $0[key] = [] }
    let program = stageProgram(shapes: shapes, in: level, f)
    let failures = stagingAttempts.withLock { $0.removeValue(forKey: key) } ?? []
    if let first = failures.first { return .failure(first) }
    return .success(program)
}

/// Why a function could not be staged: it read the elements of a symbolic tensor.
public struct ConcretizationError: Error, CustomStringConvertible, Sendable {
    /// What was read (`"scalars"` for `.scalar`/`.scalars` and everything built on them).
    public let operation: String
    /// The shape of the symbolic tensor that was read.
    public let shape: [Int]

    /// `Tensor.<operation> read the elements of a symbolic tensor of shape …`.
    public var description: String {
        "Tensor.\(operation) read the elements of a symbolic tensor of shape \(shape) (a value-dependent step: staging runs on shapes without values)"
    }
}

/// The staging levels opened by `attemptStage`, with the concretizations recorded so far.
private let stagingAttempts = Mutex<[ObjectIdentifier: [ConcretizationError]]>([:])

/// Runs `f` on symbolic inputs of `shapes` recorded on `level` and returns the program.
private func stageProgram(shapes: [[Int]], in level: Level, _ f: ([Tensor]) -> [Tensor]) -> Program {
    let symbols = shapes.enumerated().map { k, shape in level.symbol(.input(k), shape: shape) }
    let results = f(symbols)
    let outputs = results.map { level.valueIndex(of: $0) }
    level.isActive = false
    return Program(instructions: level.instructions, outputs: outputs, inputShapes: shapes)
}

/// `stage(shapes:outputs:)` for a function of one output.
public func stage(shapes: [[Int]], _ f: ([Tensor]) -> Tensor) -> Program {
    stage(shapes: shapes, outputs: { [f($0)] })
}

/// `stage(shapes:outputs:)` for a function of one argument and one output.
public func stage(shape: [Int], _ f: (Tensor) -> Tensor) -> Program {
    stage(shapes: [shape], outputs: { [f($0[0])] })
}

extension Level {
    /// A new symbolic value produced by `operation`.
    func symbol(_ operation: Program.Operation, shape: [Int]) -> Tensor {
        instructions.append(Program.Instruction(operation: operation, shape: shape))
        lowerTraces.append(nil)
        return Tensor(shape: shape, scalars: [], trace: Trace(level: self, index: instructions.count - 1))
    }

    /// The index of `value` in the program being staged: its instruction if it is symbolic here, a new
    /// constant if it is a constant.
    ///
    /// - Precondition: `value` is not being differentiated by a transform opened around the staging.
    func valueIndex(of value: Tensor) -> Int {
        if let trace = value.activeTrace {
            engineCheck(
                trace.level === self,
                "stage: the staged function uses a tensor (shape \(value.shape)) that a transform around `stage` is differentiating; pass it to the staged function as an argument instead of capturing it")
            return trace.index
        }
        return symbol(.constant(value), shape: value.shape).trace!.index
    }

    /// Records `op` applied to `arguments` (symbolic at this level, or constants) and returns its
    /// symbolic output of `shape`.
    func stage(_ op: some Primitive, arguments: [Tensor], shape: [Int]) -> Tensor {
        let indices = arguments.map { valueIndex(of: $0) }
        return symbol(.apply(op, arguments: indices), shape: shape)
    }
}

extension Tensor {
    /// The trace of this value at an active staging level below its other levels, if any: what is left
    /// of a symbolic value once its derivative levels are removed.
    var stagingTrace: Trace? {
        var current = trace
        while let t = current {
            if t.level.kind == .staging { return t.level.isActive ? t : nil }
            current = t.level.lowerTraces[t.index]
        }
        return nil
    }
}

/// Stops with the concretization message when `tensor` is symbolic (it has no elements to read),
/// unless it belongs to an `attemptStage`: then the read is recorded and placeholder zeros are returned.
///
/// - Returns: `nil` for a concrete tensor, placeholder elements for a symbolic one inside an attempt.
@discardableResult
func requireConcrete(_ tensor: Tensor, reading what: String) -> [Double]? {
    guard let trace = tensor.stagingTrace, tensor.storage.isEmpty else { return nil }
    let count = tensor.shape.reduce(1, *)
    guard count > 0 else { return nil }
    let key = ObjectIdentifier(trace.level)
    let attempted = stagingAttempts.withLock { attempts in
        guard attempts[key] != nil else { return false }
        attempts[key]!.append(ConcretizationError(operation: what, shape: tensor.shape))
        return true
    }
    if attempted { return [Double](repeating: 0, count: count) }
    engineFailure(
        "Tensor.\(what): the tensor of shape \(tensor.shape) is symbolic: it belongs to a function being staged, which runs once on shapes without values, so its elements cannot be read (nor printed, nor branched on). Restructure: express data-dependent choices with tensor ops (maximum, relu, sign, masks), or decide outside the staged function and pass the result in as an argument.")
}

extension Tensor {
    /// Whether the tensor is symbolic: a value of a function being staged, with a shape and no
    /// elements (`stage(shapes:_:)`). Reading its elements stops; a staged function may use this to
    /// skip work that needs values (diagnostics, printing).
    public var isSymbolic: Bool { storage.isEmpty && stagingTrace != nil }
}
