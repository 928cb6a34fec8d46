import Foundation

/// The least-squares slope of log(values) against log(abscissae): the fitted exponent p of values ∝ abscissaᵖ.
///
/// Shared by the tests that check a method's rate (bias, variance) and the benchmark's Table 4 fits.
public func logLogSlope(_ abscissae: [Double], _ values: [Double]) -> Double {
    let u = abscissae.map(log), v = values.map(log)
    let meanU = u.reduce(0, +) / Double(u.count), meanV = v.reduce(0, +) / Double(v.count)
    var covariance = 0.0, spread = 0.0
    for (a, b) in zip(u, v) {
        covariance += (a - meanU) * (b - meanV)
        spread += (a - meanU) * (a - meanU)
    }
    return covariance / spread
}
