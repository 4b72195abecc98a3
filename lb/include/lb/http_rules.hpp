#pragma once

#include <expected>
#include <optional>
#include <string_view>

#include "lb/headers.hpp"

namespace lb {

// The rules of RFC 9110/9112 the balancer enforces on top of Beast's parser, which is lenient
// in places (it accepts any HTTP/x.y, any request-target of printable characters, no Host,
// `Transfer-Encoding: chunked, chunked` as no framing at all, obsolete line folding). A proxy
// that round-robins each request must agree with every cluster on where a request ends and
// what it is for, so anything ambiguous is refused here, before a byte goes upstream. Pure: no
// socket, no clock.

// Why the balancer answers a message itself: the status (400, 501, 505 for a request; a
// response that breaks a rule becomes the client's 502) and a fixed text for the answer's body
// and the log.
struct Refusal {
    unsigned status = 400;
    std::string_view reason;
    bool operator==(const Refusal&) const = default;
};

// What a request's head comes to once checked: what the cluster is sent.
struct RequestShape {
    // The request-target as received (origin-form or "*"); for an absolute-form, what follows
    // its authority (path and query: "/" goes before it when it does not start with "/").
    std::string_view target;
    std::string_view host;          // the authority the request is for
    bool host_from_target = false;  // absolute-form: Host is replaced by its authority
};

// The lines of a message head as received (start line through the blank line): every line
// must end in CRLF (no bare LF), and none may be an obsolete line folding (a line starting with
// SP or HTAB, RFC 9112 §5.2: Beast folds it into the previous value, so a proxy and a cluster
// could disagree about a field).
enum class HeadLines { kOk, kBareLf, kObsFold };
HeadLines check_head_lines(std::string_view raw);

// Whether the first line of `raw` (a request Beast refused with bad_version) names a version
// well-formed but other than 1.0 and 1.1 ("HTTP/2.0", "HTTP/1.2"): a 505, where a garbled one
// (or none: HTTP/0.9) is a 400.
bool names_unsupported_version(std::string_view raw);

// A request head as Beast parsed it: version, method, request-target form, Host, framing.
std::expected<RequestShape, Refusal> check_request(const RequestHead& head);

// A response head from a cluster: version, status and framing the balancer can relay.
std::optional<Refusal> check_response(const ResponseHead& head);

// "host" or "host:port" as RFC 3986 allows it in a Host field or an absolute-form's authority
// (reg-name, IPv4 or [IPv6]; a port of 1-5 digits; no userinfo).
bool valid_authority(std::string_view authority);

}  // namespace lb
