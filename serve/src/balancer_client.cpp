#include "balancer_client.hpp"

#include <nlohmann/json.hpp>

namespace serve {

using Json = nlohmann::json;

BalancerClient::BalancerClient(const config::BalancerRef& ref,
                               syncer::HttpClient& http,
                               std::chrono::milliseconds timeout)
    : ref_(ref), http_(http), timeout_(timeout) {}

BalancerView BalancerClient::status(std::string* error) {
    syncer::HttpRequest req{
        "GET", ref_.url + "/status", {{"Accept", "application/json"}}, "", timeout_};
    const auto res = http_.send(req);
    BalancerView out;
    const auto fail = [&](std::string why) {
        if (error != nullptr) {
            *error = std::move(why);
        }
        return out;
    };
    if (res.transport != syncer::HttpResponse::Transport::kOk) {
        return fail(res.error);
    }
    if (res.status != 200) {
        return fail("GET /status answered " + std::to_string(res.status));
    }
    const auto body = Json::parse(res.body, nullptr, false);
    if (!body.is_object() || !body.contains("clusters") || !body["clusters"].is_array()) {
        return fail("GET /status did not answer tandem-lb's JSON (no clusters)");
    }
    for (const auto& c : body["clusters"]) {
        if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) {
            continue;
        }
        if (!c.contains("healthy") || !c["healthy"].is_boolean()) {
            continue;  // no vote from an answer that does not say
        }
        BalancerView::Cluster cl;
        cl.healthy = c["healthy"].get<bool>();
        if (c.contains("admin_state") && c["admin_state"].is_string()) {
            cl.admin_state = c["admin_state"].get<std::string>();
        }
        out.clusters[c["name"].get<std::string>()] = cl;
    }
    out.reachable = true;
    return out;
}

std::expected<void, std::string> BalancerClient::set_state(const std::string& cluster,
                                                           const std::string& state) {
    syncer::HttpRequest req{"PUT",
                            ref_.url + "/clusters/" + cluster + "/state",
                            {{"Content-Type", "application/json"}},
                            Json{{"state", state}}.dump(),
                            timeout_};
    if (!ref_.token.empty()) {
        req.headers.emplace_back("Authorization", "Bearer " + ref_.token.reveal());
    }
    const auto res = http_.send(req);
    if (res.transport != syncer::HttpResponse::Transport::kOk) {
        return std::unexpected(res.error);
    }
    if (res.status != 200) {
        std::string body = res.body.substr(0, 200);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) {
            body.pop_back();
        }
        return std::unexpected("PUT /clusters/" + cluster + "/state answered " +
                               std::to_string(res.status) + ": " + body);
    }
    return {};
}

}  // namespace serve
