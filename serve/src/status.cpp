// tandem serve's listener answers: /healthz, /readyz, /status (JSON) and /metrics.
#include <nlohmann/json.hpp>

#include "controller_state.hpp"
#include "ratelimit/period.hpp"

namespace serve {

using Json = nlohmann::json;

namespace {

Json time_or_null(const std::optional<SystemClock::time_point>& t) {
    return t ? Json(ratelimit::to_iso8601(*t)) : Json();
}

Json pass_json(const PassRecord& p) {
    return {{"started_at", ratelimit::to_iso8601(p.started)},
            {"finished_at", ratelimit::to_iso8601(p.finished)},
            {"duration_seconds", std::round(p.seconds * 1000) / 1000},
            {"result", p.result},
            {"error", p.error.empty() ? Json() : Json(p.error)},
            {"differences_found", p.found},
            {"written", p.applied},
            {"write_failures", p.failed},
            {"differences_left", p.remaining},
            {"drift", p.drift},
            {"notes", p.notes},
            {"split_generation", p.split_generation},
            {"converged", p.converged}};
}

Json mirror_record_json(const MirrorRecord& m) {
    return {{"started_at", ratelimit::to_iso8601(m.started)},
            {"finished_at", ratelimit::to_iso8601(m.finished)},
            {"duration_seconds", std::round(m.seconds * 1000) / 1000},
            {"result", m.result},
            {"error", m.error.empty() ? Json() : Json(m.error)},
            {"source_accounts", m.accounts},
            {"source_users", m.users},
            {"source_applications", m.applications},
            {"differences_found", m.differences},
            {"written", m.written},
            {"write_failures", m.failed},
            {"strays_left", m.strays},
            {"unreadable", m.unread},
            {"skipped", m.skipped}};
}

// The mirror section of /status: the settings (never the token), the last comparison, whether
// it is paused, the webhooks.
Json mirror_json(const config::Fleet& fleet, const MirrorRuntime& m, SteadyClock::time_point now) {
    if (!fleet.mirror.enabled) {
        return {{"enabled", false}};
    }
    const bool paused = m.last && m.last->result == "paused";
    return {{"enabled", true},
            {"source", fleet.mirror.source},
            {"interval_seconds", std::chrono::duration<double>(fleet.mirror.interval).count()},
            {"deletes", fleet.mirror.deletes},
            {"paused", paused},
            {"paused_why", paused ? Json(m.last->error) : Json()},
            {"comparisons", m.comparisons},
            {"consecutive_failures", m.failures},
            {"last_success_at", time_or_null(m.last_success)},
            {"next_in_seconds",
             m.comparisons == 0 ? Json()
                                : Json(std::max<double>(
                                      0, std::chrono::duration<double>(m.next_due - now).count()))},
            {"last", m.last ? mirror_record_json(*m.last) : Json()},
            {"webhooks",
             {{"token_set", !fleet.mirror.webhook_token.empty()},
              {"received", m.webhooks},
              {"refused", m.webhooks_refused},
              {"last_at", time_or_null(m.last_webhook)},
              {"configured_on_source",
               m.webhooks_configured.empty() ? Json() : Json(m.webhooks_configured)}}}};
}

}  // namespace

std::string Controller::State::status_json() {
    const std::lock_guard lock(mutex);
    const auto& serve = fleet->serve;
    const auto now = SteadyClock::now();
    Json out;
    out["mode"] = serve.enforce ? "enforce" : "report";
    out["prune"] = serve.prune;
    out["interval_seconds"] = std::chrono::duration<double>(serve.interval).count();
    out["stopping"] = stopping.load();
    Json desired{{"file", options.fleet_file},
                 {"generation", fleet_generation},
                 {"loaded_at", ratelimit::to_iso8601(loaded_at)},
                 {"products", fleet->desired.products.size()},
                 {"backends", fleet->desired.backends.size()},
                 {"applications", fleet->desired.applications.size()}};
    if (last_reload) {
        desired["last_reload"] = {{"at", ratelimit::to_iso8601(last_reload->at)},
                                  {"ok", last_reload->ok},
                                  {"cause", last_reload->why},
                                  {"error", last_reload->ok ? Json() : Json(last_reload->error)}};
        desired["serving_last_good"] = !last_reload->ok;
    } else {
        desired["last_reload"] = nullptr;
        desired["serving_last_good"] = false;
    }
    out["desired_state"] = desired;
    Json list = Json::array();
    for (const auto& r : instances) {
        const auto state = membership.state(r.name);
        Json j{{"name", r.name},
               {"admin_url", r.admin_url},
               {"split_state", split_state_name(state)},
               {"in_split", state != SplitState::kOut},
               {"up", r.last ? Json(r.last->up) : Json()},
               {"passes", r.passes},
               {"running", r.running},
               {"consecutive_failures", r.failures},
               {"last_success_at", time_or_null(r.last_success)},
               {"next_pass_in_seconds",
                r.running ? Json()
                          : Json(std::max<double>(
                                0, std::chrono::duration<double>(r.next_due - now).count()))},
               {"last_pass", r.last ? pass_json(*r.last) : Json()}};
        if (const auto d = membership.down_since(r.name)) {
            j["seen_down_for_seconds"] = std::chrono::duration<double>(now - *d).count();
        }
        if (const auto u = membership.up_since(r.name); u && state != SplitState::kIn) {
            j["seen_healthy_for_seconds"] = std::chrono::duration<double>(now - *u).count();
        }
        if (state == SplitState::kRestoring) {
            Json waiting = Json::array();
            for (const auto& o : instances) {
                if (membership.state(o.name) != SplitState::kOut &&
                    o.converged_generation < membership.restoring_since(r.name)) {
                    waiting.push_back(o.name);
                }
            }
            j["restoring_waits_for"] = waiting;
        }
        list.push_back(j);
    }
    out["instances"] = list;
    Json bl = Json::array();
    for (const auto& b : balancers) {
        Json clusters = Json::object();
        for (const auto& [name, c] : b.view.clusters) {
            clusters[name] = {{"healthy", c.healthy}, {"admin_state", c.admin_state}};
        }
        bl.push_back({{"url", b.url},
                      {"reachable", b.view.reachable},
                      {"error", b.error.empty() ? Json() : Json(b.error)},
                      {"polled_at", time_or_null(b.polled_at)},
                      {"clusters", clusters}});
    }
    out["balancers"] = bl;
    out["split"] = {
        {"generation", split_generation},
        {"without", without},
        {"resplit", !balancer_refs.empty() && serve.resplit},
        {"after_seconds", std::chrono::duration<double>(serve.resplit_after).count()},
        {"restore_after_seconds", std::chrono::duration<double>(serve.restore_after).count()}};
    Json ts = Json::array();
    for (const auto& t : transitions) {
        ts.push_back({{"at", ratelimit::to_iso8601(t.at)},
                      {"instance", t.t.instance},
                      {"from", split_state_name(t.t.from)},
                      {"to", split_state_name(t.t.to)},
                      {"why", t.t.why}});
    }
    out["transitions"] = ts;
    out["mirror"] = mirror_json(*fleet, mirror, now);
    // (an instance's error text may hold invalid UTF-8: replaced, never a throw)
    return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Reply Controller::State::handle(const std::string& method,
                                const std::string& path,
                                std::string /*body*/) {
    constexpr std::string_view kWebhooks = "/webhooks/3scale/";
    if (path.starts_with(kWebhooks)) {
        if (method != "POST") {
            return {405, "text/plain; charset=utf-8", "webhooks are POSTed\n"};
        }
        return webhook(path.substr(kWebhooks.size()));  // the body is never read
    }
    if (method == "POST") {
        return {405, "text/plain; charset=utf-8", "only GET and HEAD here\n"};
    }
    if (path == "/healthz") {
        return stopping ? Reply{503, "text/plain; charset=utf-8", "stopping\n"}
                        : Reply{200, "text/plain; charset=utf-8", "ok\n"};
    }
    if (path == "/readyz") {
        std::string waiting;
        {
            const std::lock_guard lock(mutex);
            for (const auto& r : instances) {
                if (r.passes == 0) {
                    waiting += (waiting.empty() ? "" : ", ") + r.name;
                }
            }
        }
        if (stopping) {
            return {503, "text/plain; charset=utf-8", "stopping\n"};
        }
        return waiting.empty() ? Reply{200, "text/plain; charset=utf-8", "ready\n"}
                               : Reply{503, "text/plain; charset=utf-8",
                                       "waiting for the first pass of: " + waiting + "\n"};
    }
    if (path == "/status") {
        return {200, "application/json", status_json()};
    }
    if (path == "/metrics") {
        return {200, "text/plain; version=0.0.4; charset=utf-8", metrics.serialize()};
    }
    return {404, "text/plain; charset=utf-8",
            "not found: try /healthz, /readyz, /status or /metrics\n"};
}

}  // namespace serve
