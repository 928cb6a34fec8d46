import CommandLineOptions
import Foundation

/// The command-line options every meta-learning example takes: `--iterations`, `--seed`, `--check`
/// (and `--help`), plus whatever the example adds through `extra`.
public struct MetaLearningOptions {
    /// Meta-iterations per learner.
    public var iterations: Int
    /// The seed every random stream derives from.
    public var seed: UInt64 = 2017
    /// Run the meta-gradient self-test instead of training.
    public var check = false

    /// Parses `arguments` (without the program name); an option this type does not know is offered to
    /// `extra`, which returns whether it took it (reading its value from the scanner).
    ///
    /// - Throws: `OptionsError` naming the offending argument, or `OptionsError.help`.
    public init(
        _ arguments: [String], defaultIterations: Int,
        extra: (String, inout ArgumentScanner) throws -> Bool = { _, _ in false }
    ) throws {
        iterations = defaultIterations
        var scanner = ArgumentScanner(arguments)
        while let argument = try scanner.next() {
            switch argument {
            case "--iterations": iterations = try scanner.positiveInteger(for: argument)
            case "--seed": seed = try scanner.seed(for: argument)
            case "--check": check = true
            default: guard try extra(argument, &scanner) else { throw OptionsError("unknown option '\(argument)'") }
            }
        }
    }

    /// The help text: `program`'s synopsis with `extraSynopsis` after `--iterations`, the description of
    /// `--iterations` (`iterationsPer` says per what; default `defaultIterations`), the `extraLines`,
    /// and those of `--seed`, of `--check` (`checkDescription`, continuation lines already indented) and
    /// of `--help`.
    public static func usage(
        program: String, extraSynopsis: String = "", iterationsPer: String, defaultIterations: Int,
        extraLines: String = "", checkDescription: String
    ) -> String {
        """
        usage: \(program) [--iterations <n>]\(extraSynopsis) [--seed <s>] [--check] [--help]

          --iterations <n>  meta-iterations (Adam steps) per \(iterationsPer), n ≥ 1 (default \(defaultIterations))
        \(extraLines)  --seed <s>        seed of the initialisation and of the task streams, 0 ≤ s < 2^64 (default 2017)
          --check           \(checkDescription)
          --help            print this help
        """
    }
}

/// `text` right-aligned in `width` characters (left-aligned when `left`).
public func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + fill : fill + text
}

/// Prints a results table: a blank line, `header`, a rule as wide as the header, then `rows`.
public func printTable(header: String, rows: [String]) {
    print("\n" + header)
    print(String(repeating: "-", count: header.count))
    for row in rows { print(row) }
}
