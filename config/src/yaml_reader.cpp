// yaml-cpp behind YamlNode, and the typed reading every tandem file shares. yaml-cpp's
// exceptions never leave this file.
#include "config/yaml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace config {

namespace {

const std::string kEmpty;

// "100ms", "1s", "24h": the largest unit that divides it.
std::string show(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms != 0 && ms % 3600000 == 0) {
        return std::to_string(ms / 3600000) + "h";
    }
    if (ms != 0 && ms % 60000 == 0) {
        return std::to_string(ms / 60000) + "m";
    }
    if (ms != 0 && ms % 1000 == 0) {
        return std::to_string(ms / 1000) + "s";
    }
    return std::to_string(ms) + "ms";
}

}  // namespace

// ---- YamlNode -----------------------------------------------------------------------------

YamlNode::YamlNode() : node_(std::make_shared<const YAML::Node>(YAML::NodeType::Undefined)) {}

YamlNode::YamlNode(const YAML::Node& node) : node_(std::make_shared<const YAML::Node>(node)) {}

bool YamlNode::defined() const {
    return node_->IsDefined();
}
bool YamlNode::null() const {
    return node_->IsDefined() && node_->IsNull();
}
bool YamlNode::is_map() const {
    return node_->IsMap();
}
bool YamlNode::is_sequence() const {
    return node_->IsSequence();
}
bool YamlNode::is_scalar() const {
    return node_->IsScalar();
}

const std::string& YamlNode::scalar() const {
    return node_->IsScalar() ? node_->Scalar() : kEmpty;
}

bool YamlNode::quoted() const {
    return node_->IsScalar() && (node_->Tag() == "!" || node_->Tag() == "tag:yaml.org,2002:str");
}

int YamlNode::line() const {
    return node_->IsDefined() ? node_->Mark().line + 1 : 0;
}

std::size_t YamlNode::size() const {
    return node_->IsSequence() || node_->IsMap() ? node_->size() : 0;
}

YamlNode YamlNode::operator[](std::size_t i) const {
    if (!node_->IsSequence() || i >= node_->size()) {
        return {};
    }
    return YamlNode((*node_)[i]);
}

std::vector<YamlNode> YamlNode::items() const {
    std::vector<YamlNode> out;
    if (node_->IsSequence()) {
        for (const auto& item : *node_) {
            out.emplace_back(item);
        }
    }
    return out;
}

std::vector<std::pair<YamlNode, YamlNode>> YamlNode::entries() const {
    std::vector<std::pair<YamlNode, YamlNode>> out;
    if (node_->IsMap()) {
        for (auto it = node_->begin(); it != node_->end(); ++it) {
            out.emplace_back(YamlNode(it->first), YamlNode(it->second));
        }
    }
    return out;
}

// ---- parsing ------------------------------------------------------------------------------

std::expected<std::vector<YamlNode>, YamlError> parse_yaml(const std::string& text) {
    try {
        std::vector<YamlNode> out;
        for (const auto& doc : YAML::LoadAll(text)) {
            out.emplace_back(doc);
        }
        return out;
    } catch (const YAML::Exception& e) {
        return std::unexpected(YamlError{e.mark.line >= 0 ? e.mark.line + 1 : 0, e.msg});
    }
}

std::optional<std::vector<YamlNode>> read_yaml_file(const std::filesystem::path& file,
                                                    Diagnostics& out) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        out.push_back(
            {Diagnostic::Severity::kError, {file.string(), 0}, "", "cannot read the file"});
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return read_yaml_text(text.str(), file.string(), out);
}

std::optional<std::vector<YamlNode>> read_yaml_text(const std::string& text,
                                                    const std::string& name,
                                                    Diagnostics& out) {
    auto docs = parse_yaml(text);
    if (!docs) {
        out.push_back({Diagnostic::Severity::kError,
                       {name, docs.error().line},
                       "",
                       "YAML syntax: " + docs.error().message});
        return std::nullopt;
    }
    return std::move(*docs);
}

