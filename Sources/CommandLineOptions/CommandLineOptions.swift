import Foundation

// The command-line plumbing shared by the executables (`bench`, `maml`): scanning `--option value`
// arguments with messages that name the argument, and the exit codes (0 for --help, 2 for bad input).

/// A command-line error naming the offending argument, or the request for help (empty message).
public struct OptionsError: Error {
    /// What was wrong, for standard error; empty for `--help`.
    public let message: String
    /// An error with the given message.
    public init(_ message: String) { self.message = message }
    /// `--help` (or `-h`) was given.
    public static let help = OptionsError("")
}

/// Walks the arguments of a command line, one option at a time.
public struct ArgumentScanner {
    private var rest: ArraySlice<String>

    /// A scanner over `arguments` (without the program name).
    public init(_ arguments: [String]) { rest = arguments[...] }

    /// The next argument, or `nil` at the end; `--help` and `-h` throw `OptionsError.help`.
    public mutating func next() throws -> String? {
        guard let argument = rest.popFirst() else { return nil }
        if argument == "--help" || argument == "-h" { throw OptionsError.help }
        return argument
    }

    /// The value following `option`.
    ///
    /// - Throws: `OptionsError` when it is missing or is itself an option.
    public mutating func value(for option: String) throws -> String {
        guard let v = rest.popFirst(), !v.hasPrefix("--") else { throw OptionsError("\(option) needs a value") }
        return v
    }

    /// The value following `option` as a whole number ≥ 1.
    ///
    /// - Throws: `OptionsError` quoting the value when it is not one.
    public mutating func positiveInteger(for option: String) throws -> Int {
        let text = try value(for: option)
        guard let n = Int(text), n >= 1 else { throw OptionsError("\(option) needs a whole number ≥ 1, got '\(text)'") }
        return n
    }

    /// The value following `option` as a random seed, a whole number in `0..<2^64`.
    ///
    /// - Throws: `OptionsError` quoting the value when it is not one.
    public mutating func seed(for option: String) throws -> UInt64 {
        let text = try value(for: option)
        guard let seed = UInt64(text) else { throw OptionsError("\(option) needs a whole number in 0..<2^64, got '\(text)'") }
        return seed
    }
}

/// Writes `text` and a newline to standard error.
public func printError(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

/// Parses the process's arguments with `parse`; on `--help` prints `usage` and exits 0, on a bad
/// argument prints `<program>: <message>` and `usage` to standard error and exits 2.
public func parseCommandLine<Options>(program: String, usage: String, _ parse: ([String]) throws -> Options) -> Options {
    do {
        return try parse(Array(CommandLine.arguments.dropFirst()))
    } catch let error as OptionsError where error.message.isEmpty {
        print(usage)
        exit(0)
    } catch {
        let message = (error as? OptionsError)?.message ?? "\(error)"
        FileHandle.standardError.write("\(program): \(message)\n\(usage)\n".data(using: .utf8)!)
        exit(2)
    }
}

/// The `--filter <substring>` of a command that prints rows: which rows it keeps, and the error when it
/// kept none (a filter that matches nothing is a mistake to report, not an empty table).
public struct RowFilter: Sendable {
    /// The substring a row's name must contain, or `nil` to keep every row.
    public let substring: String?

    /// A filter keeping the rows whose name contains `substring` (all rows for `nil`).
    public init(_ substring: String?) { self.substring = substring }

    /// Whether the row called `name` is kept.
    public func selects(_ name: String) -> Bool { substring.map { name.contains($0) } ?? true }

    /// The error to print (then exit non-zero) when the filter kept none of the rows, else `nil`.
    ///
    /// - Parameter example: what a row name looks like, for the message.
    public func emptySelectionError(rowCount: Int, example: String) -> OptionsError? {
        guard let substring, rowCount == 0 else { return nil }
        return OptionsError("--filter '\(substring)' matches no row; rows are named workload/method/size, like \"\(example)\"; run without --filter to list them")
    }
}
