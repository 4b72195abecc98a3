#pragma once

#include <map>
#include <memory>
#include <string>

#include "sync/report.hpp"

namespace serve {

// tandem serve's Prometheus series (prometheus-cpp stays in this unit's .cpp).
class ServeMetrics {
public:
    explicit ServeMetrics(const std::vector<std::string>& instances);
    ~ServeMetrics();
    ServeMetrics(const ServeMetrics&) = delete;
    ServeMetrics& operator=(const ServeMetrics&) = delete;

    // A pass ended: its result (converged, applied, drift, failed, unreachable), duration,
    // drift by kind, the operations it applied, and whether the instance answered throughout.
    void pass(const syncer::InstanceReport& report,
              const std::string& result,
              double seconds,
              const std::map<std::string, int>& drift_by_kind,
              double now_unix,
              bool up);
    void split_state(const std::string& instance, const std::string& state);
    void transition(const std::string& instance, const std::string& to);
    void balancer(const std::string& url, bool up);
    void balancer_write(const std::string& url, bool ok);
    void reload(bool ok);
    // The mirror: an object written (or not) on an instance, by kind and action; a comparison's
    // result and duration, whether it is paused (the source not read whole), what the source
    // holds and what each instance has that nobody mirrors; the propagation lag (a change seen
    // -> written everywhere); a webhook accepted or refused.
    void mirrored(const std::string& instance, const syncer::Operation& op, bool ok);
    struct MirrorFigures {
        std::string result;
        double seconds = 0;
        bool paused = false;
        double success_unix = 0;  // 0: not a success
        std::size_t accounts = 0;
        std::size_t users = 0;
        std::size_t applications = 0;
        std::map<std::string, std::size_t> strays;
    };
    void mirror_comparison(const MirrorFigures& f);
    void mirror_lag(double seconds);
    void webhook(bool accepted);
    // Prometheus text exposition.
    [[nodiscard]] std::string serialize() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace serve
