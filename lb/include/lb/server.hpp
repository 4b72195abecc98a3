#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "lb/config.hpp"

namespace lb {

// The whole balancer: binds the listeners, resolves the clusters, starts the workers, runs the
// health checks, DNS refreshes and the admin listener on the calling thread, and returns the
// exit code after SIGTERM/SIGINT and a graceful drain. Startup problems (a port in use) are
// reported on stderr with exit code 1 before anything is served. SIGHUP reloads `config_path`:
// a valid file becomes the next generation (clusters, weights, checks, timeouts, limits...,
// listeners, threads, DNS servers) without closing a connection; an invalid one, or one whose
// listener cannot be opened, is reported and changes nothing.
class Server {
public:
    Server(LbConfig config, std::string config_path);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // `ready` gets one line once the listeners are bound and the clusters resolved:
    // "tandem-lb ready listen=127.0.0.1:PORT admin=127.0.0.1:PORT workers=N", then
    // " https=IP:PORT" when there is an https listener.
    int run(std::ostream& ready);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lb
