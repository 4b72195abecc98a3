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
    // Prometheus text exposition.
    [[nodiscard]] std::string serialize() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace serve
