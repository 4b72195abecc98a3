// Active health checks: a probe loop per endpoint, recorded with rise/fall hysteresis.
#include "health_checker.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "h2_session.hpp"
#include "log.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// A check's request and the response header, over a plain or a TLS stream: the stage that
// failed ("send" or "response") and why, or no error.
template <class Stream>
asio::awaitable<std::pair<const char*, error_code>> check_exchange(
    Stream& stream,
    const http::request<http::empty_body>& req,
    beast::flat_buffer& buffer,
    http::response_parser<http::empty_body>& parser) {
    auto [wec, wn] = co_await http::async_write(stream, req, kNoThrow);
    if (wec) {
        co_return std::pair<const char*, error_code>{"send", wec};
    }
    auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
    co_return std::pair<const char*, error_code>{"response", rec};
}

// The same over HTTP/2 (an h2 cluster): the connection preface, the request on stream 1 and the
// response head's status.
template <class Stream>
asio::awaitable<std::pair<const char*, error_code>> check_exchange_h2(Stream& stream,
                                                                      const H2RequestHead& head,
                                                                      unsigned& status) {
    unsigned got = 0;
    bool closed = false;
    H2Session::Events ev;
    ev.response = [&got](H2ResponseHead h) { got = h.status; };
    ev.closed = [&closed](std::int32_t /*stream*/, std::uint32_t /*error*/) { closed = true; };
    auto session = H2Session::client(H2Limits{}, std::move(ev));
    if (!session || session->request(head) == 0) {
        co_return std::pair<const char*, error_code>{
            "send", make_error_code(boost::system::errc::not_enough_memory)};
    }
    std::string in(16 * 1024, '\0');
    for (;;) {
        const std::string out = session->output();
        if (!out.empty()) {
            auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(out), kNoThrow);
            if (wec) {
                co_return std::pair<const char*, error_code>{"send", wec};
            }
        }
        if (got != 0) {
            status = got;
            co_return std::pair<const char*, error_code>{"response", {}};
        }
        if (closed) {  // reset before a response head
            co_return std::pair<const char*, error_code>{"response", asio::error::connection_reset};
        }
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(in), kNoThrow);
        if (rec) {
            co_return std::pair<const char*, error_code>{"response", rec};
        }
        if (!session->receive(std::string_view(in.data(), n))) {
            co_return std::pair<const char*, error_code>{
                "response", make_error_code(boost::system::errc::protocol_error)};
        }
    }
}

}  // namespace

HealthChecker::HealthChecker(asio::io_context& ctx, OnTransition on_transition)
    : ctx_(ctx), on_transition_(std::move(on_transition)), rng_(std::random_device{}()) {}

void HealthChecker::start(const PlanePtr& p, std::size_t c, const EndpointPtr& ep) {
    if (p->config.health_check.enabled) {
        asio::co_spawn(ctx_, check_loop(p, c, ep), asio::detached);
    }
}

std::chrono::milliseconds HealthChecker::jittered(const HealthCheckConfig& hc,
                                                  std::chrono::milliseconds base) {
    const auto spread = base.count() * hc.jitter_percent / 100;
    if (spread <= 0) {
        return base;
    }
    std::uniform_int_distribution<std::int64_t> d(-spread, spread);
    return base + std::chrono::milliseconds(d(rng_));
}

asio::awaitable<void> HealthChecker::check_loop(PlanePtr p, std::size_t c, EndpointPtr ep) {
    const auto& hc = p->config.health_check;
    // Spread the first checks so endpoints are not probed in lockstep.
    std::uniform_int_distribution<std::int64_t> first_delay(
        0, std::min<std::int64_t>(hc.interval.count(), 100));
    auto delay = std::chrono::milliseconds(first_delay(rng_));
    while (!stopped_ && !p->retired && ep->active) {
        ep->timer.expires_after(delay);
        co_await ep->timer.async_wait(kNoThrow);
        if (stopped_ || p->retired || !ep->active) {
            break;
        }
        ProbeResult result = co_await probe(p, c, ep);
        if (stopped_ || p->retired || !ep->active) {
            break;
        }
        record(*p, c, *ep, result);
        delay =
            jittered(hc, ep->health.up() ? hc.interval : hc.down_interval.value_or(hc.interval));
    }
}

