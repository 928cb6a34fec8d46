import Foundation
import XCTest
@testable import AutoDiff

/// Random small op graphs (seeded; random shapes, broadcasting constants and operands; every node feeds
/// the output) checked by
/// `gradcheck` at first order, and at second order through the gradient of a weighted sum of the output
/// (reverse over reverse) and the JVP tangent (forward over the rules).
final class RobustnessPropertyTests: XCTestCase {
    /// A tiny seeded generator (SplitMix64), so every graph is reproducible from its seed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }
        mutating func tensor(_ shape: [Int]) -> Tensor { Tensor(shape: shape) { _ in 2 * uniform() - 1 } }
    }

    /// One node of a graph: how it is computed from earlier nodes (node 0 is the input).
    enum Node {
        case unary(Int, Int)
        case withConstant(Int, Int, Tensor)
        case binary(Int, Int, Int)
        case sumAxis(Int, Int)
        case matmul(Int, Tensor)
        case flatten(Int)
    }

    static let unaryOps: [@Sendable (Tensor) -> Tensor] = [
        { tanh($0) }, { sin($0) }, { exp(0.5 * $0) }, { sigmoid($0) }, { softplus($0) }, { $0 * $0 }, { -$0 },
    ]
    static let binaryOps: [@Sendable (Tensor, Tensor) -> Tensor] = [{ $0 + $1 }, { $0 - $1 }, { $0 * $1 }]

    /// A random graph on an input of a random shape (rank 1–2, extents 1–3), with its input.
    static func graph(seed: UInt64) -> (input: Tensor, nodes: [Node]) {
        var random = Random(state: seed)
        let shape = (0..<(1 + random.below(2))).map { _ in 1 + random.below(3) }
        var shapes = [shape], nodes: [Node] = []
        for _ in 0..<(3 + random.below(4)) {
            let a = random.below(shapes.count), s = shapes[a]
            switch random.below(7) {
            case 0, 6:
                nodes.append(.unary(a, random.below(unaryOps.count)))
                shapes.append(s)
            case 1:
                // A constant that broadcasts: each axis kept or set to 1, leading axes possibly dropped.
                let kept = s.map { random.below(2) == 0 ? 1 : $0 }
                let constantShape = Array(kept.dropFirst(random.below(kept.count + 1)))
                nodes.append(.withConstant(a, random.below(binaryOps.count), random.tensor(constantShape)))
                shapes.append(s)
            case 2:
                let partners = shapes.indices.filter { (try? Shapes.broadcast(s, shapes[$0])) != nil }
                let b = partners[random.below(partners.count)]
                nodes.append(.binary(a, b, random.below(binaryOps.count)))
                shapes.append(try! Shapes.broadcast(s, shapes[b]))
            case 3 where s.count == 2:
                let axis = random.below(2)
                nodes.append(.sumAxis(a, axis))
                shapes.append([s[1 - axis]])
            case 4:
                let columns = 1 + random.below(3)
                nodes.append(.matmul(a, random.tensor([s.last!, columns])))
                shapes.append(Array(s.dropLast()) + [columns])
            default:  // 5, and 3 on a vector
                nodes.append(.flatten(a))
                shapes.append([s.reduce(1, *)])
            }
        }
        return (random.tensor(shape), nodes)
    }

    /// The graph's output as a function of the input: every node flattened and joined, so no node is dead.
    static func evaluate(_ nodes: [Node], _ x: Tensor) -> Tensor {
        var values = [x]
        for node in nodes {
            switch node {
            case let .unary(a, op): values.append(unaryOps[op](values[a]))
            case let .withConstant(a, op, c): values.append(binaryOps[op](values[a], c))
            case let .binary(a, b, op): values.append(binaryOps[op](values[a], values[b]))
            case let .sumAxis(a, axis): values.append(values[a].sum(alongAxis: axis))
            case let .matmul(a, m): values.append(matmul(values[a], m))
            case let .flatten(a): values.append(values[a].reshaped(to: [values[a].count]))
            }
        }
        return concatenate(values.dropFirst().map { $0.reshaped(to: [$0.count]) })
    }

    func testRandomGraphsPassGradcheckAtFirstAndSecondOrder() {
        for seed in UInt64(1)...60 {
            let (x, nodes) = Self.graph(seed: seed)
            let f = { (x: Tensor) in Self.evaluate(nodes, x) }
            let output = f(x)
            var random = Random(state: seed &* 7919)
            let weights = random.tensor(output.shape), direction = random.tensor(x.shape)
            let first = gradcheck(at: x, of: f)
            XCTAssertTrue(first.passes(), "seed \(seed), first order: \(first)")
            let reverseOverReverse = gradcheck(at: x) { x in gradient(at: x) { (f($0) * weights).sum() } }
            XCTAssertTrue(reverseOverReverse.passes(), "seed \(seed), gradient of ⟨w, f⟩: \(reverseOverReverse)")
            let forward = gradcheck(at: x) { x in jvp(at: x, direction: direction, of: f).tangent }
            XCTAssertTrue(forward.passes(), "seed \(seed), JVP tangent: \(forward)")
        }
    }

    func testGraphsCoverBroadcastingAndEveryNodeKind() {
        var kinds = Set<String>()
        for seed in UInt64(1)...40 {
            for node in Self.graph(seed: seed).nodes { kinds.insert(String(describing: node).prefix { $0 != "(" }.description) }
        }
        XCTAssertEqual(kinds, ["unary", "withConstant", "binary", "sumAxis", "matmul", "flatten"])
    }
}