std::expected<std::string, std::string> canonical_document(const std::string& text) {
    const auto json = nlohmann::json::parse(text, nullptr, false);
    if (!json.is_discarded()) {
        if (!json.is_object()) {
            return std::unexpected("the document is JSON but not an object");
        }
        return json.dump();
    }
    auto docs = parse_yaml(text);
    if (!docs) {
        return std::unexpected("neither JSON nor YAML (YAML syntax at line " +
                               std::to_string(docs.error().line) + ": " + docs.error().message +
                               ")");
    }
    if (docs->size() != 1 || !(*docs)[0].is_map()) {
        return std::unexpected("the document must be one JSON object or YAML mapping");
    }
    return to_json((*docs)[0]).dump();
}

std::optional<std::string> decode_base64(const std::string& text) {
    const auto bytes = YAML::DecodeBase64(text);
    if (bytes.empty() && !text.empty()) {
        return std::nullopt;
    }
    return std::string(bytes.begin(), bytes.end());
}

std::optional<std::uint64_t> parse_unsigned(std::string_view s) {
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
        return std::nullopt;
    }
    return value;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    if (text == "0") {
        return std::chrono::milliseconds(0);
    }
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    const auto n = parse_unsigned(text.substr(0, digits));
    if (!n || *n > 100000000) {
        return std::nullopt;
    }
    const std::string_view unit = text.substr(digits);
    const auto v = static_cast<std::int64_t>(*n);
    if (unit == "ms") {
        return std::chrono::milliseconds(v);
    }
    if (unit == "s") {
        return std::chrono::seconds(v);
    }
    if (unit == "m") {
        return std::chrono::minutes(v);
    }
    if (unit == "h") {
        return std::chrono::hours(v);
    }
    return std::nullopt;
}

// ---- to JSON ------------------------------------------------------------------------------------

nlohmann::json to_json(const YamlNode& node) {
    if (node.is_map()) {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto& [key, value] : node.entries()) {
            obj[key.scalar()] = to_json(value);
        }
        return obj;
    }
    if (node.is_sequence()) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& item : node.items()) {
            arr.push_back(to_json(item));
        }
        return arr;
    }
    if (!node.is_scalar()) {
        return nullptr;
    }
    const std::string& s = node.scalar();
    if (node.quoted()) {
        return s;  // quoted: a string
    }
    if (s == "true" || s == "false") {
        return s == "true";
    }
    if (s == "null" || s == "~") {
        return nullptr;
    }
    std::int64_t i = 0;
    if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
        ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
        return i;
    }
    double d = 0;
    if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
        return d;
    }
    return s;
}

// ---- YamlReader ---------------------------------------------------------------------------

void YamlReader::error(const YamlNode& node, const std::string& path, const std::string& message) {
    out_.push_back({Diagnostic::Severity::kError, at(node), path, message});
}

void YamlReader::notice(const YamlNode& node, const std::string& path, const std::string& message) {
    out_.push_back({Diagnostic::Severity::kNotice, at(node), path, message});
}

YamlNode YamlReader::child(const YamlNode& map, const std::string& key, const std::string& where) {
    YamlNode found;
    int count = 0;
    for (const auto& [k, v] : map.entries()) {
        if (k.is_scalar() && k.scalar() == key) {
            if (++count == 2) {
                error(k, where.empty() ? key : where, "duplicate key");
            }
            found = v;
        }
    }
    return found;
}

YamlNode YamlReader::spec(const YamlNode& doc) {
    YamlNode spec = child(doc, "spec");
    if (!spec.is_map()) {
        error(spec.defined() ? spec : doc, "spec", "is required and must be a mapping");
        return {};
    }
    return spec;
}

Source YamlReader::at_key(const YamlNode& map, const std::string& key) const {
    for (const auto& [k, v] : map.entries()) {
        if (k.is_scalar() && k.scalar() == key) {
            return {file_, k.line()};
        }
    }
    return {file_, 0};
}

void YamlReader::only(const YamlNode& map,
                      const std::string& path,
                      std::initializer_list<const char*> allowed) {
    for (const auto& [k, v] : map.entries()) {
        const std::string key = k.is_scalar() ? k.scalar() : "?";
        if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
            std::string known;
            for (const char* a : allowed) {
                known += (known.empty() ? "" : ", ") + std::string(a);
            }
            error(k, join(path, key), "unknown field (known: " + known + ")");
        }
    }
}

bool YamlReader::is_map(const YamlNode& node, const std::string& path) {
    if (node.defined() && !node.null() && !node.is_map()) {
        error(node, path, "must be a mapping");
        return false;
    }
    return node.is_map();
}

