#include "lb/http_rules.hpp"

#include <cstring>

#include <boost/beast/core/string.hpp>

namespace lb {

namespace http = boost::beast::http;

namespace {

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c) {
    if (is_alpha(c) || is_digit(c)) {
        return true;
    }
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// RFC 3986 reg-name characters besides pct-encoded: unreserved and sub-delims.
bool is_reg_name_char(char c) {
    return is_alpha(c) || is_digit(c) || (c != '\0' && std::strchr("-._~!$&'()*+,;=", c));
}

// Every byte is visible ASCII (no space, control, DEL or non-ASCII), no fragment, and every
// '%' starts a well-formed escape.
bool valid_target_chars(std::string_view t) {
    for (std::size_t i = 0; i < t.size(); ++i) {
        const auto c = static_cast<unsigned char>(t[i]);
        if (c <= 0x20 || c >= 0x7f || c == '#') {
            return false;
        }
        if (c == '%') {
            if (i + 2 >= t.size() || !is_hex(t[i + 1]) || !is_hex(t[i + 2])) {
                return false;
            }
            i += 2;
        }
    }
    return true;
}

bool valid_port(std::string_view p) {
    if (p.empty() || p.size() > 5) {
        return false;
    }
    unsigned v = 0;
    for (const char c : p) {
        if (!is_digit(c)) {
            return false;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v <= 65535;
}

bool valid_reg_name(std::string_view h) {
    if (h.empty()) {
        return false;
    }
    for (std::size_t i = 0; i < h.size(); ++i) {
        if (h[i] == '%') {
            if (i + 2 >= h.size() || !is_hex(h[i + 1]) || !is_hex(h[i + 2])) {
                return false;
            }
            i += 2;
        } else if (!is_reg_name_char(h[i])) {
            return false;
        }
    }
    return true;
}

// The codings a message's Transfer-Encoding fields list, all lines joined (RFC 9112 §6.1).
struct Codings {
    bool present = false;
    bool malformed = false;     // an element that is not a token
    unsigned chunked = 0;       // how many times chunked is listed
    bool chunked_last = false;  // ... and whether it is the final coding
    bool other = false;         // a coding besides chunked
};

Codings codings_of(const Fields& fields) {
    Codings c;
    auto [it, end] = fields.equal_range(http::field::transfer_encoding);
    for (; it != end; ++it) {
        c.present = true;
        std::string_view v = it->value();
        while (!v.empty()) {
            const auto comma = v.find(',');
            std::string_view e = v.substr(0, comma);
            v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
            while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) {
                e.remove_prefix(1);
            }
            while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) {
                e.remove_suffix(1);
            }
            if (e.empty()) {
                continue;  // empty list elements are ignored (RFC 9110 §5.6.1)
            }
            for (const char ch : e) {
                if (!is_tchar(ch)) {
                    c.malformed = true;
                }
            }
            const bool chunked = boost::beast::iequals(e, "chunked");
            c.chunked += chunked ? 1 : 0;
            c.other = c.other || !chunked;
            c.chunked_last = chunked;
        }
    }
    return c;
}

// The authority of an absolute-form target ("http://host:port/path?q"), its origin-form rest
// (at least "/") in `rest`; nullopt when it is not http(s) or the authority is empty.
std::optional<std::string_view> absolute_authority(std::string_view target,
                                                   std::string_view& rest) {
    const auto colon = target.find("://");
    if (colon == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view scheme = target.substr(0, colon);
    if (!boost::beast::iequals(scheme, "http") && !boost::beast::iequals(scheme, "https")) {
        return std::nullopt;
    }
    const std::string_view after = target.substr(colon + 3);
    const auto end = after.find_first_of("/?");
    const std::string_view authority = after.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : after.substr(end);
    return authority;
}

constexpr Refusal kMethod{400, "malformed method: methods are upper-case letters, '-' and '_'"};
constexpr Refusal kConnect{501, "CONNECT is not supported: tandem-lb is a reverse proxy"};
constexpr Refusal kNoHost{400, "missing Host field (HTTP/1.1 requires exactly one)"};
constexpr Refusal kHostTwice{400, "more than one Host field"};
constexpr Refusal kBadHost{400, "malformed Host field (expected host or host:port)"};
constexpr Refusal kAsterisk{400, "the request-target * is only for OPTIONS"};
constexpr Refusal kTargetForm{
    400,
    "malformed request-target: expected /path (origin-form), http(s)://authority/path "
    "(absolute-form) or * (OPTIONS)"};
constexpr Refusal kTargetChars{400,
                               "malformed request-target: a fragment, a malformed %-escape or "
                               "a character that must be %-encoded"};
constexpr Refusal kAbsoluteAuthority{
    400, "malformed authority in the absolute-form request-target (expected host or host:port)"};
constexpr Refusal kTeOnHttp10{400, "Transfer-Encoding in an HTTP/1.0 message"};
constexpr Refusal kTeAndLength{400, "both Transfer-Encoding and Content-Length"};
constexpr Refusal kTeMalformed{400, "malformed Transfer-Encoding"};
constexpr Refusal kChunkedTwice{400, "Transfer-Encoding lists chunked more than once"};
constexpr Refusal kChunkedNotLast{
    400, "Transfer-Encoding without chunked as the final coding: the body's end is unknown"};
constexpr Refusal kCodingUnsupported{
    501, "transfer coding not implemented: only Transfer-Encoding: chunked is accepted"};

std::optional<Refusal> check_request_framing(const RequestHead& head) {
    const Codings c = codings_of(head);
    if (!c.present) {
        return std::nullopt;
    }
    if (head.version() < 11) {
        return kTeOnHttp10;
    }
    if (head.find(http::field::content_length) != head.end()) {
        return kTeAndLength;
    }
    if (c.malformed) {
        return kTeMalformed;
    }
    if (c.chunked > 1) {
        return kChunkedTwice;
    }
    if (c.chunked == 0 || !c.chunked_last) {
        return kChunkedNotLast;
    }
    if (c.other) {
        return kCodingUnsupported;
    }
    return std::nullopt;
}

}  // namespace

HeadLines check_head_lines(std::string_view raw) {
    std::size_t pos = 0;
    while (pos < raw.size()) {
        const void* found = std::memchr(raw.data() + pos, '\n', raw.size() - pos);
        if (found == nullptr) {
            break;
        }
        const auto i = static_cast<std::size_t>(static_cast<const char*>(found) - raw.data());
        if (i == 0 || raw[i - 1] != '\r') {
            return HeadLines::kBareLf;
        }
        if (i + 1 < raw.size() && (raw[i + 1] == ' ' || raw[i + 1] == '\t')) {
            return HeadLines::kObsFold;
        }
        pos = i + 1;
    }
    return HeadLines::kOk;
}

bool names_unsupported_version(std::string_view raw) {
    const auto eol = raw.find("\r\n");
    if (eol == std::string_view::npos) {
        return false;
    }
    const std::string_view line = raw.substr(0, eol);
    static constexpr std::string_view kHttp = " HTTP/";
    if (line.size() < kHttp.size() + 3 || line.find(' ') == line.size() - 9) {
        return false;  // too short, or no request-target before the version
    }
    const std::string_view v = line.substr(line.size() - 9);
    return v.substr(0, kHttp.size()) == kHttp && is_digit(v[6]) && v[7] == '.' && is_digit(v[8]) &&
           !(v[6] == '1' && (v[8] == '0' || v[8] == '1'));
}

bool valid_authority(std::string_view a) {
    if (!a.empty() && a.front() == '[') {
        const auto close = a.find(']');
        if (close == std::string_view::npos || close < 3) {
            return false;
        }
        for (const char c : a.substr(1, close - 1)) {
            if (!is_hex(c) && c != ':' && c != '.') {
                return false;
            }
        }
        const std::string_view after = a.substr(close + 1);
        return after.empty() || (after.front() == ':' && valid_port(after.substr(1)));
    }
    const auto colon = a.find(':');
    if (colon == std::string_view::npos) {
        return valid_reg_name(a);
    }
    return valid_reg_name(a.substr(0, colon)) && valid_port(a.substr(colon + 1));
}

std::expected<RequestShape, Refusal> check_request(const RequestHead& head) {
    const std::string_view method = head.method_string();
    for (const char c : method) {
        if (!(c >= 'A' && c <= 'Z') && c != '-' && c != '_') {
            return std::unexpected(kMethod);
        }
    }
    if (head.method() == http::verb::connect) {
        return std::unexpected(kConnect);
    }
    // Exactly one valid Host (RFC 9112 §3.2; an HTTP/1.0 request too: it is forwarded as
    // HTTP/1.1, and 3scale routes by Host).
    RequestShape shape;
    {
        auto [it, end] = head.equal_range(http::field::host);
        if (it == end) {
            return std::unexpected(kNoHost);
        }
        shape.host = it->value();
        if (++it != end) {
            return std::unexpected(kHostTwice);
        }
        if (!valid_authority(shape.host)) {
            return std::unexpected(kBadHost);
        }
    }
    const std::string_view target = head.target();
    shape.target = target;
    if (target == "*") {
        if (head.method() != http::verb::options) {
            return std::unexpected(kAsterisk);
        }
    } else if (!target.empty() && target.front() == '/') {
        if (!valid_target_chars(target)) {
            return std::unexpected(kTargetChars);
        }
    } else {
        // Absolute-form (RFC 9112 §3.2.2): its authority replaces Host before anything looks at
        // it, and the cluster is sent the origin-form.
        std::string_view rest;
        const auto authority = absolute_authority(target, rest);
        if (!authority) {
            return std::unexpected(kTargetForm);
        }
        if (!valid_authority(*authority)) {
            return std::unexpected(kAbsoluteAuthority);
        }
        if (!valid_target_chars(rest)) {
            return std::unexpected(kTargetChars);
        }
        shape.host = *authority;
        shape.host_from_target = true;
        shape.target = rest;
    }
    if (auto framing = check_request_framing(head)) {
        return std::unexpected(*framing);
    }
    return shape;
}

std::optional<Refusal> check_response(const ResponseHead& head) {
    const unsigned version = head.version();
    if (version != 10 && version != 11) {
        return Refusal{502, "the cluster answered in an HTTP version other than 1.0 or 1.1"};
    }
    const unsigned status = head.result_int();
    if (status < 100 || status > 599) {
        return Refusal{502, "the cluster answered with a status outside 100-599"};
    }
    const Codings c = codings_of(head);
    if (c.present && (version < 11 || c.malformed || c.other || c.chunked != 1)) {
        return Refusal{502,
                       "the cluster's response is framed by a Transfer-Encoding other than "
                       "chunked"};
    }
    return std::nullopt;
}

}  // namespace lb
