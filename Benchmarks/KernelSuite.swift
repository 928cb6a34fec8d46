import AutoDiff
import Foundation

/// The `kernels` rows: GEMM at the MLP's and the P1/P2 shapes and the symmetric `AᵀA` of P1's A in
/// GFLOP/s, GEMV and the fused
/// normal-equation product at 2000×500 in GB/s next to a same-run memory copy, each on the dispatched
/// instruction set and on the portable kernels. The notes give the rates and the share of the FMA peak
/// `cores × 2 FMA units × 4 doubles × 2 flops × clock` (clock from /proc/cpuinfo).
enum KernelSuite {
    /// The cores the products run on.
    static let cores = ProcessInfo.processInfo.activeProcessorCount

    static func run(_ bench: inout Bench) {
        let paths: [(String, KernelDispatch.InstructionSet)] = [("\(KernelDispatch.active)", KernelDispatch.active), ("portable", .portable)]
        let peak = peakGigaflops()
        var rates: [String] = []
        /// Times `body` as the row `method`/`size` and notes its rate for `flops` floating-point operations
        /// (`shape` says what the size's numbers are).
        func flopRate(_ method: String, _ size: String, shape: String, flops: Double, _ body: () -> [Double]) {
            guard let ms = bench.measure("kernels", method, size: size, body) else { return }
            let gflops = flops / (ms * 1e6)
            rates.append(String(format: "kernels %@ %@ (%@): %.1f GFLOP/s%@", method, size, shape, gflops,
                                peak.map { String(format: ", %.0f %% of peak", 100 * gflops / $0.gigaflops) } ?? ""))
        }
        for (m, n, k) in [(128, 64, 32), (500, 500, 500), (2000, 500, 500)] {
            let a = Tensor(shape: [m, k]) { sin(0.37 * Double($0)) }, b = Tensor(shape: [k, n]) { cos(0.29 * Double($0)) }
            for (name, isa) in paths {
                KernelDispatch.with(isa) { flopRate("gemm-\(name)", "\(m)x\(n)x\(k)", shape: "m×n×k", flops: 2 * Double(m * n * k)) { matmul(a, b).scalars } }
            }
        }
        // The symmetric AᵀA of a 2000×500 A (the P1 Hessian's Gram): the flops of its upper triangle,
        // half the GEMM's, so its rate compares per flop with gemm 500x500x2000's.
        let tall = Tensor(shape: [2000, 500]) { sin(0.37 * Double($0)) }
        for (name, isa) in paths {
            KernelDispatch.with(isa) {
                flopRate("gram-\(name)", "2000x500", shape: "rows×columns of A", flops: Double(2000 * 500 * 500)) {
                    matmul(tall, tall, transposeA: true, transposeB: false).scalars
                }
            }
        }
        if let peak, !rates.isEmpty {
            bench.notes.append(String(format: "kernels: FMA peak %.1f GFLOP/s assumed (%d cores × 2 FMA units × 4 doubles × 2 flops × %.3f GHz from /proc/cpuinfo)", peak.gigaflops, cores, peak.gigahertz))
        }
        bench.notes += rates
        let rows = 2000, columns = 500, megabytes = Double(rows * columns * 8) / 1e6
        let a = Tensor(shape: [rows, columns]) { sin(0.013 * Double($0 % 997)) }
        let v = Tensor(shape: [columns]) { cos(0.7 * Double($0)) }, r = Tensor(shape: [rows]) { sin(0.3 * Double($0)) }
        let size = "\(rows)x\(columns)"
        func rate(_ method: String, bytes: Double, _ body: () -> [Double]) {
            guard let ms = bench.measure("kernels", method, size: size, body) else { return }
            bench.notes.append(String(format: "kernels %@ %@: %.1f GB/s", method, size, bytes / ms / 1e6))
        }
        rate("memory-copy (read + write)", bytes: 2 * megabytes * 1e6) { var copy = a.scalars; copy[0] += 1; return [copy[0]] }
        for (name, isa) in paths {
            KernelDispatch.with(isa) {
                rate("gemv-\(name)", bytes: megabytes * 1e6) { matmul(a, v).scalars }
                rate("gemv-transposed-\(name)", bytes: megabytes * 1e6) { matmul(r, a).scalars }
                rate("normal-product-\(name)", bytes: megabytes * 1e6) { normalProduct(a, v, minus: r).scalars }
                rate("normal-unfused-\(name)", bytes: 2 * megabytes * 1e6) { matmul(matmul(a, v) - r, a).scalars }
            }
        }
    }

    /// The cores' double-precision FMA peak in GFLOP/s, from the first `cpu MHz` of /proc/cpuinfo.
    static func peakGigaflops() -> (gigaflops: Double, gigahertz: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu MHz") }),
              let mhz = Double(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") else { return nil }
        let gigahertz = mhz / 1000
        return (Double(cores) * 2 * 4 * 2 * gigahertz, gigahertz)
    }
}