bool YamlReader::mapping(const YamlNode& node,
                         const std::string& path,
                         std::initializer_list<const char*> allowed) {
    if (!node.is_map()) {
        error(node, path.empty() ? "(top level)" : path, "must be a mapping");
        return false;
    }
    only(node, path, allowed);
    return true;
}

std::optional<YamlNode> YamlReader::present(const YamlNode& map,
                                            const std::string& key,
                                            const std::string& where,
                                            bool required) {
    const YamlNode node = child(map, key, where);
    if (!node.defined() || node.null()) {
        if (required) {
            error(node.defined() ? node : map, where, "is required");
        }
        return std::nullopt;
    }
    return node;
}

std::optional<std::pair<std::string, YamlNode>> YamlReader::scalar(const YamlNode& map,
                                                                   const std::string& key,
                                                                   const std::string& path) {
    const auto node = present(map, key, join(path, key), false);
    if (!node) {
        return std::nullopt;
    }
    if (!node->is_scalar()) {
        error(*node, join(path, key), "must be a single value");
        return std::nullopt;
    }
    return std::make_pair(node->scalar(), *node);
}

std::optional<std::string> YamlReader::str(const YamlNode& map,
                                           const std::string& key,
                                           const std::string& path,
                                           bool required) {
    const std::string where = join(path, key);
    const auto node = present(map, key, where, required);
    if (!node) {
        return std::nullopt;
    }
    if (!node->is_scalar()) {
        error(*node, where, "must be a string");
        return std::nullopt;
    }
    if (required && node->scalar().empty()) {
        error(*node, where, "must not be empty");
        return std::nullopt;
    }
    return node->scalar();
}

std::optional<std::int64_t> YamlReader::integer(const YamlNode& map,
                                                const std::string& key,
                                                const std::string& path,
                                                bool required) {
    const std::string where = join(path, key);
    const auto node = present(map, key, where, required);
    if (!node) {
        return std::nullopt;
    }
    std::int64_t value = 0;
    const std::string& s = node->scalar();
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (!node->is_scalar() || ec != std::errc() || ptr != s.data() + s.size() || s.empty()) {
        error(*node, where, "must be an integer (got '" + s + "')");
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint64_t> YamlReader::integer_in(const YamlNode& map,
                                                    const std::string& key,
                                                    const std::string& path,
                                                    std::uint64_t low,
                                                    std::uint64_t high) {
    const auto s = scalar(map, key, path);
    if (!s) {
        return std::nullopt;
    }
    const auto v = parse_unsigned(s->first);
    if (!v || *v < low || *v > high) {
        error(s->second, join(path, key),
              "must be an integer from " + std::to_string(low) + " to " + std::to_string(high) +
                  " (got '" + s->first + "')");
        return std::nullopt;
    }
    return v;
}

std::optional<bool> YamlReader::boolean(const YamlNode& map,
                                        const std::string& key,
                                        const std::string& path,
                                        bool required) {
    const std::string where = join(path, key);
    const auto node = present(map, key, where, required);
    if (!node) {
        return std::nullopt;
    }
    const std::string& s = node->scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
        return true;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
        return false;
    }
    error(*node, where, "must be true or false (got '" + s + "')");
    return std::nullopt;
}

std::optional<std::chrono::milliseconds> YamlReader::duration(const YamlNode& map,
                                                              const std::string& key,
                                                              const std::string& path,
                                                              std::chrono::milliseconds low,
                                                              std::chrono::milliseconds high,
                                                              std::string_view bare_unit) {
    const auto s = scalar(map, key, path);
    if (!s) {
        return std::nullopt;
    }
    const std::string& text = s->first;
    const bool bare = !text.empty() && text != "0" &&
                      std::all_of(text.begin(), text.end(),
                                  [](unsigned char ch) { return std::isdigit(ch) != 0; });
    if (bare) {
        error(s->second, join(path, key),
              "'" + text + "' has no unit: write " + text + std::string(bare_unit) +
                  " (a duration carries its unit: ms, s, m or h)");
        return std::nullopt;
    }
    const auto d = parse_duration(text);
    if (!d || *d < low || *d > high) {
        error(s->second, join(path, key),
              "must be a duration such as 500ms, 2s or 1m, at least " + show(low) +
                  " and at most " + show(high) + " (got '" + text + "')");
        return std::nullopt;
    }
    return d;
}

}  // namespace config
