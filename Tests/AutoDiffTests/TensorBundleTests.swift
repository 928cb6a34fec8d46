import XCTest
import AutoDiff

/// The transforms over bundles agree with the same transforms over the flattened vector (which gradcheck
/// validates against central differences), and keep the bundle's structure. The network is a nested
/// array `[[weight, bias], …]` (arrays of bundles are bundles; structs are exercised in PublicAPITests).
final class TensorBundleTests: XCTestCase {
    let network = [
        [Tensor(shape: [2, 3], scalars: [0.3, -0.2, 0.5, 0.1, 0.4, -0.6]), Tensor([0.1, 0, -0.1])],
        [Tensor(shape: [3, 1], scalars: [0.7, -0.5, 0.2]), Tensor([0.05])],
    ]
    let inputs = Tensor(shape: [4, 2], scalars: [1, 0, 0, 1, -1, 0.5, 0.3, -0.7])

    /// `x W + b` for a layer `[W, b]`.
    func dense(_ layer: [Tensor], _ x: Tensor) -> Tensor { matmul(x, layer[0]) + layer[1] }

    func loss(_ layers: [[Tensor]]) -> Tensor {
        let output = dense(layers[1], tanh(dense(layers[0], inputs)))
        return (output * output).sum()
    }

    func testFlattenRoundTripKeepsStructure() {
        XCTAssertEqual(network.tensors.count, 4)
        XCTAssertEqual(network.scalarCount, 6 + 3 + 3 + 1)
        let back = network.unflattening(network.flattened)
        XCTAssertEqual(back.map { $0[0].shape }, [[2, 3], [3, 1]])
        XCTAssertEqual(back.flattened.scalars, network.flattened.scalars)
        XCTAssertEqual(Tensor([1, 2]).flattened.scalars, [1, 2])
    }

    func testTransformsOverABundleMatchTheFlatVector() {
        let flatLoss: (Tensor) -> Tensor = { self.loss(self.network.unflattening($0)) }
        let flat = network.flattened
        let check = gradcheck(at: flat, of: flatLoss)
        XCTAssertTrue(check.passes(), "\(check)")
        let secondOrder = gradcheck(at: flat) { gradient(at: $0, of: flatLoss) }
        XCTAssertTrue(secondOrder.passes(), "\(secondOrder)")

        let g: [[Tensor]] = gradient(at: network, of: loss)
        XCTAssertEqual(g[0][0].shape, [2, 3])
        XCTAssertTrue(g.flattened.isApproximatelyEqual(to: gradient(at: flat, of: flatLoss), tolerance: 1e-14))

        let direction = network.mapTensors { $0 * 0.5 + 0.1 }
        let h = hvp(at: network, direction: direction, of: loss)
        XCTAssertTrue(h.flattened.isApproximatelyEqual(to: hvp(at: flat, direction: direction.flattened, of: flatLoss), tolerance: 1e-13))
        let hForward = hvp(at: network, direction: direction, mode: .forwardOverReverse, of: loss)
        XCTAssertTrue(hForward.flattened.isApproximatelyEqual(to: h.flattened, tolerance: 1e-13))

        let t = jvp(at: network, direction: direction, of: loss).tangent
        XCTAssertEqual(t.scalar, dot(g.flattened, direction.flattened).scalar, accuracy: 1e-13)
        let pulled = vjp(at: network, of: loss).pullback(Tensor(2))
        XCTAssertTrue(pulled.flattened.isApproximatelyEqual(to: 2 * g.flattened, tolerance: 1e-14))

        let (gNetwork, gInputs) = gradient(at: network, inputs) { layers, x in self.dense(layers[1], tanh(self.dense(layers[0], x))).sum() }
        XCTAssertEqual(gInputs.shape, [4, 2])
        XCTAssertEqual(gNetwork.count, 2)
    }
}
