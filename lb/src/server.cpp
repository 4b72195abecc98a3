// The main context: listeners, DNS refreshes (c-ares), active health checks, snapshot
// publication to the workers, the admin listener and graceful shutdown.
#include "lb/server.hpp"

#include <random>
#include <set>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "lb/health_state.hpp"
#include "lb/resolver.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "snapshot.hpp"
#include "tls.hpp"
#include "worker.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Json = nlohmann::json;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

std::string endpoint_label(const tcp::endpoint& e) {
    const auto a = e.address();
    return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(e.port())
                     : a.to_string() + ":" + std::to_string(e.port());
}

std::string iso8601(std::chrono::system_clock::time_point t) {
    const auto secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

struct ProbeResult {
    bool ok = false;
    unsigned status = 0;
    double seconds = 0;
    std::string error;
};

// A health check's request and the response header, over a plain or a TLS stream: the stage
// that failed ("send" or "response") and why, or no error.
template <class Stream>
asio::awaitable<std::pair<const char*, error_code>> check_exchange(
    Stream& stream, const http::request<http::empty_body>& req, beast::flat_buffer& buffer,
    http::response_parser<http::empty_body>& parser) {
    auto [wec, wn] = co_await http::async_write(stream, req, kNoThrow);
    if (wec) {
        co_return std::pair<const char*, error_code>{"send", wec};
    }
    auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
    co_return std::pair<const char*, error_code>{"response", rec};
}

}  // namespace

struct Server::Impl {
    struct EndpointState {
        EndpointState(asio::io_context& ctx, tcp::endpoint a, const HealthCheckConfig& hc)
            : address(a), label(endpoint_label(a)), health(hc.rise, hc.fall, Health::kUp),
              timer(ctx) {}
        tcp::endpoint address;
        std::string label;
        HealthState health;
        asio::steady_timer timer;
        bool active = true;
        std::shared_ptr<beast::tcp_stream> probe;
        bool checked = false;
        ProbeResult last;
        std::chrono::system_clock::time_point last_at{};
        std::uint64_t checks = 0;
        std::uint64_t failures = 0;
    };
    using EndpointPtr = std::shared_ptr<EndpointState>;

    struct ClusterState {
        const ClusterConfig* config = nullptr;
        bool is_ip = false;
        std::vector<EndpointPtr> endpoints;
        bool healthy = true;
        std::unique_ptr<asio::steady_timer> dns_timer;
        std::string dns_error;
        std::chrono::system_clock::time_point dns_at{};
        std::chrono::seconds dns_ttl{0};
        std::uint64_t dns_failures = 0;
    };

    explicit Impl(LbConfig c)
        : config(std::move(c)),
          threads(config.threads != 0 ? config.threads
                                      : std::max(1u, std::thread::hardware_concurrency())),
          metrics(cluster_names(config), threads),
          admin(ctx),
          signals(ctx, SIGTERM, SIGINT),
          drain_timer(ctx),
          rng(std::random_device{}()) {}

    static std::vector<std::string> cluster_names(const LbConfig& c) {
        std::vector<std::string> out;
        for (const auto& cl : c.clusters) {
            out.push_back(cl.name);
        }
        return out;
    }

    LbConfig config;
    unsigned threads;
    asio::io_context ctx{1};
    Metrics metrics;
    std::unique_ptr<Resolver> resolver;
    std::vector<ClusterState> clusters;
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<TlsContextPtr> tls;  // per cluster; nullptr where TLS is off
    tcp::acceptor admin;
    asio::signal_set signals;
    asio::steady_timer drain_timer;
    std::mt19937 rng;
    std::uint64_t generation = 0;
    bool draining = false;
    bool finished = false;
    unsigned drained = 0;
    std::set<std::shared_ptr<beast::tcp_stream>> admin_sessions;
    std::set<asio::steady_timer*> resolving;  // resolutions in flight, woken at shutdown
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    tcp::endpoint listen_endpoint;
    int exit_code = 0;

    // ---- startup ----------------------------------------------------------------------------

