// The admin listener: /healthz, /status and /metrics.
#include "admin.hpp"

#include <cmath>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "endpoint_label.hpp"
#include "ratelimit/period.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Json = nlohmann::json;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

Json status_of(const StatusView& v) {
    const Plane& plane = v.plane;
    Json out;
    out["status"] = v.draining ? "draining" : plane.any_healthy() ? "ok" : "no healthy cluster";
    out["uptime_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(v.uptime).count();
    const auto& live = v.listeners.live();
    out["listen"] = endpoint_label(live.http.bound);
    out["https"] = live.https ? Json(endpoint_label(live.https->bound)) : Json();
    out["admin"] = v.listeners.admin_label();
    out["workers"] = plane.workers;
    out["generation"] = v.snapshots;
    Json cfg;
    cfg["file"] = v.config_file;
    cfg["generation"] = plane.id;
    cfg["loaded_at"] = ratelimit::to_iso8601(plane.loaded_at);
    cfg["previous_generations_finishing"] = v.finishing.size();
    cfg["watch_interval_ms"] = plane.config.reload.watch_interval.count();
    cfg["reloads"] = v.reloads;
    if (v.last_reload) {
        Json r;
        r["at"] = ratelimit::to_iso8601(v.last_reload->at);
        r["ok"] = v.last_reload->ok;
        r["error"] = v.last_reload->ok ? Json() : Json(v.last_reload->error);
        cfg["last_reload"] = r;
    } else {
        cfg["last_reload"] = nullptr;
    }
    out["config"] = cfg;
    std::int64_t connections = 0;
    for (const auto* p : v.finishing) {
        connections += p->metrics.client_connections();
    }
    out["client_connections"] = plane.metrics.client_connections() + connections;
    Json list = Json::array();
    for (std::size_t c = 0; c < plane.clusters.size(); ++c) {
        const auto& cl = plane.clusters[c];
        Json j;
        j["name"] = cl.config->name;
        j["address"] = cl.config->address.to_string();
        j["weight"] = cl.config->weight;
        j["backup"] = cl.config->backup;
        j["healthy"] = cl.healthy;
        j["in_flight"] = plane.metrics.in_flight(c);
        j["pool_idle"] = plane.metrics.pool_idle(c);
        // (this configuration generation's, over its workers)
        j["outlier_ejections"] = plane.metrics.outlier_ejections(c);
        j["retries_refused"] = plane.metrics.retries_refused(c);
        if (!cl.is_ip) {
            Json dns;
            dns["host"] = cl.config->address.host;
            dns["last_resolution"] = ratelimit::to_iso8601(cl.dns_at);
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
                last["at"] = ratelimit::to_iso8601(ep->last_at);
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

http::response<http::string_body> route(const http::request<http::empty_body>& req,
                                        const StatusView& view) {
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
        if (view.draining) {
            text(http::status::service_unavailable, "draining\n");
        } else if (view.plane.any_healthy()) {
            text(http::status::ok, "ok\n");
        } else {
            text(http::status::service_unavailable, "no healthy cluster\n");
        }
    } else if (path == "/status") {
        res.set(http::field::content_type, "application/json");
        res.body() = status_of(view).dump(2) + "\n";
    } else if (path == "/metrics") {
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = view.plane.metrics.serialize();
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

}  // namespace

Admin::Admin(asio::io_context& ctx, View view) : ctx_(ctx), view_(std::move(view)) {}

void Admin::serve(std::shared_ptr<tcp::acceptor> acceptor) {
    acceptor_ = acceptor;
    asio::co_spawn(ctx_, accept_loop(std::move(acceptor)), asio::detached);
}

void Admin::stop() {
    stopped_ = true;
    error_code ignored;
    if (acceptor_) {
        acceptor_->close(ignored);
    }
    for (const auto& s : sessions_) {
        s->socket().cancel(ignored);
    }
}

asio::awaitable<void> Admin::accept_loop(std::shared_ptr<tcp::acceptor> acceptor) {
    while (!stopped_ && acceptor->is_open()) {
        auto [ec, socket] = co_await acceptor->async_accept(kNoThrow);
        if (ec) {
            if (stopped_ || ec == asio::error::operation_aborted || !acceptor->is_open()) {
                break;
            }
            continue;
        }
        auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
        sessions_.insert(stream);
        asio::co_spawn(ctx_, session(stream), asio::detached);
    }
}

asio::awaitable<void> Admin::session(std::shared_ptr<beast::tcp_stream> stream) {
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
        auto res = route(req, view_());
        res.keep_alive(req.keep_alive() && !stopped_);
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
    sessions_.erase(stream);
}

}  // namespace lb
