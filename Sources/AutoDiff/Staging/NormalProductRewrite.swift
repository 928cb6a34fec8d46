// The normal-equation rewrite: `Aᵀ(α (A v − b))` → `α · normalProduct(A, v, minus: b)`, one pass over A.

extension Program {
    /// Replaces `matmul(Aᵀ, X)` (either operand order, transpose flags as folded by
    /// `simplifyingIdentities()`) by one `NormalProduct` application when `X` is a scaled copy
    /// `α (A v − b)` or `α A v` of a product with the same value `A`, in any vector layout (`[n]`,
    /// `[n, 1]`, `[1, n]`), and every intermediate of `X` has no use outside it.
    ///
    /// "Scaled copy" is what reverse mode makes of `½‖A v − b‖²`: reshapes, products with scalars (also
    /// written as `matmul` with a `[1, 1]` operand), negations and sums of such copies of one residual;
    /// `α` is rebuilt from those scalars. The result is `α · Aᵀ(A v − b)` instead of `Aᵀ(α (A v − b))`,
    /// equal up to rounding; `A` is then read once instead of twice (see `normalProduct(_:_:minus:)`).
    public func fusingNormalProducts() -> Program {
        let program = eliminatingDeadCode(), matrices = program.matrixIdentities()
        let matches = program.containedMatches { root in
            NormalProductMatch(root: root, in: program.instructions, matrices: matrices).map { ($0, $0.interior) }
        }
        guard !matches.isEmpty else { return program }
        var renumbered = [Int](repeating: -1, count: instructions.count)
        return program.rewritten { i, instruction, arguments, builder in
            let index = matches[i].map { $0.emit(shape: instruction.shape, renumbered: renumbered, into: &builder) }
                ?? builder.add(instruction, arguments)
            renumbered[i] = index
            return index
        }
    }

    /// The roots `i` at which `match(i)` finds a pattern whose interior values (computed only on the way
    /// to `i`) no output and no value outside the pattern reads: rewriting such a root leaves its interior
    /// dead, so the rewrite saves every read of it.
    func containedMatches<Match>(_ match: (Int) -> (Match, interior: Set<Int>)?) -> [Int: Match] {
        var users = [[Int]](repeating: [], count: instructions.count)
        for (i, instruction) in instructions.enumerated() {
            if case let .apply(_, arguments) = instruction.operation { for a in Set(arguments) { users[a].append(i) } }
        }
        let outputs = Set(outputs)
        var matches = [Int: Match]()
        for i in instructions.indices {
            guard let (found, interior) = match(i) else { continue }
            let contained = interior.allSatisfy { node in
                !outputs.contains(node) && users[node].allSatisfy { $0 == i || interior.contains($0) }
            }
            if contained { matches[i] = found }
        }
        return matches
    }

    /// For each value, the first value equal to it when it is a constant matrix equal to an earlier
    /// one (staging captures a matrix once per use, and common-subexpression elimination keeps large
    /// constants apart), else the value itself.
    func matrixIdentities() -> [Int] {
        var identities = Array(instructions.indices), matrices = [(index: Int, tensor: Tensor)]()
        for (i, instruction) in instructions.enumerated() {
            guard case let .constant(tensor) = instruction.operation, tensor.rank == 2 else { continue }
            if let first = matrices.first(where: { $0.tensor.shape == tensor.shape && $0.tensor.scalars == tensor.scalars }) {
                identities[i] = first.index
            } else {
                matrices.append((i, tensor))
            }
        }
        return identities
    }
}

/// One occurrence of `Aᵀ(α (A v − b))` in an instruction list (indices into it).
struct NormalProductMatch {
    /// One term of `α`: the product of the scalar values `factors` (shape `[]` or `[1, 1]`), negated or not.
    struct Term {
        var factors: [Int]
        var negative: Bool
    }

    let a: Int, v: Int, b: Int?
    /// `α` as a sum of terms.
    let scale: [Term]
    /// The values computed only on the way to the root: `A v`, `A v − b`, their reshapes and scaled copies.
    let interior: Set<Int>

    /// The match rooted at `root`, or `nil` when `root` is not `matmul(Aᵀ, α (A v − b))`.
    /// `matrices[i]` names value i's matrix (`Program.matrixIdentities()`): A on both sides of the
    /// root agrees by that name.
    init?(root: Int, in instructions: [Program.Instruction], matrices: [Int]) {
        guard case let .apply(op, arguments) = instructions[root].operation, let product = op as? Matmul else { return nil }
        let shapes = arguments.map { instructions[$0].shape }
        // `Aᵀ x` with A first (transposed) or `xᵀ A` with A second (not transposed); x a vector either way.
        var candidates = [(matrix: Int, vector: Int)]()
        if product.transposeA { candidates.append((arguments[0], arguments[1])) }
        if !product.transposeB { candidates.append((arguments[1], arguments[0])) }
        for (matrix, vector) in candidates where shapes.count == 2 && instructions[matrix].shape.count == 2 {
            var interior = Set<Int>()
            guard let scaled = Self.scaledResidual(vector, instructions, matrices, &interior), matrices[scaled.a] == matrices[matrix],
                  instructions[vector].shape.reduce(1, *) == instructions[matrix].shape[0] else { continue }
            a = matrix
            v = scaled.v
            b = scaled.b
            scale = scaled.terms
            self.interior = interior
            return
        }
        return nil
    }

    /// Whether `shape` holds its elements along one axis (every other extent is 1), so reshaping it to
    /// `[count]` and transposing it keep the element order.
    static func isVectorLike(_ shape: [Int]) -> Bool { shape.filter { $0 != 1 }.count <= 1 && !shape.isEmpty }

