#include "sim/gateway.hpp"

#include <algorithm>

#include "admin_support.hpp"
#include "sim/params.hpp"

namespace sim {

namespace {

const char* verdict_name(Gateway::Verdict v) {
    switch (v) {
        case Gateway::Verdict::kAuthorized:
            return "authorized";
        case Gateway::Verdict::kUnknownHost:
            return "unknown_host";
        case Gateway::Verdict::kAuthMissing:
            return "auth_missing";
        case Gateway::Verdict::kNoMatch:
            return "no_match";
        case Gateway::Verdict::kAuthFailed:
            return "auth_failed";
        case Gateway::Verdict::kLimited:
            return "limited";
    }
    return "unknown";
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return out;
}

std::string host_without_port(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        return lower(host.substr(0, host.find(']') + 1));
    }
    return lower(host.substr(0, host.find(':')));
}

// APIcast's regexpify: collapse '//', drop the query part, {var} -> a value class, '.' literal.
std::string regexpify(std::string pattern) {
    pattern = std::regex_replace(pattern, std::regex("//+"), "/");
    if (const auto q = pattern.find('?'); q != std::string::npos) {
        pattern.resize(q);
    }
    pattern =
        std::regex_replace(pattern, std::regex(R"(\{[^}]+?\})"), R"(([\w\-.~%!$$&'()*+,;=@:]+))");
    pattern = std::regex_replace(pattern, std::regex(R"(\.)"), R"(\.)");
    return "^" + pattern;
}

Response error_response(const Json& proxy,
                        const char* status_key,
                        const char* body_key,
                        const char* headers_key) {
    Response r;
    r.status = static_cast<unsigned>(proxy.value(status_key, 403));
    r.body = proxy.value(body_key, "");
    r.content_type = proxy.value(headers_key, "text/plain; charset=us-ascii");
    return r;
}

std::string basic_credentials(std::string_view header, bool want_password) {
    if (header.size() <= 6 || lower(header.substr(0, 6)) != "basic ") {
        return {};
    }
    const std::string decoded = base64_decode(header.substr(6));
    const auto colon = decoded.find(':');
    if (colon == std::string::npos) {
        return {};
    }
    return want_password ? decoded.substr(colon + 1) : decoded.substr(0, colon);
}

}  // namespace

Gateway::Gateway(Store& store, SimClock& clock, const SimOptions& options)
    : store_(store), clock_(clock), options_(options) {}

const std::vector<Gateway::CompiledRule>& Gateway::rules_for(const Json& config) {
    const Id id = id_field(config, "id");
    if (auto it = compiled_.find(id); it != compiled_.end()) {
        return it->second;
    }
    std::vector<CompiledRule> rules;
    for (const Json& r : config.at("content").at("proxy").at("proxy_rules")) {
        CompiledRule rule;
        rule.method = r.value("http_method", "GET");
        try {
            rule.path = std::regex(regexpify(r.value("pattern", "/")));
        } catch (const std::regex_error&) {
            continue;  // a pattern that is not a valid regex never matches
        }
        const Json query = r.value("querystring_parameters", Json::object());
        for (const auto& [key, value] : query.items()) {
            rule.query.emplace_back(key, value.is_string() ? value.get<std::string>() : "");
        }
        rule.metric = r.value("metric_system_name", "hits");
        rule.delta = r.value("delta", std::int64_t{1});
        rule.last = r.value("last", false);
        rules.push_back(std::move(rule));
    }
    return compiled_.emplace(id, std::move(rules)).first->second;
}

std::map<Id, std::int64_t> Gateway::expand_usage(Id service_id,
                                                 const std::map<std::string, std::int64_t>& usage) {
    // apisonator's hierarchy: a method also counts for its parent (hits); a backend's hits also
    // counts for the product's hits.
    std::map<Id, std::int64_t> out;
    const Json* product_hits = store_.hits_of("service", service_id);
    const auto all = store_.all_metrics_of_service(service_id);
    for (const auto& [name, delta] : usage) {
        const Json* metric = nullptr;
        for (const Json* m : all) {
            std::string sys = m->value("system_name", "");
            if (m->value("_owner_type", "") == "backend_api") {
                sys += "." + std::to_string(id_field(*m, "_owner_id"));
            }
            if (sys == name) {
                metric = m;
                break;
            }
        }
        if (metric == nullptr) {
            continue;  // apisonator ignores metrics it does not know
        }
        const Json* top = metric;
        out[id_field(*metric, "id")] += delta;
        if (metric->contains("parent_id")) {
            top = store_.metrics.find(id_field(*metric, "parent_id"));
            if (top != nullptr) {
                out[id_field(*top, "id")] += delta;
            }
        }
        if (top != nullptr && product_hits != nullptr &&
            top->value("_owner_type", "") == "backend_api" &&
            top->value("system_name", "") == "hits") {
            out[id_field(*product_hits, "id")] += delta;
        }
    }
    return out;
}

