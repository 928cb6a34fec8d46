import Bilevel
import Foundation

/// One few-shot regression task `y = A sin(x − φ)` of Finn et al. (2017): a support set the learner
/// adapts on and a query set it is scored on, both drawn from the same sine curve (A and φ themselves
/// stay hidden from the learner).
struct SineTask {
    /// Support inputs, shape `[K, 1]`.
    let supportInputs: Tensor
    /// Support targets `A sin(x − φ)`, shape `[K, 1]`.
    let supportTargets: Tensor
    /// Query inputs, shape `[Q, 1]`.
    let queryInputs: Tensor
    /// Query targets, shape `[Q, 1]`.
    let queryTargets: Tensor
}

/// A reproducible stream of sine tasks: amplitudes uniform in [0.1, 5], phases uniform in [0, π], inputs
/// uniform in [−5, 5], all drawn from one `SeededGenerator`, so two samplers with the same seed produce
/// the same tasks in the same order.
struct SineTaskSampler {
    /// The generator every draw comes from.
    private var generator: SeededGenerator
    /// Support points per task (K).
    let supportSize: Int
    /// Query points per task.
    let querySize: Int

    /// A sampler whose whole task stream is fixed by `seed`.
    init(seed: UInt64, supportSize: Int, querySize: Int) {
        generator = SeededGenerator(seed: seed)
        self.supportSize = supportSize
        self.querySize = querySize
    }

    /// The next task of the stream.
    mutating func next() -> SineTask {
        let amplitude = 0.1 + 4.9 * generator.nextUniform()
        let phase = Double.pi * generator.nextUniform()
        let (xs, ys) = points(supportSize, amplitude: amplitude, phase: phase)
        let (xq, yq) = points(querySize, amplitude: amplitude, phase: phase)
        return SineTask(supportInputs: xs, supportTargets: ys, queryInputs: xq, queryTargets: yq)
    }

    /// The next `count` tasks of the stream.
    mutating func next(_ count: Int) -> [SineTask] { (0..<count).map { _ in next() } }

    /// `count` inputs uniform in [−5, 5] and their targets on the curve, each shaped `[count, 1]`.
    private mutating func points(_ count: Int, amplitude: Double, phase: Double) -> (Tensor, Tensor) {
        let x = (0..<count).map { _ in -5 + 10 * generator.nextUniform() }
        let y = x.map { amplitude * Foundation.sin($0 - phase) }
        return (Tensor(shape: [count, 1], scalars: x), Tensor(shape: [count, 1], scalars: y))
    }
}

/// One fully connected layer's parameters, `x ↦ x W + b`: a `TensorBundle`, so transforms and bilevel
/// problems take a network (`[DenseLayer]`) as it is, with no hand-made flat layout.
struct DenseLayer: TensorBundle {
    /// The weight matrix `[fanIn, fanOut]`.
    var weight: Tensor
    /// The bias `[fanOut]`.
    var bias: Tensor

    mutating func visitTensors(_ visit: (inout Tensor) -> Void) {
        visit(&weight)
        visit(&bias)
    }
}

/// The parameters of an `MLP`: its layers, input side first.
typealias Parameters = [DenseLayer]

/// A fully connected tanh network. Its parameters are a `[DenseLayer]` bundle θ, which a meta-learner
/// treats as one object: the bilevel `x`, and the start of the adapted parameters `y`. Hidden layers use
/// tanh (smooth, so finite differences of the meta-objective are meaningful); the output layer is linear.
struct MLP {
    /// Widths from input to output, e.g. `[1, 40, 40, 1]`.
    let widths: [Int]

    /// A network with the given layer widths (at least an input and an output width).
    init(widths: [Int]) {
        precondition(widths.count >= 2 && widths.allSatisfy { $0 > 0 }, "MLP: need at least two positive widths, got \(widths)")
        self.widths = widths
    }

    /// The number of scalar parameters.
    var parameterCount: Int { zip(widths, widths.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 + $1.1 } }

    /// Glorot-style initial parameters: weights normal with variance `1 / fanIn`, biases zero.
    func initialParameters(using generator: inout SeededGenerator) -> Parameters {
        zip(widths, widths.dropFirst()).map { fanIn, fanOut in
            let scale = 1 / Double(fanIn).squareRoot()
            return DenseLayer(
                weight: Tensor(shape: [fanIn, fanOut], scalars: (0..<(fanIn * fanOut)).map { _ in scale * generator.nextNormal() }),
                bias: Tensor(zeros: [fanOut]))
        }
    }

    /// The network's outputs `[N, out]` for inputs `[N, in]` under the parameters θ (differentiable in
    /// both, to any order).
    func callAsFunction(_ theta: Parameters, _ inputs: Tensor) -> Tensor {
        var h = inputs
        for (index, layer) in theta.enumerated() {
            h = matmul(h, layer.weight) + layer.bias
            if index < theta.count - 1 { h = tanh(h) }
        }
        return h
    }

    /// The mean squared error of the network under θ on `(inputs, targets)`: a scalar.
    func loss(_ theta: Parameters, _ inputs: Tensor, _ targets: Tensor) -> Tensor {
        let r = self(theta, inputs) - targets
        return (r * r).mean()
    }
}
