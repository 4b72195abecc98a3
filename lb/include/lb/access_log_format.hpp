#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "lb/config.hpp"
#include "lb/headers.hpp"

namespace lb {

// One request as the access log sees it (views into the exchange's state, valid while the line
// is written).
struct AccessRecord {
    std::chrono::system_clock::time_point time;  // when the request began
    std::string_view client;                     // the client's address
    std::string_view method;                     // "" when no request line was read
    std::string_view target;                     // as received: redacted when written
    unsigned version = 11;
    std::string_view host;
    std::string_view route;        // the routes: entry it took ("" without routes)
    unsigned status = 0;           // 0: no answer (the client went away first)
    std::uint64_t bytes_in = 0;    // request body bytes received
    std::uint64_t bytes_out = 0;   // response body bytes sent
    double seconds = 0;            // the whole exchange
    double upstream_seconds = -1;  // until the cluster's response head; < 0: none
    std::string_view cluster;      // "" when no cluster answered
    std::string_view endpoint;
    unsigned retries = 0;
    std::string_view request_id;
    std::string_view tls;               // "TLSv1.3", or "" over plain HTTP
    std::string_view reason;            // why the balancer answered itself ("" when a cluster did)
    const RequestHead* head = nullptr;  // the request's fields (logged headers, combined format)
};

// Appends `r` as one line (and its newline) to `out`, in `config`'s format:
// - json: {"time":"2026-12-06T08:00:00.123Z","client":"192.0.2.7","method":"GET",
//   "path":"/v1?user_key=<redacted>","protocol":"HTTP/1.1","host":"api.example.com",
//   "status":200,"bytes_in":0,"bytes_out":12,"duration_ms":1.204,"upstream_ms":1.1,
//   "route":"portal","cluster":"east","endpoint":"10.0.0.1:80","retries":0,"request_id":"…","tls":"",
//   "reason":"","headers":{"user-agent":"curl/7.88.1"}} — strings escaped for JSON (a byte
//   outside ASCII as \u00XX), "headers" only with headers listed;
// - common: 192.0.2.7 - - [06/Dec/2026:08:00:00 +0000] "GET /v1?user_key=<redacted> HTTP/1.1"
//   200 12; combined adds "referer" "user-agent" (quotes and backslashes escaped, other
//   bytes outside printable ASCII as \xXX, as nginx does).
// Query parameters named in redact_query (compared after %-decoding, ignoring case) keep their
// name and lose their value; a logged header named there, or Authorization, Cookie or
// Proxy-Authorization, is written as <redacted>; the Referer's query likewise.
void format_access_line(const AccessRecord& r, const AccessLogConfig& config, std::string& out);

// `target` with the values of the query parameters named in `names` replaced by <redacted>,
// appended to `out` (the path and the other parameters as they were).
void append_redacted_target(std::string_view target,
                            const std::vector<std::string>& names,
                            std::string& out);

}  // namespace lb
