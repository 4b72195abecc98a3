#include "lb/headers.hpp"

#include <array>
#include <vector>

#include <boost/beast/core/string.hpp>

namespace lb {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view kXForwardedFor = "X-Forwarded-For";
constexpr std::string_view kXForwardedProto = "X-Forwarded-Proto";

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) {
        return {};
    }
    const auto e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

bool is_hop_by_hop(http::field f) {
    switch (f) {
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
class Named {
public:
    explicit Named(const Fields& head) {
        auto [it, end] = head.equal_range(http::field::connection);
        for (; it != end; ++it) {
            std::string_view value = it->value();
            while (!value.empty()) {
                const auto comma = value.find(',');
                const std::string_view token = trim(value.substr(0, comma));
                if (!token.empty() && !boost::beast::iequals(token, "close") &&
                    !boost::beast::iequals(token, "keep-alive")) {
                    add(token);
                }
                value = comma == std::string_view::npos ? std::string_view{}
                                                        : value.substr(comma + 1);
            }
        }
    }
    [[nodiscard]] bool contains(std::string_view name) const {
        for (std::size_t i = 0; i < size_ && i < inline_.size(); ++i) {
            if (boost::beast::iequals(inline_[i], name)) {
                return true;
            }
        }
        for (const auto n : more_) {
            if (boost::beast::iequals(n, name)) {
                return true;
            }
        }
        return false;
    }
    [[nodiscard]] bool empty() const { return size_ == 0; }

private:
    void add(std::string_view token) {
        if (size_ < inline_.size()) {
            inline_[size_] = token;
        } else {
            more_.push_back(token);
        }
        ++size_;
    }
    std::array<std::string_view, 8> inline_{};
    std::vector<std::string_view> more_;
    std::size_t size_ = 0;
};

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
    const Named named(head);
    for (const auto& f : head) {
        const http::field id = f.name();
        if (is_hop_by_hop(id) || skip(f)) {
            continue;
        }
        if (!named.empty() && named.contains(f.name_string())) {
            continue;
        }
        append_field(out, f.name_string(), f.value());
    }
}

void append_framing(Framing framing, std::string& out) {
    if (framing == Framing::kChunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
}

}  // namespace

ClientAddress::ClientAddress(const boost::asio::ip::address& address)
    : text(address.to_string()),
      node(address.is_v6() ? "\"[" + text + "]\"" : text) {}

void write_request_head(const RequestHead& head, const ClientAddress& client,
                        std::string_view proto, Framing framing, bool drop_expect,
                        std::string& out) {
    out.clear();
    out.append(head.method_string());
    out.push_back(' ');
    out.append(head.target());
    out.append(" HTTP/1.1\r\n");
    // Earlier proxies' entries, in order, joined as one list each.
    std::array<std::string_view, 4> xff{};
    std::array<std::string_view, 4> fwd{};
    std::size_t nxff = 0;
    std::size_t nfwd = 0;
    std::string overflow_xff;  // only when a request carries more than four such fields
    std::string overflow_fwd;
    const auto remember = [](std::string_view v, auto& inline_list, std::size_t& n,
                             std::string& overflow) {
        if (n < inline_list.size()) {
            inline_list[n++] = v;
        } else {
            overflow.append(", ");
            overflow.append(v);
        }
    };
    append_end_to_end(
        head,
        [&](const Fields::value_type& f) {
            switch (f.name()) {
                case http::field::expect:
                    return drop_expect;
                case http::field::forwarded:
                    remember(f.value(), fwd, nfwd, overflow_fwd);
                    return true;
                case http::field::unknown: {
                    const std::string_view name = f.name_string();
                    if (boost::beast::iequals(name, kXForwardedFor)) {
                        remember(f.value(), xff, nxff, overflow_xff);
                        return true;
                    }
                    return boost::beast::iequals(name, kXForwardedProto);
                }
                default:
                    return false;
            }
        },
        out);
    const auto append_list = [&out](const auto& list, std::size_t n, const std::string& overflow) {
        for (std::size_t i = 0; i < n; ++i) {
            out.append(list[i]);
            out.append(", ");
        }
        if (!overflow.empty()) {
            out.append(std::string_view(overflow).substr(2));
            out.append(", ");
        }
    };
    out.append(kXForwardedFor);
    out.append(": ");
    append_list(xff, nxff, overflow_xff);
    out.append(client.text);
    out.append("\r\n");
    append_field(out, kXForwardedProto, proto);
    out.append("Forwarded: ");
    append_list(fwd, nfwd, overflow_fwd);
    out.append("for=");
    out.append(client.node);
    out.append(";proto=");
    out.append(proto);
    out.append("\r\n");
    append_framing(framing, out);
    out.append("\r\n");
}

void write_response_head(const ResponseHead& head, Framing framing, ConnectionToken connection,
                         std::string& out) {
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
    append_end_to_end(head, [](const Fields::value_type& /*unused*/) { return false; }, out);
    append_framing(framing, out);
    if (connection == ConnectionToken::kClose) {
        out.append("Connection: close\r\n");
    } else if (connection == ConnectionToken::kKeepAlive) {
        out.append("Connection: keep-alive\r\n");
    }
    out.append("\r\n");
}

}  // namespace lb
