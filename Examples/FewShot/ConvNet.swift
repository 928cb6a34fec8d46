import Bilevel
import Foundation

/// A small convolutional classifier whose filters, biases and dense weights live in one flat parameter
/// vector θ (the bilevel `x`), so meta-learners can add displacements to "the parameters":
///
///     x [N, 1, S, S] → conv 3×3 (pad 1) → tanh → max-pool 2 → conv 3×3 (pad 1) → tanh → max-pool 2
///       → flatten → dense → logits [N, ways].
///
/// Layout of θ: filter 1 `[c₁, 1, 3, 3]`, bias 1 `[c₁]`, filter 2 `[c₂, c₁, 3, 3]`, bias 2 `[c₂]`, dense
/// weights `[c₂·(S/4)², ways]`, dense bias `[ways]`, each row-major. tanh (smooth) keeps finite
/// differences of the meta-objective meaningful.
struct ConvNet {
    /// Image side S.
    let size: Int
    /// Channels of the two convolutions (c₁, c₂).
    let channels: (Int, Int)
    /// Output classes.
    let ways: Int

    /// Features after the second pooling: `c₂ · ⌊⌊S/2⌋/2⌋²`.
    var features: Int { channels.1 * (size / 2 / 2) * (size / 2 / 2) }

    /// The shapes of the parameter blocks in layout order.
    var blockShapes: [[Int]] {
        [[channels.0, 1, 3, 3], [channels.0], [channels.1, channels.0, 3, 3], [channels.1], [features, ways], [ways]]
    }

    /// The length of θ.
    var parameterCount: Int { blockShapes.reduce(0) { $0 + $1.reduce(1, *) } }

    /// Initial θ: every weight block normal with variance `1 / fanIn`, biases zero.
    func initialParameters(using generator: inout SeededGenerator) -> Tensor {
        var scalars: [Double] = []
        for shape in blockShapes {
            let count = shape.reduce(1, *)
            if shape.count == 1 {
                scalars += Array(repeating: 0, count: count)
            } else {
                let fanIn = shape.count == 4 ? shape[1] * 9 : shape[0]
                scalars += (0..<count).map { _ in generator.nextNormal() / Double(fanIn).squareRoot() }
            }
        }
        return Tensor(shape: [parameterCount], scalars: scalars)
    }

    /// The parameter blocks of θ, in layout order (slices: differentiable in θ).
    func blocks(_ theta: Tensor) -> [Tensor] {
        var offset = 0
        return blockShapes.map { shape in
            let count = shape.reduce(1, *)
            defer { offset += count }
            return theta.slice(alongAxis: 0, offset..<(offset + count)).reshaped(to: shape)
        }
    }

    /// The logits `[N, ways]` of `images` under θ (differentiable in θ to any order).
    func callAsFunction(_ theta: Tensor, _ images: Tensor) -> Tensor {
        let p = blocks(theta)
        var h = maxPool2d(tanh(conv2d(images, filter: p[0], bias: p[1], padding: 1)), kernel: 2)
        h = maxPool2d(tanh(conv2d(h, filter: p[2], bias: p[3], padding: 1)), kernel: 2)
        return matmul(h.reshaped(to: [images.shape[0], features]), p[4]) + p[5]
    }

    /// The mean cross-entropy of the network under θ on `(images, labels)`.
    func loss(_ theta: Tensor, _ images: Tensor, _ labels: [Int]) -> Tensor {
        crossEntropy(logits: self(theta, images), classIndices: labels)
    }

    /// The fraction of `images` whose largest logit is the label.
    func accuracy(_ theta: Tensor, _ images: Tensor, _ labels: [Int]) -> Double {
        let predicted = self(theta.detached, images).argmax(alongAxis: 1).scalars
        return Double(zip(predicted, labels).filter { Int($0) == $1 }.count) / Double(labels.count)
    }
}
