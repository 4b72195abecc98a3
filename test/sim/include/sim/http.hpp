#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sim {

using Json = nlohmann::json;

// A transport-neutral HTTP request, so that the admin API, the gateway and the control API can be
// exercised without sockets. Header names are stored lower-case.
struct Request {
    std::string method;  // "GET", "POST", ...
    std::string target;  // path and query, as received
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    [[nodiscard]] std::string_view header(std::string_view lower_name) const;
    [[nodiscard]] std::string_view path() const;
    [[nodiscard]] std::string_view query() const;
};

struct Response {
    unsigned status = 200;
    std::string content_type = "application/json; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    static Response json(unsigned status, const Json& body);
    static Response text(unsigned status, std::string body);
    static Response empty(unsigned status);
};

}  // namespace sim
