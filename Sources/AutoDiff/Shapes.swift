/// Shape arithmetic and the throwing validators behind every op's preconditions.
public enum Shapes {
    /// The NumPy-style broadcast of two shapes: axes aligned on the right, each pair equal or one of
    /// them 1 (or missing).
    ///
    /// - Throws: `AutoDiffError.shapeMismatch` naming both shapes and the first clashing axis.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String = "broadcast") throws -> [Int] {
        if a == b { return a }
        let rank = Swift.max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for k in 0..<rank {
            let da = k < rank - a.count ? 1 : a[k - (rank - a.count)]
            let db = k < rank - b.count ? 1 : b[k - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else {
                throw AutoDiffError.shapeMismatch(
                    op: op, lhs: a, rhs: b,
                    reason: "axis \(k) of the broadcast shape has extents \(da) and \(db); they must match or one must be 1")
            }
            result[k] = da == 1 ? db : da
        }
        return result
    }

    /// Strides with which `shape`, broadcast to `target`, is read: 0 along repeated axes.
    static func broadcastStrides(of shape: [Int], to target: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: target.count)
        var step = 1
        for k in stride(from: shape.count - 1, through: 0, by: -1) {
            let axis = k + target.count - shape.count
            strides[axis] = shape[k] == 1 && target[axis] != 1 ? 0 : step
            step *= shape[k]
        }
        return strides
    }

    /// The output shape of `matmul(a, b)` for rank-1 or rank-2 operands.
    ///
    /// - Throws: `AutoDiffError.shapeMismatch` when a rank is not 1 or 2 or the inner extents differ.
    public static func matmul(_ a: [Int], _ b: [Int]) throws -> [Int] {
        guard (1...2).contains(a.count), (1...2).contains(b.count), !(a.count == 1 && b.count == 1) else {
            throw AutoDiffError.shapeMismatch(
                op: "matmul", lhs: a, rhs: b,
                reason: "operands must be matrix·matrix, matrix·vector or vector·matrix (use dot for vector·vector)")
        }
        let inner = a.count == 1 ? a[0] : a[1]
        guard inner == b[0] else {
            throw AutoDiffError.shapeMismatch(
                op: "matmul", lhs: a, rhs: b, reason: "inner extents \(inner) and \(b[0]) differ")
        }
        return (a.count == 2 ? [a[0]] : []) + (b.count == 2 ? [b[1]] : [])
    }

    /// Checks that `axis` indexes an axis of `shape` and returns it with negative values counted from
    /// the end.
    ///
    /// - Throws: `AutoDiffError.invalidArgument` naming the axis and the shape.
    public static func normalize(axis: Int, of shape: [Int], op: String) throws -> Int {
        let a = axis < 0 ? axis + shape.count : axis
        guard a >= 0 && a < shape.count else {
            throw AutoDiffError.invalidArgument(op: op, reason: "axis \(axis) is out of range for shape \(shape)")
        }
        return a
    }

    /// Checks that `shape` holds exactly `count` elements (for `reshape`).
    ///
    /// - Throws: `AutoDiffError.shapeMismatch` naming both shapes.
    public static func reshape(_ from: [Int], to shape: [Int]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == from.reduce(1, *) else {
            throw AutoDiffError.shapeMismatch(
                op: "reshape", lhs: from, rhs: shape,
                reason: "\(from.reduce(1, *)) elements cannot be arranged as \(shape.reduce(1, *))")
        }
    }

    /// The number of elements of `shape`, after checking that every extent is non-negative and the
    /// product fits in an `Int` (so a tensor can be allocated for it).
    ///
    /// - Throws: `AutoDiffError.invalidArgument` naming `op`, the shape and the offending extent.
    public static func elementCount(of shape: [Int], op: String) throws -> Int {
        var count = 1
        for (axis, extent) in shape.enumerated() {
            guard extent >= 0 else {
                throw AutoDiffError.invalidArgument(op: op, reason: "shape \(shape) has the negative extent \(extent) on axis \(axis); extents must be ≥ 0")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else {
                throw AutoDiffError.invalidArgument(op: op, reason: "shape \(shape) has more elements than an Int can count")
            }
            count = product
        }
        return count
    }
}
