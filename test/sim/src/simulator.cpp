#include "sim/simulator.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>

#include <sys/stat.h>

#include "sim/params.hpp"

namespace sim {

namespace {

Json clock_json(const SimClock& clock) {
    return {{"now", format_iso8601(clock.now())},
            {"epoch", clock.now().time_since_epoch().count()},
            {"frozen", clock.frozen()}};
}

Response bad_control(const std::string& message) {
    return Response::json(400, Json{{"error", message}});
}

}  // namespace

Simulator::Simulator(SimOptions options, FaultSettings faults, std::uint64_t key_seed)
    : options_(std::move(options)),
      rng_(key_seed),
      admin_(store_, clock_, options_, rng_),
      gateway_(store_, clock_, options_),
      faults_(faults) {}

std::expected<void, std::string> Simulator::open_state(
    const std::optional<std::filesystem::path>& file) {
    state_file_ = file;
    if (file && std::filesystem::exists(*file)) {
        std::ifstream in(*file);
        const Json doc = Json::parse(in, nullptr, false);
        if (doc.is_discarded()) {
            return std::unexpected(file->string() + ": not valid JSON");
        }
        auto loaded = Store::from_json(doc);
        if (!loaded) {
            return std::unexpected(file->string() + ": " + loaded.error());
        }
        store_ = std::move(*loaded);
        return {};
    }
    // Different instances get different ids, as real independent databases do.
    std::uint64_t h = 1469598103934665603ULL;
    for (const char ch : options_.name) {
        h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
    }
    store_.next_id = static_cast<Id>(1000 + (h % 9000) * 100);
    store_.tenant_id = store_.allocate_id();
    if (options_.seed_default_objects) {
        admin_.seed_default_objects();
    }
    return save_state();
}

std::expected<void, std::string> Simulator::save_state() const {
    if (!state_file_) {
        return {};
    }
    const auto tmp = std::filesystem::path(state_file_->string() + ".tmp");
    {
        std::ofstream out(tmp, std::ios::trunc);
        if (!out) {
            return std::unexpected(tmp.string() + ": cannot write");
        }
        ::chmod(tmp.c_str(), 0600);
        out << store_.to_json().dump();
        if (!out.flush()) {
            return std::unexpected(tmp.string() + ": write failed");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, *state_file_, ec);
    if (ec) {
        return std::unexpected(state_file_->string() + ": " + ec.message());
    }
    return {};
}

FaultInjector::Decision Simulator::decide(bool gateway, const Request& request) {
    const bool write = request.method != "GET" && request.method != "HEAD";
    auto d = faults_.decide(gateway, write);
    const auto from = faults_.settings().admin.page_error_from;
    if (!gateway && !write && from > 0 && d.action == FaultInjector::Action::kNone) {
        const auto query = parse_form(request.query());
        const Json page = query && query->is_object() ? query->value("page", Json()) : Json();
        const std::string text = page.is_string() ? page.get<std::string>() : "";
        if (!text.empty() && text.size() < 10 &&
            std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
            std::stoll(text) >= from) {
            d.action = FaultInjector::Action::kFailBefore;
            d.status = faults_.settings().admin.error_status;
        }
    }
    if (d.delay.count() > 0) {
        ++faults_delayed_;
    }
    return d;
}

Response Simulator::handle_admin(const Request& request, const FaultInjector::Decision& decision) {
    if (decision.action == FaultInjector::Action::kFailBefore) {
        ++faults_failed_;
        return Response::text(decision.status, "injected fault: nothing was done");
    }
    auto result = admin_.handle(request);
    auto& route = routes_[result.route];
    ++route.count;
    ++route.by_status[result.response.status];
    if (result.write) {
        ++writes_;
        if (result.response.status < 400) {
            if (auto saved = save_state(); !saved) {
                return Response::json(500, Json{{"error", saved.error()}});
            }
        }
    } else {
        ++reads_;
    }
    if (decision.action == FaultInjector::Action::kAmbiguous) {
        ++faults_ambiguous_;
        return Response::text(502, "injected fault: the write was performed, then 502");
    }
    return std::move(result.response);
}

Gateway::Outcome Simulator::handle_gateway(const Request& request,
                                           const FaultInjector::Decision& decision) {
    if (decision.action == FaultInjector::Action::kFailBefore) {
        ++faults_failed_;
        return {Gateway::Verdict::kUnknownHost, Response::text(decision.status, "injected fault")};
    }
    return gateway_.handle(request);
}

Json Simulator::counters_json() const {
    Json routes = Json::object();
    for (const auto& [name, rc] : routes_) {
        Json by_status = Json::object();
        for (const auto& [status, n] : rc.by_status) {
            by_status[std::to_string(status)] = n;
        }
        routes[name] = {{"count", rc.count}, {"by_status", by_status}};
    }
    return {{"admin", {{"reads", reads_}, {"writes", writes_}, {"routes", routes}}},
            {"faults",
             {{"failed_before", faults_failed_},
              {"ambiguous", faults_ambiguous_},
              {"delayed", faults_delayed_}}},
            {"gateway", gateway_.counters_json()},
            {"webhooks", webhook_counters ? webhook_counters() : Json::object()}};
}

Response Simulator::handle_control(const Request& request) {
    const std::string path(request.path());
    const std::string& m = request.method;
    Json body = Json::object();
    if (!request.body.empty()) {
        body = parse_json(request.body);
        if (body.is_discarded() || !body.is_object()) {
            return bad_control("the body must be a JSON object");
        }
    }
    if (path == "/__sim/health" && m == "GET") {
        return Response::json(200, Json{{"status", "ok"}, {"name", options_.name}});
    }
    if (path == "/__sim/state" && m == "GET") {
        Json doc = store_.to_json();
        doc["usage"] = gateway_.usage_json();
        doc["clock"] = clock_json(clock_);
        return Response::json(200, doc);
    }
    if (path == "/__sim/state" && m == "PUT") {
        auto loaded = Store::from_json(body);
        if (!loaded) {
            return bad_control(loaded.error());
        }
        store_ = std::move(*loaded);
        if (auto saved = save_state(); !saved) {
            return Response::json(500, Json{{"error", saved.error()}});
        }
        return Response::json(200, Json{{"status", "replaced"}});
    }
    if (path == "/__sim/counters" && m == "GET") {
        return Response::json(200, counters_json());
    }
    if (path == "/__sim/counters/reset" && m == "POST") {
        reads_ = writes_ = faults_failed_ = faults_ambiguous_ = faults_delayed_ = 0;
        routes_.clear();
        gateway_.reset_counters();
        return Response::json(200, counters_json());
    }
    if (path == "/__sim/faults" && m == "GET") {
        return Response::json(200, faults_.settings().to_json());
    }
    if (path == "/__sim/faults" && (m == "PUT" || m == "PATCH")) {
        FaultSettings next = m == "PUT" ? FaultSettings{} : faults_.settings();
        if (auto r = next.merge(body); !r) {
            return bad_control(r.error());
        }
        faults_.reset(next);
        return Response::json(200, faults_.settings().to_json());
    }
    if (path == "/__sim/clock" && m == "GET") {
        return Response::json(200, clock_json(clock_));
    }
    if (path == "/__sim/clock" && m == "POST") {
        for (const auto& [key, value] : body.items()) {
            if (key == "freeze" && value.is_boolean()) {
                clock_.freeze(value.get<bool>());
            } else if (key == "set_epoch" && value.is_number_integer()) {
                clock_.set(Seconds(std::chrono::seconds(value.get<std::int64_t>())));
            } else if (key == "advance_seconds" && value.is_number_integer()) {
                clock_.advance(std::chrono::seconds(value.get<std::int64_t>()));
            } else {
                return bad_control("clock: unknown or mistyped field '" + key +
                                   "' (freeze: bool, set_epoch: int, advance_seconds: int)");
            }
        }
        return Response::json(200, clock_json(clock_));
    }
    return Response::json(404, Json{{"error", "unknown control endpoint " + m + " " + path}});
}

}  // namespace sim
