import Foundation

/// A small SVG writer for log–log line charts: one panel per quantity, one polyline per series, with
/// labelled axes, decade ticks and a legend.
struct SVGChart {
    /// A named series of (x, y) points, drawn in increasing x.
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }

    /// One chart area.
    struct Panel {
        var title: String
        var xLabel: String
        var yLabel: String
        var series: [Series]
    }

    var panels: [Panel]

    private static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"]
    private static let (panelWidth, panelHeight, margin) = (460.0, 320.0, 60.0)

    /// The whole document: panels side by side.
    var svg: String {
        let width = Double(panels.count) * (Self.panelWidth + Self.margin) + Self.margin
        let height = Self.panelHeight + 2 * Self.margin + 20
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>

            """
        for (i, panel) in panels.enumerated() {
            out += render(panel, left: Self.margin + Double(i) * (Self.panelWidth + Self.margin), top: Self.margin)
        }
        return out + "</svg>\n"
    }

    private func render(_ panel: Panel, left: Double, top: Double) -> String {
        let points = panel.series.flatMap(\.points).filter { $0.x > 0 && $0.y > 0 }
        guard !points.isEmpty else { return "" }
        let (x0, x1) = decades(points.map(\.x)), (y0, y1) = decades(points.map(\.y))
        let w = Self.panelWidth, h = Self.panelHeight
        func px(_ x: Double) -> Double { left + (log10(x) - x0) / (x1 - x0) * w }
        func py(_ y: Double) -> Double { top + h - (log10(y) - y0) / (y1 - y0) * h }
        var out = "<text x=\"\(left + w / 2)\" y=\"\(top - 20)\" text-anchor=\"middle\" font-size=\"14\">\(panel.title)</text>\n"
        out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"black\"/>\n"
        for e in Int(x0)...Int(x1) {
            let x = px(pow(10, Double(e)))
            out += "<line x1=\"\(x)\" y1=\"\(top + h)\" x2=\"\(x)\" y2=\"\(top + h + 5)\" stroke=\"black\"/>"
            out += "<text x=\"\(x)\" y=\"\(top + h + 18)\" text-anchor=\"middle\">1e\(e)</text>\n"
        }
        for e in Int(y0)...Int(y1) {
            let y = py(pow(10, Double(e)))
            out += "<line x1=\"\(left - 5)\" y1=\"\(y)\" x2=\"\(left + w)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 8)\" y=\"\(y + 4)\" text-anchor=\"end\">1e\(e)</text>\n"
        }
        out += "<text x=\"\(left + w / 2)\" y=\"\(top + h + 38)\" text-anchor=\"middle\">\(panel.xLabel)</text>\n"
        out += "<text transform=\"translate(\(left - 45),\(top + h / 2)) rotate(-90)\" text-anchor=\"middle\">\(panel.yLabel)</text>\n"
        for (k, series) in panel.series.enumerated() {
            let color = Self.colors[k % Self.colors.count]
            let visible = series.points.filter { $0.x > 0 && $0.y > 0 }.sorted { $0.x < $1.x }
            let path = visible.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            for p in visible { out += "<circle cx=\"\(px(p.x))\" cy=\"\(py(p.y))\" r=\"3\" fill=\"\(color)\"/>" }
            let ly = top + 14 + Double(k) * 16
            out += "\n<line x1=\"\(left + 10)\" y1=\"\(ly - 4)\" x2=\"\(left + 30)\" y2=\"\(ly - 4)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            out += "<text x=\"\(left + 35)\" y=\"\(ly)\">\(series.name)</text>\n"
        }
        return out
    }

    /// The enclosing whole decades of the values, as base-10 exponents (at least one decade wide).
    private func decades(_ values: [Double]) -> (Double, Double) {
        let low = floor(log10(values.min()!)), high = ceil(log10(values.max()!))
        return (low, max(high, low + 1))
    }
}
