/// Errors raised by the engine.
///
/// Policy: ops on tensors (`+`, `matmul`, `reshape`, …) treat a malformed call as a programming error,
/// like indexing an array out of bounds: they stop through `engineFailure` (in every build configuration) with this error's
/// `description`, which names every shape and value involved. Each check is also available as a
/// throwing validator (`Shapes.broadcast`, `Shapes.matmul`, …) so callers that build shapes from user
/// input can test them first. Numerical checks (`gradcheck`) report problems in their result instead.
public enum AutoDiffError: Error, Equatable, CustomStringConvertible {
    /// Two shapes that an op needs to be compatible are not.
    case shapeMismatch(op: String, lhs: [Int], rhs: [Int], reason: String)
    /// An argument is out of its valid range.
    case invalidArgument(op: String, reason: String)
    /// A transform that needs a scalar output (`gradient`, `hvp`) was given a function returning more.
    case nonScalarOutput(transform: String, shape: [Int])
    /// A tensor has no elements where at least one is needed.
    case emptyTensor(op: String)

    /// A sentence naming the op, the shapes and what is wrong.
    public var description: String {
        switch self {
        case let .shapeMismatch(op, lhs, rhs, reason):
            return "\(op): incompatible shapes \(lhs) and \(rhs): \(reason)"
        case let .invalidArgument(op, reason):
            return "\(op): \(reason)"
        case let .nonScalarOutput(transform, shape):
            return "\(transform): the function must return a scalar (one element), but it returned shape \(shape);"
                + " reduce it (e.g. .sum()) or use vjp/jacobian"
        case let .emptyTensor(op):
            return "\(op): the tensor is empty (shape with a zero extent)"
        }
    }
}

/// Stops with the error's description if `check` throws; used by ops whose misuse is a programming
/// error (see `AutoDiffError`).
@inline(__always)
func require<T>(_ check: @autoclosure () throws -> T, file: StaticString = #fileID, line: UInt = #line) -> T {
    do { return try check() } catch { engineFailure("\(error)", file: file, line: line) }
}

/// Stops the program with `message` on standard error, in every build configuration.
///
/// Every engine stop goes through here: `precondition` and `preconditionFailure` drop their message
/// in optimized builds (`-O`), which would leave a user of `swift run -c release` with a bare
/// "precondition failure" and no shapes; `fatalError` keeps it.
func engineFailure(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(message(), file: file, line: line)
}

/// Stops with `message` (see `engineFailure`) unless `condition` holds.
@inline(__always)
func engineCheck(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { engineFailure(message(), file: file, line: line) }
}
