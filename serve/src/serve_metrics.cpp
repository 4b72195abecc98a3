// tandem serve's metrics (prometheus-cpp): passes, drift, operations, split state, balancers,
// the mirror.
#include "serve_metrics.hpp"

#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace serve {

namespace pm = prometheus;

namespace {

const std::vector<std::string> kDriftKinds = {"missing", "changed", "unmanaged", "unpromoted",
                                              "split_mismatch"};
const std::vector<std::string> kResults = {"converged", "applied", "drift", "failed",
                                           "unreachable"};
const std::vector<std::string> kSplitStates = {"in", "out", "restoring"};

}  // namespace

struct ServeMetrics::Impl {
    std::shared_ptr<pm::Registry> registry = std::make_shared<pm::Registry>();
    pm::Family<pm::Gauge>& drift = pm::BuildGauge()
                                       .Name("tandem_drift_objects")
                                       .Help("Differences found by the instance's last pass")
                                       .Register(*registry);
    pm::Family<pm::Counter>& reconcile = pm::BuildCounter()
                                             .Name("tandem_reconcile_total")
                                             .Help("Passes over an instance, by result")
                                             .Register(*registry);
    pm::Family<pm::Histogram>& duration = pm::BuildHistogram()
                                              .Name("tandem_reconcile_duration_seconds")
                                              .Help("How long a pass took (read, diff, apply)")
                                              .Register(*registry);
    pm::Family<pm::Counter>& operations = pm::BuildCounter()
                                              .Name("tandem_apply_operations_total")
                                              .Help("Writes to an instance, by action and result")
                                              .Register(*registry);
    pm::Family<pm::Gauge>& up = pm::BuildGauge()
                                    .Name("tandem_instance_up")
                                    .Help("1 when the instance's last pass could read it")
                                    .Register(*registry);
    pm::Family<pm::Gauge>& in_split = pm::BuildGauge()
                                          .Name("tandem_instance_in_split")
                                          .Help(
                                              "1 while the instance enforces its share of the "
                                              "limits (0: out, the others hold it)")
                                          .Register(*registry);
    pm::Family<pm::Gauge>& split = pm::BuildGauge()
                                       .Name("tandem_instance_split_state")
                                       .Help(
                                           "1 for the instance's split state (in, out, "
                                           "restoring)")
                                       .Register(*registry);
    pm::Family<pm::Counter>& transitions = pm::BuildCounter()
                                               .Name("tandem_split_transitions_total")
                                               .Help("Re-split transitions, by the state entered")
                                               .Register(*registry);
    pm::Family<pm::Gauge>& last_success =
        pm::BuildGauge()
            .Name("tandem_last_success_timestamp_seconds")
            .Help("When the instance's last successful pass ended (Unix time)")
            .Register(*registry);
    pm::Family<pm::Gauge>& balancer_up = pm::BuildGauge()
                                             .Name("tandem_balancer_up")
                                             .Help("1 when the balancer answered the last poll")
                                             .Register(*registry);
    pm::Family<pm::Counter>& balancer_writes = pm::BuildCounter()
                                                   .Name("tandem_balancer_state_writes_total")
                                                   .Help("Cluster state changes sent, by result")
                                                   .Register(*registry);
    pm::Family<pm::Counter>& reloads = pm::BuildCounter()
                                           .Name("tandem_config_reloads_total")
                                           .Help("Reloads of the desired state, by result")
                                           .Register(*registry);
    pm::Family<pm::Gauge>& reload_ok =
        pm::BuildGauge()
            .Name("tandem_config_last_reload_successful")
            .Help(
                "0 while the files hold an edit that does not load (the last good state "
                "is served)")
            .Register(*registry);
    pm::Family<pm::Counter>& mirrored = pm::BuildCounter()
                                            .Name("tandem_mirror_objects_total")
                                            .Help(
                                                "Objects the mirror wrote on an instance, by kind "
                                                "(account, user, application, application key), "
                                                "action and result")
                                            .Register(*registry);
    pm::Family<pm::Counter>& comparisons = pm::BuildCounter()
                                               .Name("tandem_mirror_comparisons_total")
                                               .Help(
                                                   "Comparisons of the portal instance with the "
                                                   "others, by result")
                                               .Register(*registry);
    pm::Family<pm::Histogram>& mirror_duration =
        pm::BuildHistogram()
            .Name("tandem_mirror_duration_seconds")
            .Help("How long a comparison took (read the source whole, then every other instance)")
            .Register(*registry);
    pm::Family<pm::Gauge>& paused =
        pm::BuildGauge()
            .Name("tandem_mirror_paused")
            .Help("1 while the source could not be read whole: nothing is compared or deleted")
            .Register(*registry);
    pm::Family<pm::Gauge>& mirror_success =
        pm::BuildGauge()
            .Name("tandem_mirror_last_success_timestamp_seconds")
            .Help("When the last comparison that read everything and wrote all it had to ended")
            .Register(*registry);
    pm::Family<pm::Gauge>& source_objects =
        pm::BuildGauge()
            .Name("tandem_mirror_source_objects")
            .Help("What the portal instance holds that no CR describes, by kind")
            .Register(*registry);
    pm::Family<pm::Gauge>& strays = pm::BuildGauge()
                                        .Name("tandem_mirror_strays")
                                        .Help(
                                            "Objects an instance has that neither the source nor "
                                            "a CR has, left in place (mirror.deletes false)")
                                        .Register(*registry);
    pm::Family<pm::Histogram>& lag =
        pm::BuildHistogram()
            .Name("tandem_mirror_propagation_lag_seconds")
            .Help(
                "From a change seen on the source (a webhook, or the comparison that found it) "
                "to it being written on every instance")
            .Register(*registry);
    pm::Family<pm::Counter>& webhooks = pm::BuildCounter()
                                            .Name("tandem_mirror_webhooks_total")
                                            .Help("Webhook nudges, accepted or refused (token)")
                                            .Register(*registry);
    std::mutex mutex;  // (prometheus-cpp's families lock themselves; this keeps pass() whole)
};

