import Foundation
import XCTest
@testable import AutoDiff
import Workloads

/// The workloads are built bit-for-bit from Docs/workloads.md: spot values below were computed
/// independently (Python's math module, 17 significant digits) and must match exactly.
final class WorkloadTests: XCTestCase {
    /// The central difference `(f(x + h eⱼ) − f(x − h eⱼ)) / 2h`.
    func centralDifference(_ x: Tensor, _ j: Int, step h: Double = 1e-5, _ f: (Tensor) -> Double) -> Double {
        var plus = x.scalars, minus = x.scalars
        plus[j] += h
        minus[j] -= h
        return (f(Tensor(shape: x.shape, scalars: plus)) - f(Tensor(shape: x.shape, scalars: minus))) / (2 * h)
    }

    func testRidgeDataMatchesTheFormulas() {
        let p1 = RidgeWorkload(n: 200, d: 20)
        XCTAssertEqual(p1.a.scalars[7 * 20 + 3], -0.8793150489672243)
        XCTAssertEqual(p1.b.scalars[5], -0.15835323403845536)
        XCTAssertEqual(p1.x0.scalars[3], -3.4483792081670734)
        XCTAssertEqual(p1.c.shape, [100, 20])
    }

    func testHyperCleaningAndMLPDataMatchTheFormulas() {
        let p3 = HyperCleaningWorkload(n: 20, m: 10, d: 50)
        XCTAssertEqual(p3.xtr.scalars[11 * 50 + 4], 0.7143042126921089)
        XCTAssertEqual(p3.ytr.scalars.count, 20)
        let p4 = MLPWorkload()
        XCTAssertEqual(p4.theta.count, 2177)
        XCTAssertEqual(p4.x.scalars[9 * 32 + 30], 0.9299709738038778)
        XCTAssertEqual(p4.theta.scalars[2 * 64 + 5], 0.10138137044961062)
    }

    /// The closed-form P1 hypergradient equals central differences of x ↦ F(w*(x)).
    func testRidgeClosedFormMatchesFiniteDifferences() {
        let p1 = RidgeWorkload(n: 200, d: 20)
        let exact = p1.exactHypergradient(p1.x0)
        for j in [0, 7, 19] {
            let fd = centralDifference(p1.x0, j) { x in p1.upper(x, p1.solution(x)).scalar }
            XCTAssertEqual(exact.scalars[j], fd, accuracy: 1e-6 * max(1, abs(fd)) + 1e-9, "x[\(j)]")
        }
    }

    /// The reference unrolled derivative of workloads.md equals central differences of φ_T.
    func testUnrolledReferenceMatchesFiniteDifferences() {
        let p1 = RidgeWorkload(n: 200, d: 20)
        let exact = p1.unrolledHypergradient(p1.x0, steps: 10)
        for j in [1, 12] {
            let fd = centralDifference(p1.x0, j) { x in p1.unrolledValue(x, steps: 10) }
            XCTAssertEqual(exact.scalars[j], fd, accuracy: 1e-6 * max(1, abs(fd)) + 1e-10, "x[\(j)]")
        }
    }

    func testHyperCleaningNewtonReachesTolerance() {
        let p3 = HyperCleaningWorkload(n: 60, m: 30, d: 10)
        let w = p3.solution(p3.x0)
        XCTAssertLessThanOrEqual(gradient(at: w) { p3.lower(p3.x0, $0) }.squaredNorm().scalar.squareRoot(), 1e-13)
        // The exact hypergradient against central differences of x ↦ F(w*(x)) on two coordinates.
        let exact = p3.exactHypergradient(p3.x0, at: w)
        for i in [0, 17] {
            let fd = centralDifference(p3.x0, i) { x in p3.upper(x, p3.solution(x)).scalar }
            XCTAssertEqual(exact.scalars[i], fd, accuracy: 1e-6 * max(1, abs(fd)) + 1e-10, "x[\(i)]")
        }
    }

    func testMLPAndRosenbrockDerivatives() {
        let mlp = MLPWorkload()
        let g = gradient(at: mlp.theta, of: mlp.loss)
        for p in [0, 1000, 2100, 2176] {
            let fd = centralDifference(mlp.theta, p, step: 1e-6) { mlp.loss($0).scalar }
            XCTAssertEqual(g.scalars[p], fd, accuracy: 1e-8, "θ[\(p)]")
        }
        let rosen = RosenbrockWorkload(n: 50)
        let rg = gradient(at: rosen.x, of: rosen.value).scalars
        let hv = hvp(at: rosen.x, direction: rosen.direction, of: rosen.value).scalars
        for (a, b) in zip(rg, rosen.exactGradient(rosen.x)) { XCTAssertEqual(a, b, accuracy: 1e-11 * max(1, abs(b))) }
        for (a, b) in zip(hv, rosen.exactHVP(rosen.x, rosen.direction)) { XCTAssertEqual(a, b, accuracy: 1e-11 * max(1, abs(b))) }
    }
}
