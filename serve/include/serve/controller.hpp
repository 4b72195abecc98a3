#pragma once

#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "config/fleet.hpp"
#include "sync/engine.hpp"

namespace serve {

struct ControllerOptions {
    std::string fleet_file;
    config::LoadOptions load;  // how a reload reads the files (serve = true)
    syncer::HttpClientFactory factory = syncer::curl_client_factory();
    // One log line (no newline); called from several threads, one call at a time.
    std::function<void(const std::string&)> log;
    // When the files are looked at for changes; 0: as serve.watchInterval says.
    std::chrono::milliseconds watch_interval{0};
};

// `tandem serve`: keeps the live fleet converged. Per instance a pass (read, diff, apply or
// report) every serve.interval (±10% jitter), each on a thread of its own (a slow or unreachable
// instance delays nobody), backing off after failures; the desired state re-read when its files
// change or on reload() (a broken edit keeps the last good state); with balancers, the re-split
// (Membership) driven by their polls, their cluster states set to match; /healthz /readyz
// /status /metrics on serve.listen.
class Controller {
public:
    Controller(config::Fleet fleet, ControllerOptions options);
    ~Controller();
    Controller(const Controller&) = delete;
    Controller& operator=(const Controller&) = delete;

    // Binds serve.listen (returns the address as bound) and starts the loops.
    std::expected<std::string, std::string> start();
    // One pass over every instance at once (after one poll of the balancers) and the exit code:
    // enforce 0 converged, 1 otherwise; report 0 no drift, 2 drift, 1 error, 3 unreachable.
    int once();
    // SIGHUP: read the files again now.
    void reload(const std::string& why);
    // SIGTERM: no new pass or write starts; the writes in flight finish; the loops end.
    void stop();

    struct State;

private:
    std::unique_ptr<State> state_;
};

}  // namespace serve