ServeMetrics::ServeMetrics(const std::vector<std::string>& instances)
    : impl_(std::make_unique<Impl>()) {
    auto& m = *impl_;
    for (const auto& i : instances) {
        for (const auto& k : kDriftKinds) {
            m.drift.Add({{"instance", i}, {"kind", k}});
        }
        for (const auto& r : kResults) {
            m.reconcile.Add({{"instance", i}, {"result", r}});
        }
        m.up.Add({{"instance", i}});
        m.in_split.Add({{"instance", i}}).Set(1);
        m.last_success.Add({{"instance", i}});
        split_state(i, "in");
    }
    m.reload_ok.Add({}).Set(1);
    m.reloads.Add({{"result", "ok"}});
    m.reloads.Add({{"result", "failed"}});
}

ServeMetrics::~ServeMetrics() = default;

void ServeMetrics::pass(const syncer::InstanceReport& report,
                        const std::string& result,
                        double seconds,
                        const std::map<std::string, int>& drift_by_kind,
                        double now_unix,
                        bool up) {
    auto& m = *impl_;
    const std::lock_guard lock(m.mutex);
    const auto& i = report.name;
    m.reconcile.Add({{"instance", i}, {"result", result}}).Increment();
    m.duration
        .Add({{"instance", i}},
             pm::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})
        .Observe(seconds);
    m.up.Add({{"instance", i}}).Set(up ? 1 : 0);
    if (!report.error.empty()) {
        return;  // (the drift last seen stays: nothing new is known)
    }
    for (const auto& k : kDriftKinds) {
        const auto it = drift_by_kind.find(k);
        m.drift.Add({{"instance", i}, {"kind", k}}).Set(it == drift_by_kind.end() ? 0 : it->second);
    }
    if (report.applied) {
        for (const auto& op : report.applied->done) {
            m.operations.Add({{"instance", i}, {"action", to_string(op.action)}, {"result", "ok"}})
                .Increment();
        }
        for (const auto& [op, error] : report.applied->failed) {
            m.operations
                .Add({{"instance", i}, {"action", to_string(op.action)}, {"result", "failed"}})
                .Increment();
        }
    }
    if (result == "converged" || result == "applied" || result == "drift") {
        m.last_success.Add({{"instance", i}}).Set(now_unix);
    }
}

void ServeMetrics::split_state(const std::string& instance, const std::string& state) {
    auto& m = *impl_;
    for (const auto& s : kSplitStates) {
        m.split.Add({{"instance", instance}, {"state", s}}).Set(s == state ? 1 : 0);
    }
    m.in_split.Add({{"instance", instance}}).Set(state == "out" ? 0 : 1);
}

void ServeMetrics::transition(const std::string& instance, const std::string& to) {
    impl_->transitions.Add({{"instance", instance}, {"to", to}}).Increment();
}

void ServeMetrics::balancer(const std::string& url, bool up) {
    impl_->balancer_up.Add({{"balancer", url}}).Set(up ? 1 : 0);
}

void ServeMetrics::balancer_write(const std::string& url, bool ok) {
    impl_->balancer_writes.Add({{"balancer", url}, {"result", ok ? "ok" : "failed"}}).Increment();
}

void ServeMetrics::reload(bool ok) {
    impl_->reloads.Add({{"result", ok ? "ok" : "failed"}}).Increment();
    impl_->reload_ok.Add({}).Set(ok ? 1 : 0);
}

void ServeMetrics::mirrored(const std::string& instance, const syncer::Operation& op, bool ok) {
    impl_->mirrored
        .Add({{"instance", instance},
              {"kind", syncer::to_string(op.kind)},
              {"action", syncer::to_string(op.action)},
              {"result", ok ? "ok" : "failed"}})
        .Increment();
}

void ServeMetrics::mirror_comparison(const MirrorFigures& f) {
    auto& m = *impl_;
    const std::lock_guard lock(m.mutex);
    m.comparisons.Add({{"result", f.result}}).Increment();
    m.mirror_duration
        .Add({}, pm::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})
        .Observe(f.seconds);
    m.paused.Add({}).Set(f.paused ? 1 : 0);
    if (f.paused) {
        return;  // (what was last known stays)
    }
    if (f.success_unix > 0) {
        m.mirror_success.Add({}).Set(f.success_unix);
    }
    m.source_objects.Add({{"kind", "account"}}).Set(static_cast<double>(f.accounts));
    m.source_objects.Add({{"kind", "user"}}).Set(static_cast<double>(f.users));
    m.source_objects.Add({{"kind", "application"}}).Set(static_cast<double>(f.applications));
    for (const auto& [instance, n] : f.strays) {
        m.strays.Add({{"instance", instance}}).Set(static_cast<double>(n));
    }
}

void ServeMetrics::mirror_lag(double seconds) {
    impl_->lag
        .Add({}, pm::Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300,
                                                 600})
        .Observe(seconds);
}

void ServeMetrics::webhook(bool accepted) {
    impl_->webhooks.Add({{"result", accepted ? "accepted" : "refused"}}).Increment();
}

std::string ServeMetrics::serialize() const {
    std::ostringstream out;
    pm::TextSerializer().Serialize(out, impl_->registry->Collect());
    return out.str();
}

}  // namespace serve
