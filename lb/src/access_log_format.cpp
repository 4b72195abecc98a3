#include "lb/access_log_format.hpp"

#include <charconv>
#include <cmath>
#include <ctime>
#include <optional>

#include <boost/beast/core/string.hpp>

namespace lb {

namespace {

constexpr std::string_view kRedacted = "<redacted>";
constexpr char kHex[] = "0123456789abcdef";

int unhex(char c) {
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

// Whether the query parameter name `raw` (as sent: %-escaped, '+' for space) is one of `names`.
bool named(std::string_view raw, const std::vector<std::string>& names) {
    std::string decoded;
    if (raw.find_first_of("%+") != std::string_view::npos) {
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '%' && i + 2 < raw.size() && unhex(raw[i + 1]) >= 0 &&
                unhex(raw[i + 2]) >= 0) {
                decoded.push_back(static_cast<char>(unhex(raw[i + 1]) * 16 + unhex(raw[i + 2])));
                i += 2;
            } else {
                decoded.push_back(raw[i] == '+' ? ' ' : raw[i]);
            }
        }
        raw = decoded;
    }
    for (const auto& n : names) {
        if (boost::beast::iequals(raw, n)) {
            return true;
        }
    }
    return false;
}

bool sensitive_header(std::string_view name, const std::vector<std::string>& names) {
    for (const std::string_view always : {"authorization", "proxy-authorization", "cookie"}) {
        if (boost::beast::iequals(name, always)) {
            return true;
        }
    }
    for (const auto& n : names) {
        if (boost::beast::iequals(name, n)) {
            return true;
        }
    }
    return false;
}

// `s` with quotes and backslashes escaped, and every byte outside printable ASCII written as
// `prefix` and two hex digits: JSON's \u00XX (the log stays valid UTF-8 whatever a client sent),
// or the common format's \xXX (nginx's).
void append_escaped(std::string& out, std::string_view s, std::string_view prefix) {
    std::size_t run = 0;  // start of the bytes still to copy as they are
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            continue;
        }
        out.append(s.data() + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else {
            out.append(prefix);
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xf]);
        }
    }
    out.append(s.data() + run, s.size() - run);
}
void append_json(std::string& out, std::string_view s) {
    append_escaped(out, s, "\\u00");
}
void append_clf(std::string& out, std::string_view s) {
    append_escaped(out, s, "\\x");
}

template <class Append>
void append_redacted_with(std::string_view target,
                          const std::vector<std::string>& names,
                          std::string& out,
                          Append append) {
    const auto q = target.find('?');
    if (q == std::string_view::npos || names.empty()) {
        append(out, target);
        return;
    }
    append(out, target.substr(0, q + 1));
    std::string_view rest = target.substr(q + 1);
    for (bool first = true;; first = false) {
        const auto amp = rest.find('&');
        const std::string_view param = rest.substr(0, amp);
        if (!first) {
            out.push_back('&');
        }
        const auto eq = param.find('=');
        if (eq != std::string_view::npos && named(param.substr(0, eq), names)) {
            append(out, param.substr(0, eq + 1));
            out.append(kRedacted);
        } else {
            append(out, param);
        }
        if (amp == std::string_view::npos) {
            break;
        }
        rest = rest.substr(amp + 1);
    }
}

void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(end - buf));
}

// Seconds as milliseconds with three decimals ("1.235"), from whole microseconds.
void append_millis(std::string& out, double seconds) {
    const auto us = static_cast<std::uint64_t>(std::llround(seconds * 1e6));
    append_number(out, us / 1000);
    const auto frac = static_cast<unsigned>(us % 1000);
    const char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                            static_cast<char>('0' + frac / 10 % 10),
                            static_cast<char>('0' + frac % 10)};
    out.append(digits, 4);
}

// The time of a line; the second's text is cached per thread (one gmtime per second).
struct TimeText {
    std::time_t second = -1;
    char iso[20]{};  // 2026-12-06T08:00:00
    char clf[27]{};  // 06/Dec/2026:08:00:00 +0000
};

const TimeText& time_text(std::chrono::system_clock::time_point t) {
    thread_local TimeText cache;
    const std::time_t sec = std::chrono::system_clock::to_time_t(t);
    if (sec != cache.second) {
        std::tm tm{};
        ::gmtime_r(&sec, &tm);
        std::strftime(cache.iso, sizeof cache.iso, "%Y-%m-%dT%H:%M:%S", &tm);
        std::strftime(cache.clf, sizeof cache.clf, "%d/%b/%Y:%H:%M:%S +0000", &tm);
        cache.second = sec;
    }
    return cache;
}