asio::awaitable<ProbeResult> HealthChecker::probe(PlanePtr p, std::size_t c, EndpointPtr ep) {
    const auto& hc = p->config.health_check;
    const auto start = std::chrono::steady_clock::now();
    auto stream = std::make_shared<beast::tcp_stream>(ctx_);
    ep->probe = stream;
    ProbeResult out;
    const auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const auto failed = [&](const char* stage, const error_code& ec, std::string detail = {}) {
        out.seconds = elapsed();
        out.error = std::string(stage) + ": " +
                    (ec == beast::error::timeout
                         ? "timed out after " + std::to_string(hc.timeout.count()) + "ms"
                     : detail.empty() ? ec.message()
                                      : std::move(detail));
        return out;
    };
    const ClusterConfig& cluster = *p->clusters[c].config;
    stream->expires_after(hc.timeout);  // one deadline for connect, handshake and exchange
    auto [cec] = co_await stream->async_connect(ep->address, kNoThrow);
    if (!cec && cluster.proxy_protocol) {
        // A router behind the PROXY protocol wants it on every connection: a check has no
        // client, so the LOCAL form (v1: PROXY UNKNOWN).
        const std::string header = proxy_header_local(*cluster.proxy_protocol);
        auto [pec, pn] = co_await asio::async_write(*stream, asio::buffer(header), kNoThrow);
        cec = pec;
    }
    if (cec) {
        ep->probe.reset();
        co_return failed("connect", cec);
    }
    http::request<http::empty_body> req{http::string_to_verb(hc.method), hc.path, 11};
    req.set(http::field::host, hc.host.value_or(cluster.address.host));
    req.set(http::field::user_agent, "tandem-lb-health-check");
    req.set(http::field::connection, "close");
    beast::flat_buffer buffer(64 * 1024);
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // the status is all a check needs
    const bool h2 = cluster.protocol == ClusterProtocol::kH2;
    H2RequestHead h2_head;
    if (h2) {
        h2_head.method = hc.method;
        h2_head.scheme = p->tls[c] ? "https" : "http";
        h2_head.authority = hc.host.value_or(cluster.address.host);
        h2_head.path = hc.path;
        h2_head.fields = {{"user-agent", "tandem-lb-health-check"}};
        h2_head.end_stream = true;
    }
    unsigned status = 0;
    std::pair<const char*, error_code> sent;
    if (p->tls[c]) {
        asio::ssl::stream<beast::tcp_stream&> secure(*stream, *p->tls[c]);
        prepare_tls(secure, cluster);
        auto [hec] = co_await secure.async_handshake(asio::ssl::stream_base::client, kNoThrow);
        if (hec) {
            ep->probe.reset();
            co_return failed("tls", hec, tls_failure(hec, secure.native_handle(), cluster));
        }
        if (h2 && !negotiated_h2(secure.native_handle())) {
            ep->probe.reset();
            co_return failed("tls", asio::error::no_protocol_option,
                             "the cluster did not agree to h2 by ALPN (protocol: h2 needs it)");
        }
        if (h2) {  // (if/else around co_await, not ?:: GCC 12)
            sent = co_await check_exchange_h2(secure, h2_head, status);
        } else {
            sent = co_await check_exchange(secure, req, buffer, parser);
        }
    } else if (h2) {
        sent = co_await check_exchange_h2(*stream, h2_head, status);
    } else {
        sent = co_await check_exchange(*stream, req, buffer, parser);
    }
    const auto [stage, ec] = sent;
    error_code ignored;
    stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream->close();
    ep->probe.reset();
    if (ec) {
        co_return failed(stage, ec);
    }
    out.status = h2 ? status : parser.get().result_int();
    out.seconds = elapsed();
    out.ok = std::any_of(hc.expect.begin(), hc.expect.end(), [&](const StatusRange& r) {
        return out.status >= r.low && out.status <= r.high;
    });
    if (!out.ok) {
        out.error = "unexpected status " + std::to_string(out.status);
    }
    co_return out;
}

void HealthChecker::record(Plane& p, std::size_t c, EndpointState& ep, const ProbeResult& result) {
    ep.checked = true;
    ep.last = result;
    ep.last_at = std::chrono::system_clock::now();
    ++ep.checks;
    if (!result.ok) {
        ++ep.failures;
    }
    p.metrics.health_check(c, ep.label, result.ok, result.seconds);
    const auto t = ep.health.record(result.ok);
    if (t == Transition::kNone) {
        return;
    }
    const bool up = t == Transition::kWentUp;
    p.metrics.endpoint_state(c, ep.label, up);
    p.metrics.endpoint_transition(c, ep.label, up);
    log_line(
        up ? LogLevel::kInfo : LogLevel::kWarn,
        "cluster " + p.clusters[c].config->name + ": endpoint " + ep.label + " is " +
            (up ? "UP" : "DOWN") + " (" +
            (result.ok ? "check passed, status " + std::to_string(result.status) : result.error) +
            ")");
    on_transition_(p);
}

}  // namespace lb
