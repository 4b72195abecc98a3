#include "sim/params.hpp"

#include <cctype>

namespace sim {

namespace {

constexpr std::size_t kMaxParamDepth = 8;
constexpr std::size_t kMaxParams = 10000;

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Splits "a[b][]" into {"a", "b", ""}; nullopt when the brackets are unbalanced.
std::optional<std::vector<std::string>> split_key(const std::string& key) {
    std::vector<std::string> parts;
    const auto open = key.find('[');
    parts.push_back(key.substr(0, open));
    std::size_t pos = open;
    while (pos != std::string::npos && pos < key.size()) {
        if (key[pos] != '[') {
            return std::nullopt;
        }
        const auto close = key.find(']', pos);
        if (close == std::string::npos) {
            return std::nullopt;
        }
        parts.push_back(key.substr(pos + 1, close - pos - 1));
        pos = close + 1;
        if (pos < key.size() && key[pos] != '[') {
            return std::nullopt;
        }
    }
    if (parts.size() > kMaxParamDepth) {
        return std::nullopt;
    }
    return parts;
}

// Rack's normalize_params: a "[]" part appends, a named part nests an object.
bool assign(Json& node, const std::vector<std::string>& parts, std::size_t i, std::string value) {
    const std::string& name = parts[i];
    const bool last = i + 1 == parts.size();
    if (!node.is_object()) {
        return false;
    }
    if (last) {
        node[name] = std::move(value);
        return true;
    }
    if (parts[i + 1].empty()) {  // name[]
        Json& arr = node[name];
        if (arr.is_null()) {
            arr = Json::array();
        }
        if (!arr.is_array()) {
            return false;
        }
        if (i + 2 == parts.size()) {
            arr.push_back(std::move(value));
            return true;
        }
        // name[][child]=v: start a new element when the child is already set.
        if (arr.empty() || !arr.back().is_object() || arr.back().contains(parts[i + 2])) {
            arr.push_back(Json::object());
        }
        return assign(arr.back(), parts, i + 2, std::move(value));
    }
    Json& child = node[name];
    if (child.is_null()) {
        child = Json::object();
    }
    return assign(child, parts, i + 1, std::move(value));
}

}  // namespace

Json parse_json(std::string_view text, std::size_t max_depth) {
    std::size_t depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char ch : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (ch == '\\') {
                escaped = true;
            } else if (ch == '"') {
                in_string = false;
            }
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max_depth) {
                return Json(Json::value_t::discarded);
            }
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            --depth;
        }
    }
    return Json::parse(text, nullptr, false);
}

std::optional<std::string> url_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%') {
            if (i + 2 >= in.size()) {
                return std::nullopt;
            }
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) {
                return std::nullopt;
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::expected<Json, std::string> parse_form(std::string_view text) {
    Json root = Json::object();
    std::size_t count = 0;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const std::string_view pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        if (++count > kMaxParams) {
            return std::unexpected("too many parameters");
        }
        const auto eq = pair.find('=');
        auto key = url_decode(pair.substr(0, eq));
        auto value = eq == std::string_view::npos ? std::optional<std::string>{""}
                                                  : url_decode(pair.substr(eq + 1));
        if (!key || !value) {
            return std::unexpected("invalid %-encoding in parameters");
        }
        if (key->empty()) {
            continue;
        }
        auto parts = split_key(*key);
        if (!parts || parts->front().empty()) {
            return std::unexpected("invalid parameter name: " + *key);
        }
        if (!assign(root, *parts, 0, std::move(*value))) {
            return std::unexpected("conflicting types for parameter: " + *key);
        }
    }
    return root;
}

std::expected<Json, std::string> parse_request_params(const Request& request) {
    auto params = parse_form(request.query());
    if (!params) {
        return params;
    }
    if (request.body.empty()) {
        return params;
    }
    std::string_view ctype = request.header("content-type");
    if (const auto semi = ctype.find(';'); semi != std::string_view::npos) {
        ctype = ctype.substr(0, semi);
    }
    while (!ctype.empty() && ctype.back() == ' ') {
        ctype.remove_suffix(1);
    }
    Json body;
    if (ctype == "application/json") {
        body = parse_json(request.body);
        if (body.is_discarded()) {
            return std::unexpected("malformed or too deeply nested JSON body");
        }
        if (!body.is_object()) {
            // Rails puts a non-object JSON document under "_json"; nothing here reads it.
            body = Json{{"_json", std::move(body)}};
        }
    } else if (ctype.empty() || ctype == "application/x-www-form-urlencoded") {
        auto form = parse_form(request.body);
        if (!form) {
            return form;
        }
        body = std::move(*form);
    } else {
        return std::unexpected("unsupported content type: " + std::string(ctype));
    }
    for (auto& [key, value] : body.items()) {
        (*params)[key] = std::move(value);
    }
    return params;
}

const Json* Params::get(std::string_view name) const {
    const std::string key(name);
    if (!wrapper_.empty()) {
        const auto w = root_.find(wrapper_);
        if (w != root_.end() && w->is_object()) {
            const auto it = w->find(key);
            if (it != w->end()) {
                return &*it;
            }
        }
    }
    const auto it = root_.find(key);
    return it == root_.end() ? nullptr : &*it;
}

bool Params::wrapper_has_wrong_type() const {
    if (wrapper_.empty()) {
        return false;
    }
    const auto w = root_.find(wrapper_);
    return w != root_.end() && !w->is_object();
}

}  // namespace sim
