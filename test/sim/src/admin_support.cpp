#include "admin_support.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <regex>

#include <boost/beast/core/detail/base64.hpp>

#include "sim/params.hpp"

namespace sim {

Json Errors::to_json() const {
    Json e = Json::object();
    for (const auto& [field, messages] : errors_) {
        e[field] = messages;
    }
    return Json{{"errors", e}};
}

std::string member_location(const AdminApi::Ctx& c, Id id) {
    std::string path(c.request.path());
    if (path.ends_with(".json")) {
        path.resize(path.size() - 5);
    }
    return c.base + path + "/" + std::to_string(id) + ".json";
}

Response not_found() {
    return Response::json(404, Json{{"status", "Not found"}});
}

Response unprocessable(const Errors& errors) {
    return Response::json(422, errors.to_json());
}

Response refused_delete(const std::string& message) {
    return Response::json(403, Json{{"errors", {{"base", {message}}}}});
}

Response required_missing(const std::string& name) {
    return Response::text(400, "Required parameter missing: " + name);
}

Response created(const std::string& wrapper, const Json& object, const std::string& location) {
    Response r = Response::json(201, Json{{wrapper, object}});
    r.headers.emplace_back("Location", location);
    return r;
}

Response ok(const std::string& wrapper, const Json& object) {
    return Response::json(200, Json{{wrapper, object}});
}

Response deleted() {
    Response r = Response::empty(200);
    return r;
}

std::optional<std::string> read_string(const Params& p, const std::string& name, Errors& errors) {
    const Json* v = p.get(name);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_string()) {
        return v->get<std::string>();
    }
    if (v->is_null()) {
        return std::string{};
    }
    if (v->is_number_integer()) {
        return std::to_string(v->get<std::int64_t>());
    }
    if (v->is_number()) {
        return v->dump();
    }
    if (v->is_boolean()) {
        return v->get<bool>() ? "true" : "false";
    }
    errors.add(name, "is invalid");
    return std::nullopt;
}

std::optional<std::int64_t> read_int(const Params& p, const std::string& name, Errors& errors) {
    const Json* v = p.get(name);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_number_integer()) {
        return v->get<std::int64_t>();
    }
    if (v->is_number_float()) {
        const double d = v->get<double>();
        if (std::floor(d) == d && std::abs(d) < 9e15) {
            return static_cast<std::int64_t>(d);
        }
        errors.add(name, "must be an integer");
        return std::nullopt;
    }
    if (v->is_string()) {
        const auto s = v->get<std::string>();
        static const std::regex kInt(R"(\s*[-+]?\d{1,18}\s*)");
        if (std::regex_match(s, kInt)) {
            return std::stoll(s);
        }
        errors.add(name, "is not a number");
        return std::nullopt;
    }
    errors.add(name, "is not a number");
    return std::nullopt;
}

std::optional<bool> read_bool(const Params& p, const std::string& name, Errors& errors) {
    const Json* v = p.get(name);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_boolean()) {
        return v->get<bool>();
    }
    if (v->is_number_integer()) {
        return v->get<std::int64_t>() != 0;
    }
    if (v->is_string()) {
        const auto s = v->get<std::string>();
        if (s == "true" || s == "1" || s == "t" || s == "on" || s == "yes") {
            return true;
        }
        if (s == "false" || s == "0" || s == "f" || s == "off" || s == "no" || s.empty()) {
            return false;
        }
    }
    errors.add(name, "is not a boolean");
    return std::nullopt;
}

std::optional<double> read_decimal(const Params& p, const std::string& name, Errors& errors) {
    const Json* v = p.get(name);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_number()) {
        return v->get<double>();
    }
    if (v->is_string()) {
        const auto s = v->get<std::string>();
        static const std::regex kDec(R"(\s*[-+]?\d{1,15}(\.\d+)?\s*)");
        if (std::regex_match(s, kDec)) {
            return std::stod(s);
        }
    }
    errors.add(name, "is not a number");
    return std::nullopt;
}

std::optional<Json> read_object(const Params& p, const std::string& name, Errors& errors) {
    const Json* v = p.get(name);
    if (v == nullptr) {
        return std::nullopt;
    }
    Json obj = *v;
    if (obj.is_string()) {
        obj = parse_json(v->get<std::string>());
    }
    if (!obj.is_object()) {
        errors.add(name, "is invalid");
        return std::nullopt;
    }
    for (auto& [key, value] : obj.items()) {
        if (value.is_number() || value.is_boolean()) {
            value = value.dump();
        } else if (!value.is_string() && !value.is_null()) {
            errors.add(name, "is invalid");
            return std::nullopt;
        }
    }
    return obj;
}

