#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/diagnostic.hpp"

namespace YAML {
class Node;
}  // namespace YAML

namespace config {

// A node of a parsed YAML document; yaml-cpp stays behind it (nothing here throws). Cheap to
// copy: a handle to the parsed document.
class YamlNode {
public:
    YamlNode();  // undefined: what a missing key gives
    explicit YamlNode(const YAML::Node& node);

    [[nodiscard]] bool defined() const;  // present, possibly null
    [[nodiscard]] bool null() const;     // `key:` or `key: ~`
    [[nodiscard]] bool is_map() const;
    [[nodiscard]] bool is_sequence() const;
    [[nodiscard]] bool is_scalar() const;
    // The text of a scalar ("" for anything else).
    [[nodiscard]] const std::string& scalar() const;
    // A scalar written in quotes: a string, whatever it looks like.
    [[nodiscard]] bool quoted() const;
    // 1-based line; 0 when undefined.
    [[nodiscard]] int line() const;
    // The items of a sequence or the entries of a mapping (0 for anything else).
    [[nodiscard]] std::size_t size() const;
    // Item `i` of a sequence (undefined when out of range or not a sequence).
    [[nodiscard]] YamlNode operator[](std::size_t i) const;
    // The items of a sequence, in order (empty for anything else).
    [[nodiscard]] std::vector<YamlNode> items() const;
    // The key/value pairs of a mapping, in order (empty for anything else).
    [[nodiscard]] std::vector<std::pair<YamlNode, YamlNode>> entries() const;

private:
    std::shared_ptr<const YAML::Node> node_;
};

// What yaml-cpp said about text that is not YAML, and where.
struct YamlError {
    int line = 0;  // 1-based; 0 when unknown
    std::string message;
};

// Every document of `text`.
std::expected<std::vector<YamlNode>, YamlError> parse_yaml(const std::string& text);
// Every document of a file; nothing (with a Diagnostic: "cannot read the file", or
// "YAML syntax: ..." at its line) when it cannot be read or parsed.
std::optional<std::vector<YamlNode>> read_yaml_file(const std::filesystem::path& file,
                                                    Diagnostics& out);
// The same for text read elsewhere (standard input), diagnostics under `name`.
std::optional<std::vector<YamlNode>> read_yaml_text(const std::string& text,
                                                    const std::string& name,
                                                    Diagnostics& out);

// Base64 as in a Secret's `data` (nullopt when malformed).
std::optional<std::string> decode_base64(const std::string& text);

// The node as JSON: mappings, sequences, and scalars as YAML 1.2's core schema reads them
// (true/false, null, integers, floats; quoted scalars stay strings).
nlohmann::json to_json(const YamlNode& node);

// An API document (JSON or YAML) as canonical JSON — mappings with sorted keys, no whitespace —
// so that two documents that mean the same compare equal; nullopt (with why) when it is neither.
std::expected<std::string, std::string> canonical_document(const std::string& text);

// A whole number as the files write it: digits only, no sign, no overflow.
std::optional<std::uint64_t> parse_unsigned(std::string_view text);

// The one duration grammar of tandem's files: a whole number and its unit, `ms`, `s`, `m` or `h`
// ("500ms", "2s", "5m", "1h"), or "0". nullopt otherwise, a bare number included.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Reads typed values out of one file's nodes and collects every problem as a Diagnostic with
// file:line, the field's path and what to do. The fleet file, the CRs and tandem-lb's file all
// read through it.
class YamlReader {
public:
    YamlReader(std::string file, Diagnostics& out) : file_(std::move(file)), out_(out) {}

    [[nodiscard]] const std::string& file() const { return file_; }
    [[nodiscard]] Source at(const YamlNode& node) const { return {file_, node.line()}; }
    // Where `key` of `map` is written (its key's line; line 0 when absent): a field's own line,
    // also when its value is a mapping that starts on the next one.
    [[nodiscard]] Source at_key(const YamlNode& map, const std::string& key) const;
    void error(const YamlNode& node, const std::string& path, const std::string& message);
    void notice(const YamlNode& node, const std::string& path, const std::string& message);

    static std::string join(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    // The value under `key` of a mapping (undefined when absent); a key given twice is reported
    // (as `where`, the field's path; the key when empty).
    YamlNode child(const YamlNode& map, const std::string& key, const std::string& where = "");
    // A resource's spec: a mapping, or undefined (with "is required and must be a mapping").
    YamlNode spec(const YamlNode& doc);
    // Reports the keys of `map` that are not in `allowed`.
    void only(const YamlNode& map,
              const std::string& path,
              std::initializer_list<const char*> allowed);
    // A defined, non-null node that is not a mapping is reported; true when it is a mapping.
    bool is_map(const YamlNode& node, const std::string& path);
    // `node` must be a mapping with only `allowed` keys (both reported); false when it is not
    // a mapping at all.
    bool mapping(const YamlNode& node,
                 const std::string& path,
                 std::initializer_list<const char*> allowed);

    // The value under `key`, or nullopt when it is absent or null ("is required" when it must be
    // there). The typed readers below start from it.
    std::optional<YamlNode> present(const YamlNode& map,
                                    const std::string& key,
                                    const std::string& where,
                                    bool required);
    // A scalar of any kind under `key` ("must be a single value" otherwise), with its node.
    std::optional<std::pair<std::string, YamlNode>> scalar(const YamlNode& map,
                                                           const std::string& key,
                                                           const std::string& path);
    // A string ("must be a string"; "must not be empty" when required).
    std::optional<std::string> str(const YamlNode& map,
                                   const std::string& key,
                                   const std::string& path,
                                   bool required);
    std::optional<std::int64_t> integer(const YamlNode& map,
                                        const std::string& key,
                                        const std::string& path,
                                        bool required);
    // A whole number from `low` to `high` (inclusive), the range in the error.
    std::optional<std::uint64_t> integer_in(const YamlNode& map,
                                            const std::string& key,
                                            const std::string& path,
                                            std::uint64_t low,
                                            std::uint64_t high);
    // true/false (also True/TRUE, False/FALSE).
    std::optional<bool> boolean(const YamlNode& map,
                                const std::string& key,
                                const std::string& path,
                                bool required);
    // A duration (parse_duration) from `low` to `high`. A bare number is refused with the unit
    // to add: `bare_unit` says which one it most likely meant ("s", "ms").
    std::optional<std::chrono::milliseconds> duration(const YamlNode& map,
                                                      const std::string& key,
                                                      const std::string& path,
                                                      std::chrono::milliseconds low,
                                                      std::chrono::milliseconds high,
                                                      std::string_view bare_unit);

private:
    std::string file_;
    Diagnostics& out_;
};

}  // namespace config
