#include "config/normalize.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <regex>

namespace config {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s;
}

}  // namespace

bool valid_issuer_endpoint(const std::string& url) {
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
        return false;
    }
    const std::size_t start = url.find("://") + 3;
    const std::size_t end = url.find('/', start);
    const std::size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
    const std::string bare =
        at == std::string::npos || at < start ? url : url.substr(0, start) + url.substr(at + 1);
    return normalize_url(bare).has_value();
}

std::string url_problem(const std::string& url) {
    if (normalize_url(url)) {
        return {};
    }
    static const std::regex kScheme(R"(^(https?|wss?)://.*$)", std::regex::icase);
    if (!std::regex_match(url, kScheme)) {
        return "the scheme must be http://, https://, ws:// or wss://";
    }
    const std::string rest = url.substr(url.find("://") + 3);
    const std::string authority = rest.substr(0, rest.find('/'));
    if (authority.find('@') != std::string::npos) {
        return "credentials do not belong in the URL";
    }
    static const std::regex kPort(R"(^(.*[^:]):(\d+)$)");
    std::smatch m;
    if (std::regex_match(authority, m, kPort)) {
        const std::string port = m[2].str();
        if (port.size() > 5 || std::stoi(port) < 1 || std::stoi(port) > 65535) {
            return "port " + port + " is out of range 1..65535";
        }
    }
    if (authority.empty() || authority.starts_with(":")) {
        return "there is no host";
    }
    if (rest.find_first_of(" \t") != std::string::npos) {
        return "a URL has no spaces";
    }
    return "the host must be a name or an address (letters, digits, '.', '-', '_', or [IPv6])";
}

std::optional<std::string> normalize_url(const std::string& url) {
    static const std::regex kUrl(
        R"(^(https?|wss?)://([A-Za-z0-9.\-_]+|\[[0-9A-Fa-f:.]+\])(:(\d{1,5}))?(/[^\s]*)?$)",
        std::regex::icase);
    std::smatch m;
    if (!std::regex_match(url, m, kUrl)) {
        return std::nullopt;
    }
    const std::string scheme = lower(m[1].str());
    const std::string host = lower(m[2].str());
    std::string port = m[4].str();
    if (port.empty()) {
        port = (scheme == "https" || scheme == "wss") ? "443" : "80";
    } else if (const int p = std::stoi(port); p < 1 || p > 65535) {
        return std::nullopt;
    } else {
        port = std::to_string(p);
    }
    return scheme + "://" + host + ":" + port + m[5].str();
}

std::optional<std::string> normalize_decimal(const std::string& text) {
    static const std::regex kDecimal(R"(^\s*(\d{1,16})(\.(\d{1,8}))?\s*$)");
    std::smatch m;
    if (!std::regex_match(text, m, kDecimal)) {
        return std::nullopt;
    }
    std::string integer = m[1].str();
    integer.erase(0, std::min(integer.find_first_not_of('0'), integer.size() - 1));
    std::string fraction = m[3].str();
    while (!fraction.empty() && fraction.back() == '0') {
        fraction.pop_back();
    }
    return integer + "." + (fraction.empty() ? "0" : fraction);
}

bool valid_system_name(const std::string& name) {
    static const std::regex kSystemName(R"(^\w[\w\-/_]+$)");
    return name.size() <= 255 && std::regex_match(name, kSystemName);
}

std::string operator_default_system_name(const std::string& name) {
    std::string out;
    std::copy_if(name.begin(), name.end(), std::back_inserter(out),
                 [](unsigned char ch) { return std::isalnum(ch) != 0; });
    return out;
}

bool valid_mapping_pattern(const std::string& pattern) {
    if (pattern.empty() || pattern.front() != '/' || pattern.size() > 255) {
        return false;
    }
    int depth = 0;
    for (const char ch : pattern) {
        depth += ch == '{' ? 1 : ch == '}' ? -1 : 0;
        if (depth < 0 || depth > 1 || std::isspace(static_cast<unsigned char>(ch)) != 0) {
            return false;
        }
    }
    return depth == 0;
}

bool porta_http_method(const std::string& method) {
    static constexpr std::array<const char*, 7> kMethods = {"GET",   "POST", "PUT",    "DELETE",
                                                            "PATCH", "HEAD", "OPTIONS"};
    return std::find(kMethods.begin(), kMethods.end(), method) != kMethods.end();
}

}  // namespace config
