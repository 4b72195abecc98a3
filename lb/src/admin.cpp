// The admin listener: /healthz, /status, /metrics and the runtime API (/clusters/NAME/state).
#include "admin.hpp"

#include <algorithm>
#include <cmath>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "endpoint_label.hpp"
#include "lb/routes.hpp"
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
    // (connections still served by older generations count; requests are this generation's)
    std::int64_t connections = 0;
    std::int64_t h2_connections = 0;
    for (const auto* p : v.finishing) {
        connections += p->metrics.client_connections();
        h2_connections += p->metrics.h2_connections();
    }
    connections += plane.metrics.client_connections();
    h2_connections += plane.metrics.h2_connections();
    out["client_connections"] = connections;
    out["protocols"] = {{"http/1.1",
                         {{"connections", connections - h2_connections},
                          {"requests", plane.metrics.requests(Protocol::kHttp1)}}},
                        {"h2",
                         {{"connections", h2_connections},
                          {"streams", plane.metrics.h2_streams()},
                          {"requests", plane.metrics.requests(Protocol::kH2)}}}};
    Json list = Json::array();
    for (std::size_t c = 0; c < plane.clusters.size(); ++c) {
        const auto& cl = plane.clusters[c];
        Json j;
        j["name"] = cl.config->name;
        j["address"] = cl.config->address.to_string();
        j["weight"] = cl.config->weight;
        j["backup"] = cl.config->backup;
        j["healthy"] = cl.healthy;
        j["admin_state"] = admin_state_name(cl.admin);
        j["in_flight"] = plane.metrics.in_flight(c);
        j["pool_idle"] = plane.metrics.pool_idle(c);
        j["protocol"] = cl.config->protocol == ClusterProtocol::kH2 ? "h2" : "http1";
        if (cl.config->protocol == ClusterProtocol::kH2) {
            j["h2_connections"] = plane.metrics.h2_upstreams(c);
        }
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
    Json routes = Json::array();
    for (const auto& r : plane.config.routes) {
        Json names = Json::array();
        for (const auto c : r.clusters) {
            names.push_back(plane.config.clusters[c].name);
        }
        routes.push_back({{"name", r.name},
                          {"hosts", r.hosts},
                          {"policy", route_policy_name(r.policy)},
                          {"clusters", names}});
    }
    out["routes"] = routes;
    return out;
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

void text(Response& res, http::status s, std::string body) {
    res.result(s);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(body);
}

void json(Response& res, http::status s, const Json& body) {
    res.result(s);
    res.set(http::field::content_type, "application/json");
    res.body() = body.dump(2) + "\n";
}

// Who may change a cluster's state: the holder of admin.token when one is set; anyone who can
// reach a loopback admin listener otherwise (and nobody on any other address).
bool authorized(const Request& req, const LbConfig& config, bool loopback, Response& res) {
    if (config.admin_token.empty()) {
        if (loopback) {
            return true;
        }
        text(res, http::status::forbidden,
             "the admin listener is not on a loopback address and admin.token is not set: "
             "runtime changes are refused (set admin.token)\n");
        return false;
    }
    const auto header = req[http::field::authorization];
    constexpr std::string_view kBearer = "Bearer ";
    const bool ok =
        header.size() > kBearer.size() &&
        std::equal(kBearer.begin(), kBearer.end(), header.begin()) &&
        config::secret_equals(std::string_view(header.data(), header.size()).substr(kBearer.size()),
                              config.admin_token);
    if (!ok) {
        res.set(http::field::www_authenticate, "Bearer");
        text(res, http::status::unauthorized,
             "Authorization: Bearer with admin.token is required\n");
    }
    return ok;
}

// /clusters/NAME/state: GET shows the runtime state, PUT {"state": "ready"|"drain"|"maint"}
// sets it.
void cluster_state(const Request& req,
                   std::string_view name,
                   const StatusView& view,
                   const Admin::SetState& set_state,
                   bool loopback,
                   Response& res) {
    const auto& clusters = view.plane.clusters;
    const auto it = std::find_if(clusters.begin(), clusters.end(),
                                 [&](const ClusterState& c) { return c.config->name == name; });
    if (it == clusters.end()) {
        text(res, http::status::not_found, "no cluster named '" + std::string(name) + "'\n");
        return;
    }
    if (req.method() == http::verb::get || req.method() == http::verb::head) {
        json(res, http::status::ok,
             {{"cluster", it->config->name},
              {"admin_state", admin_state_name(it->admin)},
              {"healthy", it->healthy}});
        return;
    }
    if (req.method() != http::verb::put) {
        res.set(http::field::allow, "GET, HEAD, PUT");
        text(res, http::status::method_not_allowed, "GET, HEAD or PUT\n");
        return;
    }
    if (!authorized(req, view.plane.config, loopback, res)) {
        return;
    }
    const auto body = Json::parse(req.body(), nullptr, false);
    const auto* state = body.is_object() && body.contains("state") && body["state"].is_string()
                            ? body["state"].get_ptr<const std::string*>()
                            : nullptr;
    const auto wanted = state != nullptr ? parse_admin_state(*state) : std::nullopt;
    if (!wanted) {
        text(res, http::status::bad_request,
             "the body must be {\"state\": \"ready\" | \"drain\" | \"maint\"}\n");
        return;
    }
    const auto previous = set_state(it->config->name, *wanted);
    json(res, http::status::ok,
         {{"cluster", it->config->name},
          {"admin_state", admin_state_name(*wanted)},
          {"previous", admin_state_name(previous)}});
}

Response route(const Request& req,
               const StatusView& view,
               const Admin::SetState& set_state,
               bool loopback) {
    Response res{http::status::ok, 11};
    res.set(http::field::server, "tandem-lb");
    res.set(http::field::cache_control, "no-store");
    const auto target = std::string_view(req.target().data(), req.target().size());
    const auto path = target.substr(0, target.find('?'));
    constexpr std::string_view kClusters = "/clusters/";
    constexpr std::string_view kState = "/state";
    if (path.size() > kClusters.size() + kState.size() && path.starts_with(kClusters) &&
        path.ends_with(kState)) {
        cluster_state(req,
                      path.substr(kClusters.size(), path.size() - kClusters.size() - kState.size()),
                      view, set_state, loopback, res);
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
        text(res, http::status::method_not_allowed, "only GET and HEAD\n");
        res.set(http::field::allow, "GET, HEAD");
    } else if (path == "/healthz") {
        if (view.draining) {
            text(res, http::status::service_unavailable, "draining\n");
        } else if (view.plane.any_healthy()) {
            text(res, http::status::ok, "ok\n");
        } else {
            text(res, http::status::service_unavailable, "no healthy cluster in service\n");
        }
    } else if (path == "/status") {
        json(res, http::status::ok, status_of(view));
    } else if (path == "/metrics") {
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = view.plane.metrics.serialize();
    } else {
        text(res, http::status::not_found,
             "not found: try /healthz, /status, /metrics or /clusters/NAME/state\n");
    }
    if (req.method() == http::verb::head) {
        const auto size = res.body().size();
        res.body().clear();
        res.content_length(size);
    }
    return res;
}

}  // namespace

Admin::Admin(asio::io_context& ctx, View view, SetState set_state)
    : ctx_(ctx), view_(std::move(view)), set_state_(std::move(set_state)) {}

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
        http::request_parser<http::string_body> parser;
        parser.header_limit(8 * 1024);
        parser.body_limit(4 * 1024);
        stream->expires_after(std::chrono::seconds(10));
        auto [ec, n] = co_await http::async_read(*stream, buffer, parser, kNoThrow);
        if (ec) {
            break;
        }
        const auto& req = parser.get();
        error_code lec;
        const auto local = stream->socket().local_endpoint(lec);
        auto res = route(req, view_(), set_state_, !lec && local.address().is_loopback());
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