    // open, SO_REUSEADDR (and SO_REUSEPORT for the workers' sockets), bind, listen.
    static error_code open_listener(tcp::acceptor& a, const tcp::endpoint& ep, bool reuse_port) {
        error_code ec;
        a.open(ep.protocol(), ec);
        if (!ec) {
            a.set_option(asio::socket_base::reuse_address(true), ec);
        }
        if (!ec && reuse_port) {
            a.set_option(ReusePort(true), ec);
        }
        if (!ec) {
            a.bind(ep, ec);
        }
        if (!ec) {
            a.listen(asio::socket_base::max_listen_connections, ec);
        }
        return ec;
    }

    std::vector<tcp::acceptor::native_handle_type> bind_listeners(std::string& error) {
        std::vector<tcp::acceptor::native_handle_type> fds;
        error_code ec;
        const auto address = asio::ip::make_address(config.listen.host, ec);
        tcp::endpoint ep(address, config.listen.port);
        for (unsigned i = 0; i < threads; ++i) {
            tcp::acceptor a(ctx);
            if (ec = open_listener(a, ep, true); ec) {
                error = "cannot listen on " + config.listen.to_string() + ": " + ec.message();
                for (auto fd : fds) {
                    ::close(fd);
                }
                return {};
            }
            if (i == 0) {
                ep = a.local_endpoint(ec);  // port 0: the others join the port the first got
                listen_endpoint = ep;
            }
            fds.push_back(a.release());
        }
        return fds;
    }

    bool bind_admin(std::string& error) {
        error_code ec;
        const tcp::endpoint ep(asio::ip::make_address(config.admin.host, ec), config.admin.port);
        if (ec = open_listener(admin, ep, false); ec) {
            error = "cannot listen on admin " + config.admin.to_string() + ": " + ec.message();
            return false;
        }
        return true;
    }

    // One resolution as an awaitable: the callback (always posted, so it runs after this
    // coroutine is suspended) stores the result and wakes the timer.
    asio::awaitable<Resolution> resolve(std::string host) {
        struct Wait {
            explicit Wait(asio::io_context& c) : timer(c, asio::steady_timer::time_point::max()) {}
            asio::steady_timer timer;
            std::optional<Resolution> result;
        };
        auto wait = std::make_shared<Wait>(ctx);
        resolver->resolve(host, [wait](Resolution r) {
            wait->result = std::move(r);
            wait->timer.cancel();
        });
        resolving.insert(&wait->timer);
        while (!wait->result && !finished) {
            co_await wait->timer.async_wait(kNoThrow);
        }
        resolving.erase(&wait->timer);
        if (!wait->result) {
            co_return Resolution{false, "shutting down", {}, {}};
        }
        co_return std::move(*wait->result);
    }

    asio::awaitable<void> startup(std::ostream& ready) {
        // The first resolution of every hostname, all at once, before serving.
        std::vector<std::size_t> pending;
        for (std::size_t c = 0; c < clusters.size(); ++c) {
            if (!clusters[c].is_ip) {
                pending.push_back(c);
            }
        }
        std::size_t left = pending.size();
        asio::steady_timer wake(ctx, asio::steady_timer::time_point::max());
        for (const auto c : pending) {
            asio::co_spawn(
                ctx,
                [this, c, &left, &wake]() -> asio::awaitable<void> {
                    auto r = co_await resolve(clusters[c].config->address.host);
                    apply_resolution(c, r, false);
                    if (--left == 0) {
                        wake.cancel();
                    }
                },
                asio::detached);
        }
        if (left > 0) {
            co_await wake.async_wait(kNoThrow);
        }
        auto first = build_snapshot();
        for (auto& w : workers) {
            w->start(first);
        }
        for (std::size_t c = 0; c < clusters.size(); ++c) {
            for (const auto& ep : clusters[c].endpoints) {
                start_checks(c, ep);
            }
            if (!clusters[c].is_ip) {
                asio::co_spawn(ctx, dns_loop(c), asio::detached);
            }
        }
        asio::co_spawn(ctx, admin_loop(), asio::detached);
        signals.async_wait([this](error_code ec, int sig) { on_signal(ec, sig); });
        ready << "tandem-lb ready listen=" << endpoint_label(listen_endpoint)
              << " admin=" << endpoint_label(admin.local_endpoint()) << " workers=" << threads
              << std::endl;
        log_line(LogLevel::kInfo, "listening on " + endpoint_label(listen_endpoint) + ", admin on " +
                                      endpoint_label(admin.local_endpoint()) + ", " +
                                      std::to_string(threads) + " workers, " +
                                      std::to_string(clusters.size()) + " clusters");
    }

