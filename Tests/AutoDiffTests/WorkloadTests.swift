import Foundation
import XCTest
@testable import AutoDiff
import Workloads

/// The workloads are built bit-for-bit from shared/workloads.md: spot values below were computed
/// independently (Python's math module, 17 significant digits) and must match exactly.
final class WorkloadTests: XCTestCase {
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
            var plus = p1.x0, minus = p1.x0
            plus.scalars[j] += 1e-5
            minus.scalars[j] -= 1e-5
            let fd = (p1.upper(plus, p1.solution(plus)).scalar - p1.upper(minus, p1.solution(minus)).scalar) / 2e-5
            XCTAssertEqual(exact.scalars[j], fd, accuracy: 1e-6 * max(1, abs(fd)) + 1e-9, "x[\(j)]")
        }
    }

    /// The reference unrolled derivative of workloads.md equals central differences of φ_T.
    func testUnrolledReferenceMatchesFiniteDifferences() {
        let p1 = RidgeWorkload(n: 200, d: 20)
        let exact = p1.unrolledHypergradient(p1.x0, steps: 10)
        for j in [1, 12] {
            var plus = p1.x0, minus = p1.x0
            plus.scalars[j] += 1e-5
            minus.scalars[j] -= 1e-5
            let fd = (p1.unrolledValue(plus, steps: 10) - p1.unrolledValue(minus, steps: 10)) / 2e-5
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
            var plus = p3.x0, minus = p3.x0
            plus.scalars[i] += 1e-5
            minus.scalars[i] -= 1e-5
            let fd = (p3.upper(plus, p3.solution(plus)).scalar - p3.upper(minus, p3.solution(minus)).scalar) / 2e-5
            XCTAssertEqual(exact.scalars[i], fd, accuracy: 1e-6 * max(1, abs(fd)) + 1e-10, "x[\(i)]")
        }
    }

    func testMLPAndRosenbrockDerivatives() {
        let mlp = MLPWorkload()
        let g = gradient(at: mlp.theta, of: mlp.loss)
        for p in [0, 1000, 2100, 2176] {
            var plus = mlp.theta, minus = mlp.theta
            plus.scalars[p] += 1e-6
            minus.scalars[p] -= 1e-6
            let fd = (mlp.loss(plus).scalar - mlp.loss(minus).scalar) / 2e-6
            XCTAssertEqual(g.scalars[p], fd, accuracy: 1e-8, "θ[\(p)]")
        }
        let rosen = RosenbrockWorkload(n: 50)
        let rg = gradient(at: rosen.x, of: rosen.value).scalars
        let hv = hvp(at: rosen.x, direction: rosen.direction, of: rosen.value).scalars
        for (a, b) in zip(rg, rosen.exactGradient(rosen.x)) { XCTAssertEqual(a, b, accuracy: 1e-11 * max(1, abs(b))) }
        for (a, b) in zip(hv, rosen.exactHVP(rosen.x, rosen.direction)) { XCTAssertEqual(a, b, accuracy: 1e-11 * max(1, abs(b))) }
    }
}
