import CommandLineOptions
import Foundation
import XCTest

/// The command lines refuse what they cannot do: a `--filter` that matches no row is an error (bench
/// used to print an empty table and exit 0), and an unknown option names itself.
final class RobustnessCLITests: XCTestCase {
    func testAFilterMatchingNoRowIsAnError() {
        let filter = RowFilter("no-such-row")
        XCTAssertFalse(filter.selects("P1-ridge/RAD/20x5"))
        let error = filter.emptySelectionError(rowCount: 0, example: "P1-ridge/RAD")
        XCTAssertEqual(error?.message, "--filter 'no-such-row' matches no row; rows are named workload/method/size, like \"P1-ridge/RAD\"; run without --filter to list them")
        XCTAssertNil(filter.emptySelectionError(rowCount: 1, example: ""), "rows were selected")
        XCTAssertNil(RowFilter(nil).emptySelectionError(rowCount: 0, example: ""), "no filter: an empty table is not the user's doing")
        XCTAssertTrue(RowFilter("RAD").selects("P1-ridge/RAD/20x5"))
    }

    func testBadArgumentsNameThemselves() {
        var scanner = ArgumentScanner(["--repeat", "0"])
        XCTAssertEqual(try scanner.next(), "--repeat")
        XCTAssertThrowsError(try scanner.positiveInteger(for: "--repeat")) { error in
            XCTAssertEqual((error as? OptionsError)?.message, "--repeat needs a whole number ≥ 1, got '0'")
        }
        var missing = ArgumentScanner(["--filter"])
        _ = try? missing.next()
        XCTAssertThrowsError(try missing.value(for: "--filter")) { error in
            XCTAssertEqual((error as? OptionsError)?.message, "--filter needs a value")
        }
    }

    /// The built `bench` (when next to the tests) rejects an unknown option with status 2, naming it.
    func testBenchNamesAnUnknownOption() throws {
        let bundle = Bundle(for: Self.self).bundleURL
        let candidates = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("bench") }
        guard let url = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("bench is not built next to the tests")
        }
        let process = Process()
        process.executableURL = url
        process.arguments = ["--frobnicate"]
        let errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardOutput = Pipe()
        try process.run()
        let data = errorPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 2)
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("unknown option '--frobnicate'"))
    }
}