    // ---- DNS --------------------------------------------------------------------------------

    std::chrono::milliseconds next_refresh(const ClusterState& cl, bool ok) const {
        if (!ok) {
            return config.dns.retry;
        }
        const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(cl.dns_ttl);
        return std::clamp(ttl, config.dns.min_ttl, config.dns.max_ttl);
    }

    asio::awaitable<void> dns_loop(std::size_t c) {
        auto& cl = clusters[c];
        cl.dns_timer = std::make_unique<asio::steady_timer>(ctx);
        auto delay = next_refresh(cl, cl.dns_error.empty());
        while (!finished) {
            cl.dns_timer->expires_after(delay);
            co_await cl.dns_timer->async_wait(kNoThrow);
            if (finished) {
                break;
            }
            auto r = co_await resolve(cl.config->address.host);
            if (finished) {
                break;
            }
            apply_resolution(c, r, true);
            delay = next_refresh(cl, r.ok);
        }
    }

    void apply_resolution(std::size_t c, const Resolution& r, bool publish_changes) {
        auto& cl = clusters[c];
        metrics.dns_result(c, r.ok);
        cl.dns_at = std::chrono::system_clock::now();
        if (!r.ok) {
            ++cl.dns_failures;
            cl.dns_error = r.error;
            log_line(LogLevel::kWarn, "cluster " + cl.config->name + ": resolving " +
                                          cl.config->address.host + " failed (" + r.error +
                                          "); keeping the last good answer (" +
                                          std::to_string(cl.endpoints.size()) + " endpoints)");
            return;
        }
        cl.dns_error.clear();
        cl.dns_ttl = r.ttl;
        std::set<tcp::endpoint> wanted;
        for (const auto& a : r.addresses) {
            wanted.emplace(a, cl.config->address.port);
        }
        bool changed = false;
        std::erase_if(cl.endpoints, [&](const EndpointPtr& ep) {
            if (wanted.contains(ep->address)) {
                return false;
            }
            retire(c, ep);
            changed = true;
            return true;
        });
        for (const auto& w : wanted) {
            const bool known = std::any_of(cl.endpoints.begin(), cl.endpoints.end(),
                                           [&](const EndpointPtr& ep) { return ep->address == w; });
            if (!known) {
                auto ep = std::make_shared<EndpointState>(ctx, w, config.health_check);
                cl.endpoints.push_back(ep);
                metrics.endpoint_state(c, ep->label, true);
                log_line(LogLevel::kInfo, "cluster " + cl.config->name + ": endpoint " +
                                              ep->label + " added (DNS, TTL " +
                                              std::to_string(r.ttl.count()) + "s)");
                if (publish_changes) {
                    start_checks(c, ep);
                }
                changed = true;
            }
        }
        if (changed && publish_changes) {
            publish();
        }
    }

    void retire(std::size_t c, const EndpointPtr& ep) {
        ep->active = false;
        ep->timer.cancel();
        if (ep->probe) {
            ep->probe->close();
        }
        metrics.endpoint_removed(c, ep->label);
        log_line(LogLevel::kInfo, "cluster " + clusters[c].config->name + ": endpoint " +
                                      ep->label + " removed (no longer in DNS)");
    }

    // ---- health checks ----------------------------------------------------------------------

    void start_checks(std::size_t c, const EndpointPtr& ep) {
        if (config.health_check.enabled) {
            asio::co_spawn(ctx, check_loop(c, ep), asio::detached);
        }
    }

    std::chrono::milliseconds jittered(std::chrono::milliseconds base) {
        const auto spread = base.count() * config.health_check.jitter_percent / 100;
        if (spread <= 0) {
            return base;
        }
        std::uniform_int_distribution<std::int64_t> d(-spread, spread);
        return base + std::chrono::milliseconds(d(rng));
    }

    asio::awaitable<void> check_loop(std::size_t c, EndpointPtr ep) {
        const auto& hc = config.health_check;
        // Spread the first checks so endpoints are not probed in lockstep.
        std::uniform_int_distribution<std::int64_t> first(0, std::min<std::int64_t>(
                                                                 hc.interval.count(), 100));
        auto delay = std::chrono::milliseconds(first(rng));
        while (!finished && ep->active) {
            ep->timer.expires_after(delay);
            co_await ep->timer.async_wait(kNoThrow);
            if (finished || !ep->active) {
                break;
            }
            ProbeResult result = co_await probe(c, ep);
            if (finished || !ep->active) {
                break;
            }
            record(c, *ep, result);
            delay = jittered(ep->health.up() ? hc.interval : hc.down_interval.value_or(hc.interval));
        }
    }