bool has_any(const Params& p, std::initializer_list<const char*> names) {
    for (const char* n : names) {
        if (p.has(n)) {
            return true;
        }
    }
    return false;
}

bool valid_system_name(const std::string& s) {
    static const std::regex kSystemName(R"(^\w[\w\-/_]+$)");
    return s.size() <= 255 && std::regex_match(s, kSystemName);
}

std::string parameterize_underscore(const std::string& s) {
    std::string out;
    bool sep = false;
    for (const char c : s) {
        const auto ch = static_cast<unsigned char>(c);
        if (std::isalnum(ch) != 0 || ch == '_') {
            if (sep && !out.empty()) {
                out.push_back('_');
            }
            sep = false;
            out.push_back(static_cast<char>(std::tolower(ch)));
        } else {
            sep = true;
        }
    }
    return out;
}

std::optional<std::string> normalize_endpoint(const std::string& url) {
    static const std::regex kUrl(
        R"(^(https?|wss?)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:(\d{1,5}))?(/[^\s]*)?$)",
        std::regex::icase);
    std::smatch m;
    if (!std::regex_match(url, m, kUrl)) {
        return std::nullopt;
    }
    std::string scheme = m[1].str();
    for (auto& ch : scheme) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    std::string host = m[2].str();
    for (auto& ch : host) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    std::string port = m[4].str();
    if (port.empty()) {
        port = (scheme == "https" || scheme == "wss") ? "443" : "80";
    } else if (std::stoi(port) < 1 || std::stoi(port) > 65535) {
        return std::nullopt;
    }
    return scheme + "://" + host + ":" + port + m[5].str();
}

std::string host_of_endpoint(const std::string& normalized) {
    const auto start = normalized.find("://");
    if (start == std::string::npos) {
        return {};
    }
    std::string rest = normalized.substr(start + 3);
    if (!rest.empty() && rest.front() == '[') {
        return rest.substr(0, rest.find(']') + 1);
    }
    return rest.substr(0, rest.find_first_of(":/"));
}

bool is_localhost(const std::string& host) {
    return host == "localhost" || host.starts_with("127.") || host == "[::1]" || host == "0.0.0.0";
}

std::string format_decimal(double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", value);
    std::string s = buf;
    while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') {
        s.pop_back();
    }
    return s;
}

// Pagination per porta: per_page 1..500 (out of range silently becomes 500), page < 1 is 1,
// "metadata" only when there is more than one page. `bare` lists (backend usages) are arrays.
Response paginate(const Json& params, std::vector<Json> items, const std::string& key, bool bare) {
    std::int64_t per_page = 500;
    std::int64_t page = 1;
    Errors ignored;
    const Params p(params, "");
    if (auto v = read_int(p, "per_page", ignored); v && *v >= 1 && *v <= 500) {
        per_page = *v;
    }
    if (auto v = read_int(p, "page", ignored); v && *v >= 1) {
        page = *v;
    }
    const auto total = static_cast<std::int64_t>(items.size());
    Json list = Json::array();
    const std::int64_t first = (page - 1) * per_page;
    for (std::int64_t i = first; i < total && i < first + per_page; ++i) {
        list.push_back(std::move(items[static_cast<std::size_t>(i)]));
    }
    if (bare) {
        return Response::json(200, list);
    }
    Json body = {{key, std::move(list)}};
    if (per_page < total) {
        body["metadata"] = {{"per_page", per_page},
                            {"total_entries", total},
                            {"total_pages", (total + per_page - 1) / per_page},
                            {"current_page", page}};
    }
    return Response::json(200, body);
}

std::string base64_decode(std::string_view in) {
    namespace b64 = boost::beast::detail::base64;
    std::string out(b64::decoded_size(in.size()), '\0');
    const auto [written, read] = b64::decode(out.data(), in.data(), in.size());
    out.resize(written);
    return out;
}

Json public_fields(const Json& object) {
    Json out = Json::object();
    for (const auto& [key, value] : object.items()) {
        if (!key.starts_with("_")) {
            out[key] = value;
        }
    }
    return out;
}

std::optional<Id> parse_id(const std::string& s) {
    if (s.empty() || s.size() > 18) {
        return std::nullopt;
    }
    for (const char ch : s) {
        if (ch < '0' || ch > '9') {
            return std::nullopt;
        }
    }
    return std::stoll(s);
}

Id id_field(const Json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<Id>() : 0;
}

}  // namespace sim
