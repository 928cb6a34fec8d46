import Foundation
import XCTest

/// Every ```swift block of the documentation (README.md and Docs/*.md) must appear verbatim (up to
/// indentation) in a compiled source: a test, an example target or the benchmark. So a snippet that no
/// longer compiles, or was edited without its compiled twin, fails here.
final class DocSnippetTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The lines of `text` with surrounding white space removed; blank lines and `import` lines (a test
    /// imports its modules once, at the top) dropped.
    static func normalizedLines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("import ") }
    }

    /// The bodies of the ```swift fences of a Markdown text.
    static func swiftBlocks(in markdown: String) -> [String] {
        var blocks: [String] = [], current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```swift" {
                current = []
            } else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// All Swift sources under the given directories (default: every directory that is compiled).
    static func compiledSources(in directories: [String] = ["Tests", "Examples", "Benchmarks"]) throws -> String {
        var text = ""
        for dir in directories where FileManager.default.fileExists(atPath: root.appendingPathComponent(dir).path) {
            let base = root.appendingPathComponent(dir)
            guard let files = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let file as URL in files where file.pathExtension == "swift" {
                text += try String(contentsOf: file, encoding: .utf8) + "\n"
            }
        }
        return normalizedLines(text).joined(separator: "\n")
    }

    func testEveryDocumentationSnippetIsCompiled() throws {
        let docs = Self.root.appendingPathComponent("Docs")
        var pages = [Self.root.appendingPathComponent("README.md")]
        pages += try FileManager.default.contentsOfDirectory(at: docs, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "md" }
        let compiled = try Self.compiledSources()
        var checked = 0
        for page in pages {
            let markdown = try String(contentsOf: page, encoding: .utf8)
            for block in Self.swiftBlocks(in: markdown) {
                let lines = Self.normalizedLines(block).joined(separator: "\n")
                XCTAssertTrue(
                    compiled.contains(lines),
                    "\(page.lastPathComponent): this snippet is not compiled anywhere:\n\(block)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 5, "expected the guide's snippets to be found")
    }

    /// The README and the engine guide are what a new user copies: their snippets must be compiled in
    /// `Tests/PublicAPITests`, which imports the products without `@testable` (public API only).
    func testUserFacingSnippetsCompileAgainstThePublicAPI() throws {
        let compiled = try Self.compiledSources(in: ["Tests/PublicAPITests"])
        var checked = 0
        for page in ["README.md", "Docs/guide.md"] {
            let markdown = try String(contentsOf: Self.root.appendingPathComponent(page), encoding: .utf8)
            for block in Self.swiftBlocks(in: markdown) {
                XCTAssertTrue(
                    compiled.contains(Self.normalizedLines(block).joined(separator: "\n")),
                    "\(page): this snippet is not compiled in Tests/PublicAPITests (public API only):\n\(block)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 8, "expected the README's and the guide's snippets to be found")
    }
}
