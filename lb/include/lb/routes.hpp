#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lb/config.hpp"

namespace lb {

// A request's Host as routes compare it: lower-case, without its port or a trailing dot
// ("API.Example.com.:8080" -> "api.example.com"; "[::1]:80" -> "::1").
std::string route_host(std::string_view host);

// Whether a route's host pattern takes `host` (already route_host'd): the exact name, "*.suffix"
// (any name under it, not the suffix itself) or "*" (everything).
bool host_matches(std::string_view pattern, std::string_view host);

// The index of the first route whose hosts take `host`; with no routes configured, 0 (the
// implicit catch-all); nullopt when routes exist and none takes it. Pure.
std::optional<std::size_t> match_route(const std::vector<RouteConfig>& routes,
                                       std::string_view host);

// "primary" / "roundRobin".
const char* route_policy_name(RoutePolicy p);

}  // namespace lb
