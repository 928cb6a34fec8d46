/// The chart of the unrolled-ridge rows: time and peak memory against T, one line per method, for the
/// size that has every T.
enum UnrolledChart {
    static func svg(from rows: [Row]) -> String {
        let unrolled = rows.filter { $0.workload == "P2-unrolled" }
        let sizes = Dictionary(grouping: unrolled, by: \.size)
        let size = sizes.max { Set($0.value.map(\.steps)).count < Set($1.value.map(\.steps)).count }?.key ?? ""
        let chosen = unrolled.filter { $0.size == size }
        let methods = chosen.map(\.method).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        func series(_ value: (Row) -> Double) -> [SVGChart.Series] {
            methods.map { m in .init(name: m, points: chosen.filter { $0.method == m }.map { (Double($0.steps), value($0)) }) }
        }
        return SVGChart(panels: [
            .init(title: "Unrolled ridge \(size): time per hypergradient", xLabel: "inner steps T",
                  yLabel: "median time (ms)", series: series(\.medianMs)),
            .init(title: "Unrolled ridge \(size): peak memory", xLabel: "inner steps T",
                  yLabel: "peak RSS growth (MB)", series: series { max($0.peakMB, 0.01) }),
        ]).svg
    }
}
