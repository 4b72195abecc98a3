// Host routing: which route a request's Host takes (first match wins).
#include "lb/routes.hpp"

#include <algorithm>
#include <cctype>

namespace lb {

std::string route_host(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        host = host.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
    } else if (const auto colon = host.rfind(':');
               colon != std::string_view::npos && host.find(':') == colon) {
        host = host.substr(0, colon);  // (one colon: a port; more: a bare IPv6 address)
    }
    if (!host.empty() && host.back() == '.') {
        host.remove_suffix(1);
    }
    std::string out(host);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool host_matches(std::string_view pattern, std::string_view host) {
    if (pattern == "*") {
        return true;
    }
    if (pattern.starts_with("*.")) {
        const auto suffix = pattern.substr(1);  // ".example.com"
        return host.size() > suffix.size() && host.ends_with(suffix);
    }
    return pattern == host;
}

std::optional<std::size_t> match_route(const std::vector<RouteConfig>& routes,
                                       std::string_view host) {
    if (routes.empty()) {
        return 0;
    }
    const std::string h = route_host(host);
    for (std::size_t i = 0; i < routes.size(); ++i) {
        for (const auto& p : routes[i].hosts) {
            if (host_matches(p, h)) {
                return i;
            }
        }
    }
    return std::nullopt;
}

const char* route_policy_name(RoutePolicy p) {
    return p == RoutePolicy::kPrimary ? "primary" : "roundRobin";
}

}  // namespace lb