    asio::awaitable<ProbeResult> probe(std::size_t c, EndpointPtr ep) {
        const auto& hc = config.health_check;
        const auto start = std::chrono::steady_clock::now();
        auto stream = std::make_shared<beast::tcp_stream>(ctx);
        ep->probe = stream;
        ProbeResult out;
        const auto elapsed = [&] {
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        const auto failed = [&](const char* stage, const error_code& ec,
                                std::string detail = {}) {
            out.seconds = elapsed();
            out.error = std::string(stage) + ": " +
                        (ec == beast::error::timeout
                             ? "timed out after " + std::to_string(hc.timeout.count()) + "ms"
                         : detail.empty() ? ec.message()
                                          : std::move(detail));
            return out;
        };
        const ClusterConfig& cluster = *clusters[c].config;
        stream->expires_after(hc.timeout);  // one deadline for connect, handshake and exchange
        auto [cec] = co_await stream->async_connect(ep->address, kNoThrow);
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
        std::pair<const char*, error_code> sent;
        if (tls[c]) {
            asio::ssl::stream<beast::tcp_stream&> secure(*stream, *tls[c]);
            prepare_tls(secure, cluster);
            auto [hec] =
                co_await secure.async_handshake(asio::ssl::stream_base::client, kNoThrow);
            if (hec) {
                ep->probe.reset();
                co_return failed("tls", hec, tls_failure(hec, secure.native_handle(), cluster));
            }
            sent = co_await check_exchange(secure, req, buffer, parser);
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
        out.status = parser.get().result_int();
        out.seconds = elapsed();
        out.ok = std::any_of(hc.expect.begin(), hc.expect.end(), [&](const StatusRange& r) {
            return out.status >= r.low && out.status <= r.high;
        });
        if (!out.ok) {
            out.error = "unexpected status " + std::to_string(out.status);
        }
        co_return out;
    }

    void record(std::size_t c, EndpointState& ep, const ProbeResult& result) {
        ep.checked = true;
        ep.last = result;
        ep.last_at = std::chrono::system_clock::now();
        ++ep.checks;
        if (!result.ok) {
            ++ep.failures;
        }
        metrics.health_check(c, ep.label, result.ok, result.seconds);
        const auto t = ep.health.record(result.ok);
        if (t == Transition::kNone) {
            return;
        }
        const bool up = t == Transition::kWentUp;
        metrics.endpoint_state(c, ep.label, up);
        metrics.endpoint_transition(c, ep.label, up);
        log_line(up ? LogLevel::kInfo : LogLevel::kWarn,
                 "cluster " + clusters[c].config->name + ": endpoint " + ep.label + " is " +
                     (up ? "UP" : "DOWN") + " (" +
                     (result.ok ? "check passed, status " + std::to_string(result.status)
                                : result.error) +
                     ")");
        publish();
    }

    // ---- snapshots --------------------------------------------------------------------------

    SnapshotPtr build_snapshot() {
        auto s = std::make_shared<Snapshot>();
        s->generation = ++generation;
        for (std::size_t c = 0; c < clusters.size(); ++c) {
            auto& cl = clusters[c];
            Snapshot::Cluster out;
            bool any = false;
            for (const auto& ep : cl.endpoints) {
                out.endpoints.push_back({ep->address, ep->health.up()});
                any = any || ep->health.up();
            }
            if (any != cl.healthy) {
                log_line(any ? LogLevel::kInfo : LogLevel::kWarn,
                         "cluster " + cl.config->name +
                             (any ? " is healthy again" : " is DOWN: no endpoint passes its checks"));
            }
            cl.healthy = any;
            metrics.cluster_state(c, any, cl.endpoints.size());
            s->clusters.push_back(std::move(out));
        }
        return s;
    }

    void publish() {
        auto s = build_snapshot();
        for (auto& w : workers) {
            w->publish(s);
        }
    }

    bool any_healthy() const {
        return std::any_of(clusters.begin(), clusters.end(),
                           [](const ClusterState& c) { return c.healthy; });
    }

    // ---- admin ------------------------------------------------------------------------------

    asio::awaitable<void> admin_loop() {
        while (!finished) {
            auto [ec, socket] = co_await admin.async_accept(kNoThrow);
            if (ec) {
                if (finished || ec == asio::error::operation_aborted) {
                    break;
                }
                continue;
            }
            auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
            admin_sessions.insert(stream);
            asio::co_spawn(ctx, admin_session(stream), asio::detached);
        }
    }

    asio::awaitable<void> admin_session(std::shared_ptr<beast::tcp_stream> stream) {
        beast::flat_buffer buffer(16 * 1024);
        for (;;) {
            http::request_parser<http::empty_body> parser;
            parser.header_limit(8 * 1024);
            stream->expires_after(std::chrono::seconds(10));
            auto [ec, n] = co_await http::async_read(*stream, buffer, parser, kNoThrow);
            if (ec) {
                break;
            }
            const auto& req = parser.get();
            auto res = route(req);
            res.keep_alive(req.keep_alive() && !finished);
            res.prepare_payload();
            stream->expires_after(std::chrono::seconds(10));
            auto [wec, wn] = co_await http::async_write(*stream, res, kNoThrow);
            if (wec || !res.keep_alive()) {
                break;
            }
        }
        error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream->close();
        admin_sessions.erase(stream);
    }

    http::response<http::string_body> route(const http::request<http::empty_body>& req) {
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::server, "tandem-lb");
        res.set(http::field::cache_control, "no-store");
        const auto target = std::string_view(req.target().data(), req.target().size());
        const auto path = target.substr(0, target.find('?'));
        const auto text = [&](http::status s, std::string body) {
            res.result(s);
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = std::move(body);
        };
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            text(http::status::method_not_allowed, "only GET and HEAD\n");
            res.set(http::field::allow, "GET, HEAD");
        } else if (path == "/healthz") {
            if (draining) {
                text(http::status::service_unavailable, "draining\n");
            } else if (any_healthy()) {
                text(http::status::ok, "ok\n");
            } else {
                text(http::status::service_unavailable, "no healthy cluster\n");
            }
        } else if (path == "/status") {
            res.set(http::field::content_type, "application/json");
            res.body() = status_json().dump(2) + "\n";
        } else if (path == "/metrics") {
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.body() = metrics.serialize();
        } else {
            text(http::status::not_found, "not found: try /healthz, /status or /metrics\n");
        }
        if (req.method() == http::verb::head) {
            const auto size = res.body().size();
            res.body().clear();
            res.content_length(size);
        }
        return res;
    }

