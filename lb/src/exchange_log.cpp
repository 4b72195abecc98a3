// One proxied request, its access log line: what the exchange knows at its end, formatted by
// the pure formatter (lb/access_log_format.hpp) into the worker's buffer, which the writer
// thread empties into the file (access_log.hpp). Nothing here waits.
#include <charconv>
#include <cstring>

#include <arpa/inet.h>

#include "exchange_state.hpp"
#include "lb/access_log_format.hpp"

namespace lb {

namespace http = boost::beast::http;

// "10.0.0.1:80", "[2001:db8::1]:80" into `buf`, without allocating (an IPv4 address by hand:
// glibc's inet_ntop formats it with sprintf).
std::string_view endpoint_text(const boost::asio::ip::tcp::endpoint& e, char (&buf)[64]) {
    const auto a = e.address();
    char* p = buf;
    char* const end = buf + sizeof buf;
    if (a.is_v4()) {
        const auto bytes = a.to_v4().to_bytes();
        for (std::size_t i = 0; i < 4; ++i) {
            p = std::to_chars(p, end, bytes[i]).ptr;
            *p++ = i < 3 ? '.' : ':';
        }
    } else {
        const auto bytes = a.to_v6().to_bytes();
        *p++ = '[';
        ::inet_ntop(AF_INET6, bytes.data(), p, 46);
        p += std::strlen(p);
        *p++ = ']';
        *p++ = ':';
    }
    p = std::to_chars(p, end, e.port()).ptr;
    return {buf, static_cast<std::size_t>(p - buf)};
}

template <class Stream>
void Exchange<Stream>::record() {
    if (!rp_.got_some()) {
        return;  // a connection that ended between requests: no request to log
    }
    const auto& config = cx_.config.access_log;
    const unsigned status = reply_status_ != 0 ? reply_status_ : status_;
    if (!cx_.log.sampled(config.sample_percent, status, reply_status_ != 0)) {
        return;
    }
    AccessRecord r;
    r.client = client_address_.text;
    if (rp_.is_header_done()) {
        const auto& req = rp_.get();
        r.method = req.method_string();
        r.target = req.target();
        r.version = req.version();
        r.host = host_.empty() ? std::string_view(req[http::field::host]) : host_;
        r.head = &req;
    }
    r.status = status;
    r.bytes_in = body_in_;
    r.bytes_out = body_out_;
    r.request_id = request_id_;
    if constexpr (kTls) {
        r.tls = SSL_get_version(client_.native_handle());
    }
    if (reply_status_ != 0) {
        r.reason = reply_text_;
    } else if (!failure_.empty()) {
        r.reason = failure_;
    } else if (status_ == 0) {
        r.reason = "no answer: the client went away or the balancer stopped";
    }
    write_access_line(cx_, r, started_, upstream_at_, rp_.is_header_done() ? route_ : std::nullopt,
                      at_);
}

void write_access_line(ExchangeContext& cx,
                       AccessRecord& r,
                       Clock::time_point started,
                       Clock::time_point upstream_at,
                       std::optional<std::size_t> route,
                       const Attempt& at) {
    const auto now = Clock::now();
    r.time = std::chrono::system_clock::now() -
             std::chrono::duration_cast<std::chrono::system_clock::duration>(now - started);
    r.seconds = std::chrono::duration<double>(now - started).count();
    if (upstream_at != Clock::time_point{}) {
        r.upstream_seconds = std::chrono::duration<double>(upstream_at - started).count();
    }
    if (route && *route < cx.config.routes.size()) {
        r.route = cx.config.routes[*route].name;
    }
    char endpoint[64];
    if (at.chosen()) {
        r.cluster = at.cluster_name();
        r.endpoint = endpoint_text(at.endpoint(), endpoint);
    }
    r.retries = at.retries();
    auto& line = cx.log.line;
    line.clear();
    format_access_line(r, cx.config.access_log, line);
    cx.metrics.access_log(cx.log.sink->append(line));
}

template void Exchange<Socket>::record();
template void Exchange<TlsClient>::record();

}  // namespace lb
