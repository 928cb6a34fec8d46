/// A level's objective written per sample: data tensors with a leading sample axis N and the loss of
/// ONE sample, so that
///
///     f(x, y) = (1/N) Σₖ ℓ(x, y, sₖ),   f_B(x, y) = (1/|B|) Σ_{k∈B} ℓ(x, y, sₖ),   gₖ = ∇ᵧ ℓ(x, y, sₖ),
///
/// where `sₖ = [data[0][k], data[1][k], …]` holds row k of every data tensor. Written this way, the
/// per-sample gradients gₖ of WoodFisher's empirical Fisher (Singh & Alistarh 2020) and the mini-batch
/// losses of the stochastic methods (Ghadimi & Wang 2018) are one program batched over the sample axis
/// (`Program.vmap`, JAX's per-sample gradients) instead of a Swift loop over index arrays, once the
/// problem's `derivatives` are `.staged`.
///
/// The loss reads the sample only through its rows: a per-sample hyperparameter `xₖ` (data
/// hyper-cleaning's per-sample weights) is read as `⟨eₖ, x⟩` with the one-hot rows `eₖ` as a data
/// tensor (the `[N, N]` identity), which batches into one matrix product.
public struct SampleLoss {
    /// The data tensors, each `[N, …]` (constants: detached when the loss is built).
    public let data: [Tensor]
    /// One sample's loss `ℓ(x, y, s)` from the rows `s` (one per data tensor, the leading axis
    /// removed); must return one element.
    public let loss: (_ x: Tensor, _ y: Tensor, _ sample: [Tensor]) -> Tensor
    /// The number of samples N (the data's common leading extent).
    public let count: Int

    /// A per-sample loss over `data`.
    ///
    /// - Throws: `BilevelError.invalidArgument` naming `SampleLoss.data` when there is no data tensor,
    ///   one is a scalar or has no samples, or two disagree on the sample count N.
    public init(data: [Tensor], loss: @escaping (_ x: Tensor, _ y: Tensor, _ sample: [Tensor]) -> Tensor) throws {
        guard let first = data.first else {
            throw BilevelError.invalidArgument(name: "SampleLoss.data", reason: "is empty; pass at least one tensor whose leading axis indexes the samples")
        }
        for (k, tensor) in data.enumerated() {
            guard tensor.rank >= 1, tensor.shape[0] >= 1 else {
                throw BilevelError.invalidArgument(name: "SampleLoss.data[\(k)]", reason: "has shape \(tensor.shape); every data tensor needs a leading sample axis of extent N ≥ 1")
            }
            guard tensor.shape[0] == first.shape[0] else {
                throw BilevelError.invalidArgument(
                    name: "SampleLoss.data[\(k)]",
                    reason: "has \(tensor.shape[0]) samples (shape \(tensor.shape)) but data[0] has \(first.shape[0]) (shape \(first.shape)); every data tensor needs the same leading sample axis N")
            }
        }
        self.data = data.map(\.detached)
        self.loss = loss
        count = first.shape[0]
    }

    /// The shape of one sample's row of each data tensor (the leading axis removed).
    var rowShapes: [[Int]] { data.map { Array($0.shape.dropFirst()) } }

    /// The rows of the samples `indices`, gathered: one `[K, …]` tensor per data tensor, row k being
    /// sample `indices[k]`.
    ///
    /// - Throws: `BilevelError.invalidArgument` naming `name` for an empty index list or an index
    ///   outside `0..<N`.
    func rows(_ indices: [Int], name: String) throws -> [Tensor] {
        guard !indices.isEmpty else { throw BilevelError.invalidArgument(name: "\(name) indices", reason: "are empty; pass at least one sample index") }
        if let bad = indices.first(where: { !(0..<count).contains($0) }) {
            throw BilevelError.invalidArgument(name: "\(name) indices", reason: "contain \(bad), outside the \(count) samples 0..<\(count)")
        }
        return data.map { tensor in
            let width = tensor.count / count, scalars = tensor.scalars
            var gathered = [Double]()
            gathered.reserveCapacity(indices.count * width)
            for k in indices { gathered.append(contentsOf: scalars[(k * width)..<((k + 1) * width)]) }
            return Tensor(shape: [indices.count] + tensor.shape.dropFirst(), scalars: gathered)
        }
    }

    /// Throws unless the loss of the first gathered sample at `(x, y)` has one element.
    ///
    /// - Throws: `BilevelError.shapeMismatch` naming `name` and the shape the loss returned.
    func requireScalarLoss(_ x: Tensor, _ y: Tensor, rows: [Tensor], name: String) throws {
        let value = loss(x.detached, y.detached, rows.map { $0[0] })
        guard value.count == 1 else { throw BilevelError.shapeMismatch(name: "\(name).loss(x, y, sample), one sample's loss,", expected: [], actual: value.shape) }
    }

    /// `(1/K) Σₖ ℓ(x, y, rows[·][k])` evaluated eagerly, one sample after the other (differentiable).
    func meanLoss(_ x: Tensor, _ y: Tensor, rows: [Tensor]) -> Tensor {
        let batch = rows[0].shape[0]
        let losses = (0..<batch).map { k in loss(x, y, rows.map { $0[k] }).reshaped(to: []) }
        return losses.dropFirst().reduce(losses[0], +) / Double(batch)
    }

    /// `∇ᵧ ℓ(x, y, rows[·][k])` for each gathered sample k, eagerly, stacked as `[K] + y.shape`.
    func sampleGradients(_ x: Tensor, _ y: Tensor, rows: [Tensor]) -> Tensor {
        let batch = rows[0].shape[0]
        let gradients = (0..<batch).flatMap { k in gradient(at: y) { y in loss(x, y, rows.map { $0[k] }) }.scalars }
        return Tensor(shape: [batch] + y.shape, scalars: gradients)
    }

    /// The program `(x, y, rows…) ↦ [∇ᵧ ℓ(x, y, rows[·][k])]ₖ` for `batch` gathered samples: the gradient
    /// of one sample's loss, staged once, batched over the sample rows (`Program.vmap`, x and y shared).
    func attemptSampleGradients(x: [Int], y: [Int], batch: Int) -> Result<Program, ConcretizationError> {
        attemptStage(shapes: [x, y] + rowShapes) { a in [gradient(at: a[1]) { y in loss(a[0], y, Array(a[2...])) }] }
            .map { $0.vmap(batchedInputs: [false, false] + data.map { _ in true }, batchSize: batch) }
    }

    /// `(x, y, rows…) ↦ (1/K) Σₖ ℓ(x, y, rows[·][k])` for `batch` gathered samples, as a function to stage
    /// derivatives of: one sample's loss staged once and batched over the rows (`Program.vmap`), then
    /// averaged. Running it on traced values records the batched ops, so its gradients and HVPs stage
    /// into one program over the `[K, …]` rows.
    func attemptMeanLoss(x: [Int], y: [Int], batch: Int) -> Result<(Tensor, Tensor, [Tensor]) -> Tensor, ConcretizationError> {
        attemptStage(shapes: [x, y] + rowShapes) { a in [loss(a[0], a[1], Array(a[2...])).reshaped(to: [])] }
            .map { single in
                let batched = single.vmap(batchedInputs: [false, false] + data.map { _ in true }, batchSize: batch)
                return { x, y, rows in batched.outputs(at: [x, y] + rows)[0].mean() }
            }
    }
}