    Json status_json() {
        Json out;
        out["status"] = draining ? "draining" : any_healthy() ? "ok" : "no healthy cluster";
        out["uptime_seconds"] =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                             started)
                .count();
        out["listen"] = endpoint_label(listen_endpoint);
        out["workers"] = threads;
        out["generation"] = generation;
        out["client_connections"] = metrics.client_connections();
        Json list = Json::array();
        for (std::size_t c = 0; c < clusters.size(); ++c) {
            const auto& cl = clusters[c];
            Json j;
            j["name"] = cl.config->name;
            j["address"] = cl.config->address.to_string();
            j["weight"] = cl.config->weight;
            j["backup"] = cl.config->backup;
            j["healthy"] = cl.healthy;
            j["in_flight"] = metrics.in_flight(c);
            j["pool_idle"] = metrics.pool_idle(c);
            if (!cl.is_ip) {
                Json dns;
                dns["host"] = cl.config->address.host;
                dns["last_resolution"] = iso8601(cl.dns_at);
                dns["ttl_seconds"] = cl.dns_ttl.count();
                dns["failures"] = cl.dns_failures;
                dns["error"] = cl.dns_error.empty() ? Json() : Json(cl.dns_error);
                j["dns"] = dns;
            }
            Json eps = Json::array();
            for (const auto& ep : cl.endpoints) {
                Json e;
                e["address"] = ep->label;
                e["healthy"] = ep->health.up();
                e["health_counter"] = ep->health.counter();
                e["checks"] = ep->checks;
                e["failed_checks"] = ep->failures;
                if (ep->checked) {
                    Json last;
                    last["at"] = iso8601(ep->last_at);
                    last["passed"] = ep->last.ok;
                    last["status"] = ep->last.status;
                    last["latency_ms"] = std::round(ep->last.seconds * 100000.0) / 100.0;
                    last["error"] = ep->last.error.empty() ? Json() : Json(ep->last.error);
                    e["last_check"] = last;
                } else {
                    e["last_check"] = nullptr;
                }
                eps.push_back(e);
            }
            j["endpoints"] = eps;
            list.push_back(j);
        }
        out["clusters"] = list;
        return out;
    }

    // ---- shutdown ---------------------------------------------------------------------------

    void on_signal(const error_code& ec, int sig) {
        if (ec || finished) {
            return;
        }
        if (draining) {
            log_line(LogLevel::kWarn, "second signal: cancelling in-flight requests now");
            for (auto& w : workers) {
                w->stop_now();
            }
        } else {
            draining = true;
            log_line(LogLevel::kInfo,
                     std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                         ": draining; no new connections, in-flight requests get " +
                         std::to_string(config.timeouts.drain.count()) + "ms to finish");
            for (auto& w : workers) {
                w->drain([this] { asio::post(ctx, [this] { on_worker_drained(); }); });
            }
            drain_timer.expires_after(config.timeouts.drain);
            drain_timer.async_wait([this](error_code tec) {
                if (tec || finished) {
                    return;
                }
                log_line(LogLevel::kWarn, "drain deadline passed: cancelling what is left");
                for (auto& w : workers) {
                    w->stop_now();
                }
            });
        }
        signals.async_wait([this](error_code e, int s) { on_signal(e, s); });
    }

    void on_worker_drained() {
        if (++drained < workers.size() || finished) {
            return;
        }
        finished = true;
        log_line(LogLevel::kInfo, "drained; exiting");
        error_code ignored;
        drain_timer.cancel();
        signals.cancel(ignored);
        admin.close(ignored);
        for (const auto& s : admin_sessions) {
            s->socket().cancel(ignored);
        }
        for (auto& cl : clusters) {
            if (cl.dns_timer) {
                cl.dns_timer->cancel();
            }
            for (auto& ep : cl.endpoints) {
                ep->active = false;
                ep->timer.cancel();
                if (ep->probe) {
                    ep->probe->socket().cancel(ignored);
                }
            }
        }
        for (auto* t : resolving) {
            t->cancel();
        }
        resolver.reset();
    }
};

