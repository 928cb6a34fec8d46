/// A bundle of tensors: a model's parameters as the user writes them — a struct of named `Tensor`
/// fields, arrays of such structs, nested structs — seen by the engine as the ordered list of its
/// tensors (its *leaves*).
///
/// Conforming takes one method that hands every stored tensor to `visit`, in a fixed order:
///
/// ```swift
/// struct Dense: TensorBundle {
///     var weight: Tensor
///     var bias: Tensor
///     mutating func visitTensors(_ visit: (inout Tensor) -> Void) {
///         visit(&weight)
///         visit(&bias)
///     }
/// }
/// ```
///
/// `Tensor` is the one-leaf bundle, and an `Array` of bundles is a bundle (its elements' leaves in
/// order), so `[Dense]` is a network. Every transform (`gradient`, `valueWithGradient`, `vjp`, `jvp`,
/// `hvp`) takes a bundle and returns its gradient as a bundle of the same type, tracking the leaves
/// themselves (nothing is copied). The `Bilevel` layer's structured problems use `flattened` and
/// `unflattening(_:)` to pack a bundle into the flat vector its methods work on.
public protocol TensorBundle {
    /// Calls `visit` once on every tensor of the bundle, always in the same order; `visit` may replace
    /// the tensor (keeping its shape).
    mutating func visitTensors(_ visit: (inout Tensor) -> Void)
}

extension Tensor: TensorBundle {
    /// A tensor is the bundle of one leaf: itself.
    public mutating func visitTensors(_ visit: (inout Tensor) -> Void) { visit(&self) }
}

extension Array: TensorBundle where Element: TensorBundle {
    /// The leaves of every element, element by element.
    public mutating func visitTensors(_ visit: (inout Tensor) -> Void) {
        for i in indices { self[i].visitTensors(visit) }
    }
}

extension TensorBundle {
    /// The leaves in visiting order (shared storage: no element is copied).
    public var tensors: [Tensor] {
        var copy = self, leaves: [Tensor] = []
        copy.visitTensors { leaves.append($0) }
        return leaves
    }

    /// A bundle of the same structure whose leaves are `leaves`, in visiting order.
    ///
    /// - Precondition: one tensor per leaf, each of its leaf's shape; the message names the leaf.
    public func replacingTensors(with leaves: [Tensor]) -> Self {
        var copy = self, index = 0
        copy.visitTensors { leaf in
            engineCheck(
                index < leaves.count,
                "\(AutoDiffError.invalidArgument(op: "TensorBundle.replacingTensors", reason: "the bundle has more leaves than the \(leaves.count) tensors given"))")
            engineCheck(
                leaves[index].shape == leaf.shape,
                "\(AutoDiffError.shapeMismatch(op: "TensorBundle.replacingTensors", lhs: leaf.shape, rhs: leaves[index].shape, reason: "leaf \(index) must keep its shape"))")
            leaf = leaves[index]
            index += 1
        }
        engineCheck(
            index == leaves.count,
            "\(AutoDiffError.invalidArgument(op: "TensorBundle.replacingTensors", reason: "the bundle has \(index) leaves but \(leaves.count) tensors were given"))")
        return copy
    }

    /// The bundle with `transform` applied to every leaf (e.g. `{ $0 * 0.5 }`, `{ Tensor(zeros: $0.shape) }`).
    public func mapTensors(_ transform: (Tensor) -> Tensor) -> Self {
        replacingTensors(with: tensors.map(transform))
    }

    /// The bundle whose leaf i is `combine(self leaf i, other leaf i)` (e.g. `θ.zipTensors(g, -)`).
    ///
    /// - Precondition: `other` has this bundle's structure (same leaf count and shapes).
    public func zipTensors(_ other: Self, _ combine: (Tensor, Tensor) -> Tensor) -> Self {
        let mine = tensors, theirs = other.tensors
        engineCheck(
            mine.count == theirs.count,
            "\(AutoDiffError.invalidArgument(op: "TensorBundle.zipTensors", reason: "\(mine.count) and \(theirs.count) leaves"))")
        return replacingTensors(with: zip(mine, theirs).map(combine))
    }

    /// The number of scalars over all leaves.
    public var scalarCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// All leaves as one vector `[vec leaf₀, vec leaf₁, …]`, differentiable (a concatenation of
    /// reshapes); a one-leaf bundle is only reshaped (no copy of its elements).
    public var flattened: Tensor {
        let leaves = tensors
        if leaves.count == 1 { return leaves[0].reshaped(to: [leaves[0].count]) }
        return concatenate(leaves.map { $0.reshaped(to: [$0.count]) })
    }

    /// The inverse of `flattened`: a bundle of this structure whose leaves are read, in order, from the
    /// vector `flat` (differentiable slices and reshapes; a one-leaf bundle is only reshaped).
    ///
    /// - Precondition: `flat` is a vector of `scalarCount` elements.
    public func unflattening(_ flat: Tensor) -> Self {
        let leaves = tensors
        let count = leaves.reduce(0) { $0 + $1.count }
        engineCheck(
            flat.shape == [count],
            "\(AutoDiffError.shapeMismatch(op: "TensorBundle.unflattening", lhs: flat.shape, rhs: [count], reason: "the flat vector must hold every scalar of the bundle"))")
        if leaves.count == 1 { return replacingTensors(with: [flat.reshaped(to: leaves[0].shape)]) }
        var offset = 0
        return replacingTensors(with: leaves.map { leaf in
            defer { offset += leaf.count }
            return flat.slice(alongAxis: 0, offset..<(offset + leaf.count)).reshaped(to: leaf.shape)
        })
    }
}
