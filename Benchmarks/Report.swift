import Foundation

/// One benchmark result: a (workload, method, size, steps) cell of the CSV.
struct Row {
    static let csvHeader = "workload,method,size,steps,median_ms,min_ms,peak_mb,ratio,error"

    var workload: String
    var method: String
    var size: String
    var steps: Int
    var medianMs: Double
    var minMs: Double
    var peakMB: Double
    /// Median time over the row's baseline (the plain function, or T plain inner steps); NaN if none.
    var ratio: Double
    /// Error against the exact answer (relative, ∞-norm), NaN where there is no reference.
    var error: Double

    var csvLine: String {
        [workload, method, size, "\(steps)", format(medianMs, 4), format(minMs, 4), format(peakMB, 2),
         format(ratio, 3), error.isNaN ? "nan" : String(format: "%.2e", error)].joined(separator: ",")
    }

    private func format(_ v: Double, _ digits: Int) -> String { v.isNaN ? "nan" : String(format: "%.\(digits)f", v) }
}

/// Collects rows, times them and renders the table and CSV.
struct Bench {
    let options: Options
    private(set) var rows: [Row] = []
    /// Lines printed after the table (derived figures such as ns per op).
    var notes: [String] = []

    init(options: Options) { self.options = options }

    /// Times `body` as one row unless `--filter` excludes it, and returns the median (ms).
    ///
    /// - Parameters:
    ///   - baseline: median ms of the row's baseline, for the `ratio` column.
    ///   - reference: the exact answer; the `error` column compares the body's last result with it.
    ///   - body: the work timed; returns its result (the hypergradient, gradient, …) or `[]`.
    @discardableResult
    mutating func measure(
        _ workload: String, _ method: String, size: String, steps: Int = 0, baseline: Double? = nil,
        reference: [Double]? = nil, _ body: () throws -> [Double]
    ) rethrows -> Double? {
        guard options.selects(workload, method, size) else { return nil }
        FileHandle.standardError.write("bench: \(workload) / \(method) / \(size)\(steps > 0 ? " / T=\(steps)" : "")\n".data(using: .utf8)!)
        var result: [Double] = []
        let (median, min, peak) = try Measurement.run(repeats: options.repeats) { result = try body() }
        let ratio = baseline.map { median / $0 } ?? .nan
        let error = reference.map { relativeError(result, $0) } ?? .nan
        rows.append(Row(workload: workload, method: method, size: size, steps: steps, medianMs: median, minMs: min,
                        peakMB: peak, ratio: ratio, error: error))
        return median
    }

    /// Adds a row computed elsewhere (e.g. a per-operation cost).
    mutating func append(_ row: Row) {
        if options.selects(row.workload, row.method, row.size) { rows.append(row) }
    }

    /// The rows as an aligned text table.
    var table: String {
        let header = Row.csvHeader.split(separator: ",").map(String.init)
        let cells = rows.map { $0.csvLine.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let widths = header.indices.map { c in ([header[c]] + cells.map { $0[c] }).map(\.count).max()! }
        func line(_ fields: [String]) -> String {
            fields.enumerated().map { c, f in c < 3 ? f.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - f.count) + f }.joined(separator: "  ")
        }
        return ([line(header), String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))]
            + cells.map(line)).joined(separator: "\n")
    }

    /// The rows as CSV with `Row.csvHeader`.
    var csv: String { ([Row.csvHeader] + rows.map(\.csvLine)).joined(separator: "\n") + "\n" }
}

/// `max |a − b| / max(max |b|, tiny)`: the relative ∞-norm error of `a` against the reference `b`.
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) values against \(b.count)")
    let scale = max(b.map(abs).max() ?? 0, 1e-300)
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}