Server::Server(LbConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() = default;

int Server::run(std::ostream& ready) {
    auto& s = *impl_;
    std::string error;
    try {
        s.tls = make_tls_contexts(s.config);
    } catch (const std::runtime_error& e) {
        log_line(LogLevel::kError, e.what());
        return 1;
    }
    auto fds = s.bind_listeners(error);
    if (fds.empty() || !s.bind_admin(error)) {
        log_line(LogLevel::kError, error + " (is another process using the port?)");
        for (auto fd : fds) {
            ::close(fd);
        }
        return 1;
    }
    bool needs_dns = false;
    for (const auto& c : s.config.clusters) {
        Impl::ClusterState cl;
        cl.config = &c;
        error_code ec;
        const auto ip = asio::ip::make_address(c.address.host, ec);
        cl.is_ip = !ec;
        if (cl.is_ip) {
            cl.endpoints.push_back(std::make_shared<Impl::EndpointState>(
                s.ctx, tcp::endpoint(ip, c.address.port), s.config.health_check));
        } else {
            needs_dns = true;
        }
        s.clusters.push_back(std::move(cl));
    }
    s.resolver = std::make_unique<Resolver>(s.ctx, s.config.dns);
    if (needs_dns && !s.resolver->init_error().empty()) {
        log_line(LogLevel::kError, "DNS: " + s.resolver->init_error());
        for (auto fd : fds) {
            ::close(fd);
        }
        return 1;
    }
    const tcp protocol = s.listen_endpoint.protocol();
    for (unsigned i = 0; i < s.threads; ++i) {
        s.workers.push_back(
            std::make_unique<Worker>(i, s.config, s.tls, s.metrics.worker(i), fds[i], protocol));
    }
    asio::co_spawn(s.ctx, s.startup(ready), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    s.ctx.run();
    for (auto& w : s.workers) {
        w->join();
    }
    return s.exit_code;
}

}  // namespace lb