Gateway::Outcome Gateway::handle(const Request& request) {
    Outcome outcome;
    const auto finish = [&](Verdict v, Response r) {
        outcome.verdict = v;
        outcome.response = std::move(r);
        outcome.response.headers.emplace_back("X-Sim-Instance", options_.name);
        ++verdicts_[verdict_name(v)];
        return outcome;
    };
    store_.purge(clock_.now().time_since_epoch().count());

    // 1. The product: the promoted production config whose public endpoint host is the Host.
    const std::string host = host_without_port(request.header("host"));
    const Json* config = nullptr;
    const Json* service = nullptr;
    for (const auto& [sid, s] : store_.services.items()) {
        if (is_soft_deleted(s)) {
            continue;
        }
        const Json* cfg = store_.latest_config(sid, "production");
        if (cfg != nullptr &&
            host_of_endpoint(cfg->at("content").at("proxy").value("endpoint", "")) == host) {
            config = cfg;
            service = &s;
            break;
        }
    }
    if (config == nullptr) {
        return finish(Verdict::kUnknownHost, Response::text(404, "Not Found"));
    }
    const Json& content = config->at("content");
    const Json& proxy = content.at("proxy");
    const Id service_id = id_field(*service, "id");

    // 2. Credentials, where the product says they are.
    const std::string location = proxy.value("credentials_location", "query");
    const std::string backend_version = content.value("backend_version", "1");
    auto params = parse_request_params(request);
    if (!params) {
        params = parse_form(request.query());
    }
    const auto credential = [&](const std::string& name, bool password) -> std::string {
        if (location == "headers") {
            return std::string(request.header(lower(name)));
        }
        if (location == "authorization") {
            return basic_credentials(request.header("authorization"), password);
        }
        if (params) {
            const auto it = params->find(name);
            if (it != params->end() && it->is_string()) {
                return it->get<std::string>();
            }
        }
        return {};
    };
    std::string user_key;
    std::string app_id;
    std::string app_key;
    if (backend_version == "1") {
        user_key = credential(proxy.value("auth_user_key", "user_key"), false);
    } else if (backend_version == "2") {
        app_id = credential(proxy.value("auth_app_id", "app_id"), false);
        app_key = credential(proxy.value("auth_app_key", "app_key"), true);
    }
    if (user_key.empty() && app_id.empty()) {
        return finish(Verdict::kAuthMissing,
                      error_response(proxy, "error_status_auth_missing", "error_auth_missing",
                                     "error_headers_auth_missing"));
    }

    // 3. Mapping rules -> usage. Every matching rule counts, until a matching rule is "last".
    std::string path(request.path());
    const auto query = parse_form(request.query()).value_or(Json::object());
    std::map<std::string, std::int64_t> usage;
    for (const CompiledRule& rule : rules_for(*config)) {
        if (rule.method != "ANY" && rule.method != request.method) {
            continue;
        }
        if (!std::regex_search(path, rule.path, std::regex_constants::match_continuous)) {
            continue;
        }
        const bool query_ok =
            std::all_of(rule.query.begin(), rule.query.end(),
                        [&](const std::pair<std::string, std::string>& q) {
                            const auto it = query.find(q.first);
                            if (it == query.end()) {
                                return false;
                            }
                            const bool variable = q.second.size() > 2 && q.second.front() == '{' &&
                                                  q.second.back() == '}';
                            const std::string value =
                                it->is_array() ? (it->empty() ? "" : it->back().get<std::string>())
                                               : (it->is_string() ? it->get<std::string>() : "");
                            return variable || value == q.second;
                        });
        if (!query_ok) {
            continue;
        }
        usage[rule.metric] += rule.delta;
        if (rule.last) {
            break;
        }
    }
    if (usage.empty()) {
        return finish(Verdict::kNoMatch,
                      error_response(proxy, "error_status_no_match", "error_no_match",
                                     "error_headers_no_match"));
    }

    // 4. The application, and its keys.
    const Json* app = nullptr;
    for (const auto& [aid, a] : store_.applications.items()) {
        if (id_field(a, "service_id") != service_id) {
            continue;
        }
        if ((!user_key.empty() && a.value("user_key", "") == user_key) ||
            (!app_id.empty() && a.value("application_id", "") == app_id)) {
            app = &a;
            break;
        }
    }
    bool authorized = app != nullptr && app->value("state", "") == "live" &&
                      store_.visible_account(id_field(*app, "account_id")) != nullptr;
    if (authorized && !app_id.empty()) {
        const Json keys = app->value("_keys", Json::array());
        if (!keys.empty() || !app_key.empty()) {
            authorized = std::find(keys.begin(), keys.end(), Json(app_key)) != keys.end();
        } else {
            authorized = !service->value("mandatory_app_key", true);
        }
    }
    if (!authorized) {
        return finish(Verdict::kAuthFailed,
                      error_response(proxy, "error_status_auth_failed", "error_auth_failed",
                                     "error_headers_auth_failed"));
    }

    // 5. Limits: for every limit of the plan, current + delta <= value (0 = disabled).
    const Id application = id_field(*app, "id");
    const Id plan = id_field(*app, "plan_id");
    const auto deltas = expand_usage(service_id, usage);
    const ratelimit::Seconds now = clock_.now();
    const auto current = [&](Id metric, ratelimit::Period period) -> std::int64_t {
        const auto it = usage_.find({application, metric, period});
        if (it == usage_.end()) {
            return 0;
        }
        const auto start = ratelimit::window_at(period, now).start.time_since_epoch().count();
        return it->second.start == start ? it->second.value : 0;
    };
    for (const Json* limit : std::as_const(store_.limits).by_key(std::to_string(plan))) {
        const auto period = ratelimit::parse_period(limit->value("period", ""));
        if (!period) {
            continue;
        }
        const Id metric = id_field(*limit, "metric_id");
        const auto it = deltas.find(metric);
        const std::int64_t delta = it == deltas.end() ? 0 : it->second;
        if (current(metric, *period) + delta > limit->value("value", std::int64_t{0})) {
            return finish(Verdict::kLimited,
                          error_response(proxy, "error_status_limits_exceeded",
                                         "error_limits_exceeded", "error_headers_limits_exceeded"));
        }
    }
    for (const auto& [metric, delta] : deltas) {
        for (const auto period : ratelimit::kAllPeriods) {
            const auto start = ratelimit::window_at(period, now).start.time_since_epoch().count();
            Window& w = usage_[{application, metric, period}];
            if (w.start != start) {
                w = Window{start, 0};
            }
            w.value += delta;
        }
    }
    Json usage_doc = Json::object();
    for (const auto& [name, delta] : usage) {
        usage_doc[name] = delta;
    }
    return finish(Verdict::kAuthorized,
                  Response::json(200, Json{{"status", "authorized"},
                                           {"instance", options_.name},
                                           {"service", (*service)["system_name"]},
                                           {"application_id", application},
                                           {"usage", usage_doc}}));
}

Json Gateway::usage_json() const {
    Json out = Json::array();
    const ratelimit::Seconds now = clock_.now();
    for (const auto& [key, w] : usage_) {
        const auto& [application, metric, period] = key;
        if (ratelimit::window_at(period, now).start.time_since_epoch().count() != w.start) {
            continue;
        }
        out.push_back({{"application_id", application},
                       {"metric_id", metric},
                       {"period", ratelimit::to_string(period)},
                       {"window_start", w.start},
                       {"value", w.value}});
    }
    return out;
}

Json Gateway::counters_json() const {
    Json out = Json::object();
    for (const auto& [name, count] : verdicts_) {
        out[name] = count;
    }
    return out;
}

void Gateway::reset_counters() {
    verdicts_.clear();
}

}  // namespace sim
