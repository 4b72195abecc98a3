#include "lb/headers.hpp"

#include <algorithm>
#include <charconv>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/container/small_vector.hpp>

namespace lb {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view kXForwardedFor = "X-Forwarded-For";
constexpr std::string_view kXForwardedProto = "X-Forwarded-Proto";

// A few views into a message's fields; on the stack unless a message carries many.
using Views = boost::container::small_vector<std::string_view, 8>;

// Hop-by-hop fields, and Content-Length: the balancer writes the framing itself.
bool is_hop_by_hop(http::field f) {
    switch (f) {
        case http::field::content_length:
        case http::field::connection:
        case http::field::keep_alive:
        case http::field::proxy_connection:
        case http::field::te:
        case http::field::trailer:
        case http::field::transfer_encoding:
        case http::field::upgrade:
            return true;
        default:
            return false;
    }
}

// The field names the Connection fields list (besides the usual close / keep-alive, which
// name no field): those fields are hop-by-hop too. Views into `head`'s storage.
Views connection_named(const Fields& head) {
    Views out;
    auto [it, end] = head.equal_range(http::field::connection);
    for (; it != end; ++it) {
        for (const auto token : http::token_list{it->value()}) {
            if (!boost::beast::iequals(token, "close") &&
                !boost::beast::iequals(token, "keep-alive")) {
                out.emplace_back(token);
            }
        }
    }
    return out;
}

bool contains(const Views& names, std::string_view name) {
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view n) { return boost::beast::iequals(n, name); });
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
}

// Appends the end-to-end fields of `head` (every field but the hop-by-hop ones, the ones the
// Connection fields name and the ones `skip` says no to).
template <class Skip>
void append_end_to_end(const Fields& head, Skip skip, std::string& out) {
    const Views named = connection_named(head);
    for (const auto& f : head) {
        const http::field id = f.name();
        if (is_hop_by_hop(id) || skip(f)) {
            continue;
        }
        if (!named.empty() && contains(named, f.name_string())) {
            continue;
        }
        append_field(out, f.name_string(), f.value());
    }
}

void append_framing(Framing framing, std::optional<std::uint64_t> length, std::string& out) {
    if (framing == Framing::kChunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    } else if (length) {
        char digits[24];
        const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, *length);
        out.append("Content-Length: ");
        out.append(digits, static_cast<std::size_t>(end - digits));
        out.append("\r\n");
    }
}

}  // namespace

ClientAddress::ClientAddress(const Peer& p)
    : peer(p),
      text(p.source.address().to_string()),
      node(p.source.address().is_v6() ? "\"[" + text + "]\"" : text) {}

namespace {
void append_upgrade(std::string_view upgrade, std::string& out) {
    out.append("Connection: upgrade\r\n");
    append_field(out, "Upgrade", upgrade);
}
}  // namespace

void write_request_head(const RequestHead& head,
                        const ClientAddress& client,
                        const RequestRewrite& how,
                        std::string& out) {
    out.clear();
    out.append(head.method_string());
    out.push_back(' ');
    if (how.target != "*" && (how.target.empty() || how.target.front() != '/')) {
        out.push_back('/');
    }
    out.append(how.target);
    out.append(" HTTP/1.1\r\n");
    const bool new_host = !how.host.empty();
    if (new_host) {
        append_field(out, "Host", how.host);
    }
    // Earlier proxies' entries, in order, joined as one list each.
    Views xff;
    Views fwd;
    append_end_to_end(
        head,
        [&](const Fields::value_type& f) {
            if (f.name() != http::field::unknown &&
                boost::beast::iequals(f.name_string(), how.id_header)) {
                return true;  // (a request ID field with a name Beast knows)
            }
            switch (f.name()) {
                case http::field::expect:
                    return how.drop_expect;
                case http::field::host:
                    return new_host;
                case http::field::forwarded:
                    fwd.emplace_back(f.value());
                    return true;
                case http::field::unknown: {
                    const std::string_view name = f.name_string();
                    if (boost::beast::iequals(name, kXForwardedFor)) {
                        xff.emplace_back(f.value());
                        return true;
                    }
                    return boost::beast::iequals(name, kXForwardedProto) ||
                           boost::beast::iequals(name, how.id_header);
                }
                default:
                    return false;
            }
        },
        out);
    const auto append_list = [&out](const Views& list) {
        for (const auto v : list) {
            out.append(v);
            out.append(", ");
        }
    };
    out.append(kXForwardedFor);
    out.append(": ");
    append_list(xff);
    out.append(client.text);
    out.append("\r\n");
    append_field(out, kXForwardedProto, how.proto);
    out.append("Forwarded: ");
    append_list(fwd);
    out.append("for=");
    out.append(client.node);
    out.append(";proto=");
    out.append(how.proto);
    out.append("\r\n");
    if (!how.id_header.empty()) {
        append_field(out, how.id_header, how.id);
    }
    append_framing(how.framing, how.content_length, out);
    if (!how.upgrade.empty()) {
        append_upgrade(how.upgrade, out);
    }
    out.append("\r\n");
}

void write_response_head(const ResponseHead& head, const ResponseRewrite& how, std::string& out) {
    out.clear();
    out.append("HTTP/1.1 ");
    const unsigned status = head.result_int();
    const char digits[3] = {static_cast<char>('0' + status / 100 % 10),
                            static_cast<char>('0' + status / 10 % 10),
                            static_cast<char>('0' + status % 10)};
    out.append(digits, 3);
    out.push_back(' ');
    const std::string_view reason = head.reason();
    out.append(reason.empty() ? std::string_view(http::obsolete_reason(head.result())) : reason);
    out.append("\r\n");
    const bool id = !how.id_header.empty();
    append_end_to_end(
        head,
        [&](const Fields::value_type& f) {
            return id && boost::beast::iequals(f.name_string(), how.id_header);
        },
        out);
    if (id) {
        append_field(out, how.id_header, how.id);
    }
    append_framing(how.framing, how.content_length, out);
    if (!how.upgrade.empty()) {
        append_upgrade(how.upgrade, out);
    } else if (how.connection == ConnectionToken::kClose) {
        out.append("Connection: close\r\n");
    } else if (how.connection == ConnectionToken::kKeepAlive) {
        out.append("Connection: keep-alive\r\n");
    }
    out.append("\r\n");
}

}  // namespace lb