    private static func count(_ index: Int, _ instructions: [Program.Instruction]) -> Int {
        instructions[index].shape.reduce(1, *)
    }

    /// `index` as `α (A v − b)`: the residual's parts and the terms of α; adds the values passed to `interior`.
    private static func scaledResidual(
        _ index: Int, _ instructions: [Program.Instruction], _ matrices: [Int], _ interior: inout Set<Int>
    ) -> (a: Int, v: Int, b: Int?, terms: [Term])? {
        guard case let .apply(op, arguments) = instructions[index].operation, isVectorLike(instructions[index].shape),
              count(index, instructions) >= 2 else { return nil }
        interior.insert(index)
        if let residual = residual(index, instructions, &interior) {
            return (residual.a, residual.v, residual.b, [Term(factors: [], negative: false)])
        }
        let elements = count(index, instructions)
        func scalarAndVector() -> (scalar: Int, vector: Int)? {
            guard arguments.count == 2 else { return nil }
            for (s, x) in [(arguments[0], arguments[1]), (arguments[1], arguments[0])]
            where count(s, instructions) == 1 && count(x, instructions) == elements && isVectorLike(instructions[x].shape) {
                return (s, x)
            }
            return nil
        }
        switch op {
        case is Reshape:
            return scaledResidual(arguments[0], instructions, matrices, &interior)
        case is Negate:
            guard let inner = scaledResidual(arguments[0], instructions, matrices, &interior) else { return nil }
            return (inner.a, inner.v, inner.b, inner.terms.map { Term(factors: $0.factors, negative: !$0.negative) })
        case is Multiply, is Matmul:
            guard let (s, x) = scalarAndVector(), let inner = scaledResidual(x, instructions, matrices, &interior) else { return nil }
            return (inner.a, inner.v, inner.b, inner.terms.map { Term(factors: $0.factors + [s], negative: $0.negative) })
        case is Add:
            guard arguments.allSatisfy({ count($0, instructions) == elements }),
                  let left = scaledResidual(arguments[0], instructions, matrices, &interior),
                  let right = scaledResidual(arguments[1], instructions, matrices, &interior),
                  matrices[left.a] == matrices[right.a], (left.v, left.b) == (right.v, right.b) else { return nil }
            return (left.a, left.v, left.b, left.terms + right.terms)
        default:
            return nil
        }
    }

    /// `index` as `A v − b` or `A v` (a matrix–vector `matmul` without transposes, with reshapes).
    private static func residual(
        _ index: Int, _ instructions: [Program.Instruction], _ interior: inout Set<Int>
    ) -> (a: Int, v: Int, b: Int?)? {
        var inner = Set<Int>()
        if case let .apply(op, arguments) = instructions[index].operation, op is Subtract,
           arguments.allSatisfy({ count($0, instructions) == count(index, instructions) && isVectorLike(instructions[$0].shape) }),
           let product = product(arguments[0], instructions, &inner) {
            interior.formUnion(inner)
            return (product.a, product.v, arguments[1])
        }
        inner = []
        guard let product = product(index, instructions, &inner) else { return nil }
        interior.formUnion(inner)
        return (product.a, product.v, nil)
    }

    /// `index` as `A v` (reshapes around a `matmul(A, v)` with `A` `[n, d]` and `v` `[d, 1]`).
    static func product(
        _ index: Int, _ instructions: [Program.Instruction], _ interior: inout Set<Int>
    ) -> (a: Int, v: Int)? {
        guard case let .apply(op, arguments) = instructions[index].operation, isVectorLike(instructions[index].shape) else { return nil }
        interior.insert(index)
        if op is Reshape { return product(arguments[0], instructions, &interior) }
        guard let matmul = op as? Matmul, !matmul.transposeA, !matmul.transposeB else { return nil }
        let a = instructions[arguments[0]].shape, v = instructions[arguments[1]].shape
        guard a.count == 2, v == [a[1], 1], a[1] >= 2 else { return nil }
        return (arguments[0], arguments[1])
    }

    /// Appends `α · normalProduct(A, v, minus: b)` reshaped to `shape`; returns its index.
    func emit(shape: [Int], renumbered: [Int], into builder: inout ProgramBuilder) -> Int {
        func vector(_ index: Int) -> Int {
            let value = renumbered[index], count = builder.instructions[value].shape.reduce(1, *)
            if builder.instructions[value].shape == [count] { return value }
            return builder.add(.apply(Reshape(shape: [count]), arguments: [value]), shape: [count])
        }
        let columns = builder.instructions[renumbered[a]].shape[1]
        let operands = [renumbered[a], vector(v)] + (b.map { [vector($0)] } ?? [])
        var result = builder.add(.apply(NormalProduct(subtractsTarget: b != nil), arguments: operands), shape: [columns])
        var alpha: Int?
        for term in scale {
            var factor = term.factors.isEmpty ? builder.add(.constant(Tensor(1.0)), shape: []) : -1
            for (k, f) in term.factors.enumerated() {
                let scalar = builder.instructions[renumbered[f]].shape == [] ? renumbered[f]
                    : builder.add(.apply(Reshape(shape: []), arguments: [renumbered[f]]), shape: [])
                factor = k == 0 ? scalar : builder.add(.apply(Multiply(), arguments: [factor, scalar]), shape: [])
            }
            if term.negative { factor = builder.add(.apply(Negate(), arguments: [factor]), shape: []) }
            alpha = alpha.map { builder.add(.apply(Add(), arguments: [$0, factor]), shape: []) } ?? factor
        }
        if let alpha { result = builder.add(.apply(Multiply(), arguments: [result, alpha]), shape: [columns]) }
        if shape == [columns] { return result }
        return builder.add(.apply(Reshape(shape: shape), arguments: [result]), shape: shape)
    }
}
