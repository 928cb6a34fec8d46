import CommandLineOptions
import Foundation

/// The command line of `bench`.
struct Options {
    /// Smallest sizes only (the whole run stays under a minute on 2 cores).
    var quick = false
    /// Only rows whose `workload/method/size` contains this substring.
    var filter: String?
    /// Where to write the CSV, if anywhere.
    var csvPath: String?
    /// Where to write the SVG chart, if anywhere.
    var svgPath: String?
    /// The least number of timed runs per row after one warm-up run (at least 1; the default 7).
    var repeats = 7

    static let usage = """
        usage: bench [--quick] [--filter <substring>] [--csv <path>] [--svg <path>] [--repeat <n>] [--help]

          --quick              smallest sizes only (under a minute on 2 cores)
          --filter <substring> only rows whose "workload/method/size" contains <substring>
          --csv <path>         also write the rows as CSV
                               (workload,method,size,steps,median_ms,min_ms,peak_mb,ratio,error)
          --svg <path>         also write a chart of time and peak memory against T (unrolled ridge)
          --repeat <n>         at least n timed runs per row after one warm-up run (n ≥ 1, default 7;
                               fast rows run on until 100 ms of timed runs, at most 1000)
          --help               print this help
        """

    /// Parses `arguments` (without the program name).
    ///
    /// - Throws: `OptionsError` naming the offending argument.
    init(_ arguments: [String]) throws {
        var scanner = ArgumentScanner(arguments)
        while let argument = try scanner.next() {
            switch argument {
            case "--quick": quick = true
            case "--filter": filter = try scanner.value(for: argument)
            case "--csv": csvPath = try scanner.value(for: argument)
            case "--svg": svgPath = try scanner.value(for: argument)
            case "--repeat": repeats = try scanner.positiveInteger(for: argument)
            default: throw OptionsError("unknown option '\(argument)'")
            }
        }
    }

    /// The error to print when `--filter` matched none of the rows (the run then exits non-zero), or
    /// `nil` when rows were selected or no filter was given.
    func emptySelectionError(rowCount: Int) -> OptionsError? {
        RowFilter(filter).emptySelectionError(rowCount: rowCount, example: "P1-ridge/RAD/200x20")
    }

    /// Whether the row named by these parts passes `--filter`.
    func selects(_ workload: String, _ method: String, _ size: String) -> Bool {
        RowFilter(filter).selects("\(workload)/\(method)/\(size)")
    }
}