void append_protocol(std::string& out, unsigned version) {
    out.append("HTTP/");
    out.push_back(static_cast<char>('0' + version / 10));
    out.push_back('.');
    out.push_back(static_cast<char>('0' + version % 10));
}

// Every value of the request's field `name`, joined by ", " (nullopt: none).
std::optional<std::string> field_values(const RequestHead* head, std::string_view name) {
    if (head == nullptr) {
        return std::nullopt;
    }
    std::optional<std::string> v;
    for (const auto& f : *head) {
        if (boost::beast::iequals(f.name_string(), name)) {
            if (v) {
                v->append(", ");
                v->append(f.value());
            } else {
                v.emplace(f.value());
            }
        }
    }
    return v;
}

void field(std::string& out, std::string_view name, std::string_view value) {
    out.append(",\"");
    out.append(name);
    out.append("\":\"");
    append_json(out, value);
    out.push_back('"');
}

void format_json(const AccessRecord& r, const AccessLogConfig& config, std::string& out) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.time.time_since_epoch()).count() %
        1000;
    out.append("{\"time\":\"");
    out.append(time_text(r.time).iso);
    out.push_back('.');
    out.push_back(static_cast<char>('0' + ms / 100));
    out.push_back(static_cast<char>('0' + ms / 10 % 10));
    out.push_back(static_cast<char>('0' + ms % 10));
    out.append("Z\"");
    field(out, "client", r.client);
    field(out, "method", r.method);
    out.append(",\"path\":\"");
    append_redacted_with(r.target, config.redact_query, out, append_json);
    out.append("\",\"protocol\":\"");
    append_protocol(out, r.version);
    out.push_back('"');
    field(out, "host", r.host);
    out.append(",\"status\":");
    append_number(out, r.status);
    out.append(",\"bytes_in\":");
    append_number(out, r.bytes_in);
    out.append(",\"bytes_out\":");
    append_number(out, r.bytes_out);
    out.append(",\"duration_ms\":");
    append_millis(out, r.seconds);
    out.append(",\"upstream_ms\":");
    if (r.upstream_seconds >= 0) {
        append_millis(out, r.upstream_seconds);
    } else {
        out.append("null");
    }
    if (!r.route.empty()) {
        field(out, "route", r.route);
    }
    field(out, "cluster", r.cluster);
    field(out, "endpoint", r.endpoint);
    out.append(",\"retries\":");
    append_number(out, r.retries);
    field(out, "request_id", r.request_id);
    field(out, "tls", r.tls);
    field(out, "reason", r.reason);
    bool any = false;
    for (const auto& name : config.headers) {
        const auto value = field_values(r.head, name);
        if (!value) {
            continue;
        }
        out.append(any ? ",\"" : ",\"headers\":{\"");
        any = true;
        for (const char c : name) {
            out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
        }
        out.append("\":\"");
        if (sensitive_header(name, config.redact_query)) {
            out.append(kRedacted);
        } else {
            append_json(out, *value);
        }
        out.push_back('"');
    }
    if (any) {
        out.push_back('}');
    }
    out.append("}\n");
}

void format_clf(const AccessRecord& r, const AccessLogConfig& config, std::string& out) {
    out.append(r.client);
    out.append(" - - [");
    out.append(time_text(r.time).clf);
    out.append("] \"");
    if (r.method.empty()) {
        out.push_back('-');
    } else {
        append_clf(out, r.method);
        out.push_back(' ');
        append_redacted_with(r.target, config.redact_query, out, append_clf);
        out.push_back(' ');
        append_protocol(out, r.version);
    }
    out.append("\" ");
    append_number(out, r.status);
    out.push_back(' ');
    if (r.bytes_out == 0) {
        out.push_back('-');
    } else {
        append_number(out, r.bytes_out);
    }
    if (config.format == AccessLogConfig::Format::kCombined) {
        out.append(" \"");
        if (const auto referer = field_values(r.head, "Referer")) {
            append_redacted_with(*referer, config.redact_query, out, append_clf);
        } else {
            out.push_back('-');
        }
        out.append("\" \"");
        if (const auto agent = field_values(r.head, "User-Agent")) {
            append_clf(out, *agent);
        } else {
            out.push_back('-');
        }
        out.push_back('"');
    }
    out.push_back('\n');
}

}  // namespace

void append_redacted_target(std::string_view target,
                            const std::vector<std::string>& names,
                            std::string& out) {
    append_redacted_with(target, names, out,
                         [](std::string& o, std::string_view s) { o.append(s); });
}

void format_access_line(const AccessRecord& r, const AccessLogConfig& config, std::string& out) {
    if (config.format == AccessLogConfig::Format::kJson) {
        format_json(r, config, out);
    } else {
        format_clf(r, config, out);
    }
}

}  // namespace lb
