import Foundation

/// Wall-clock timing and peak-memory measurement of one benchmark row.
enum Measurement {
    /// Monotonic time in milliseconds.
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

    /// Timed runs go on past `repeats` until they add up to this many milliseconds (at most
    /// `maximumRepeats` runs), so sub-millisecond rows take a median over hundreds of runs instead of a
    /// handful that one scheduling hiccup of the virtual machine can move.
    static let minimumTimedMilliseconds = 100.0, maximumRepeats = 1000

    /// Runs `body` once as a warm-up while measuring its peak memory, then at least `repeats` timed runs
    /// (more for fast bodies: see `minimumTimedMilliseconds`).
    ///
    /// - Returns: median and minimum milliseconds of the timed runs, and the peak resident-set growth
    ///   (MB) of the warm-up run.
    static func run(repeats: Int, _ body: () throws -> Void) rethrows -> (median: Double, min: Double, peakMB: Double) {
        let peak = try peakGrowth(body)
        var times = [Double](), total = 0.0
        while times.count < repeats || (total < minimumTimedMilliseconds && times.count < maximumRepeats) {
            let start = now()
            try body()
            times.append(now() - start)
            total += times.last!
        }
        times.sort()
        let mid = times.count / 2
        let median = times.count % 2 == 1 ? times[mid] : (times[mid - 1] + times[mid]) / 2
        return (median, times[0], peak)
    }

    /// The peak resident-set growth while `body` runs, in MB: freed heap pages are first returned to the
    /// kernel (`malloc_trim`, so earlier workloads' pages do not hide this one's growth), the kernel's
    /// high-water mark is reset by writing `5` to `/proc/self/clear_refs`, and `VmHWM` read afterwards,
    /// minus `VmRSS` before.
    /// Where `/proc` is not writable this falls back to `getrusage`'s lifetime maximum (then only growth
    /// beyond every earlier peak shows).
    static func peakGrowth(_ body: () throws -> Void) rethrows -> Double {
        _ = releaseFreeHeap(0)
        let before = status("VmRSS") ?? 0
        let reset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        let usageBefore = maxRSS()
        try body()
        if reset, let peak = status("VmHWM") { return max(0, peak - before) / 1024 }
        return max(0, maxRSS() - usageBefore) / 1024
    }

    /// A `kB` field of `/proc/self/status`.
    private static func status(_ field: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "")
        }
        return nil
    }

    /// `getrusage`'s maximum resident set, in kB.
    private static func maxRSS() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss)
    }
}

/// glibc's `malloc_trim`: returns free heap pages to the kernel (not exported by the Glibc module).
@_silgen_name("malloc_trim")
private func releaseFreeHeap(_ pad: Int) -> Int32
