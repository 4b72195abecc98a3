#pragma once

// tandem-lb's end-to-end harness: the balancer and fake upstreams as real processes on loopback
// (port 0 everywhere, readiness from their ready lines), and clients that load them.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "support/child_process.hpp"

namespace support {

// A fake-upstream process (test/fakes): answers with its name, echoes, slow and streaming
// endpoints, optionally over TLS.
struct Upstream {
    std::string name;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::unique_ptr<ChildProcess> process;

    // Started on `host`:`port` (0: any free port) with fake-upstream's `extra` flags; nullptr
    // when it did not come up.
    static std::unique_ptr<Upstream> start(const std::string& name,
                                           std::uint16_t port = 0,
                                           const std::string& host = "127.0.0.1",
                                           std::vector<std::string> extra = {});
    // fake-h2-upstream (an h2 cluster, a gRPC service) on a free port of 127.0.0.1.
    static std::unique_ptr<Upstream> start_h2(const std::string& name,
                                              std::vector<std::string> extra = {});
    [[nodiscard]] std::string address() const { return host + ":" + std::to_string(port); }
    void kill();
};

// A tandem-lb process with a configuration file of its own (listen and admin on 127.0.0.1:0
// unless the YAML says otherwise); killed and its directory removed when destroyed.
struct Balancer {
    std::filesystem::path dir;
    std::uint16_t port = 0;
    std::uint16_t admin = 0;
    std::string admin_ip = "127.0.0.1";  // (a reload may move the admin listener)
    std::uint16_t https = 0;
    std::unique_ptr<ChildProcess> process;

    // With `merge_stderr` its log (stderr) comes through the same pipe as stdout: what came
    // before the ready line is in early_output, the rest is process->read_all()'s.
    static std::unique_ptr<Balancer> start(const std::string& yaml, bool merge_stderr = false);
    std::string early_output;
    ~Balancer();
    // Replaces the configuration file (listen/admin as at startup unless `yaml` sets them) and
    // sends SIGHUP; returns once /status reports the reload's outcome.
    bool reload(const std::string& yaml, bool keep_addresses = true);
    [[nodiscard]] nlohmann::json status() const;
    [[nodiscard]] bool endpoint_healthy(const std::string& cluster, bool healthy) const;
    // The sum of the /metrics series whose line starts with `prefix`.
    [[nodiscard]] double metric(const std::string& prefix) const;
};

// The clusters: section for {name, address} pairs (`extra_per_cluster` appended to each).
std::string cluster_yaml(const std::vector<std::pair<std::string, std::string>>& clusters,
                         const std::string& extra_per_cluster = "");

// Health checks every 100 ms, two to change state: the tests see transitions quickly.
extern const std::string kFastChecks;

// GET / on an open keep-alive connection (5 s at most); status 0 when it failed (why in
// `error` when given).
boost::beast::http::response<boost::beast::http::string_body> get_on(
    boost::beast::tcp_stream& s,
    boost::beast::flat_buffer& b,
    boost::system::error_code* error = nullptr);

// Persistent keep-alive connections sending GET / in a loop, counting answers per upstream
// and every failure (a non-200 or an I/O error on the client side).
class Load {
public:
    Load(std::uint16_t port, int connections);
    ~Load();
    void stop();
    [[nodiscard]] std::size_t ok() const { return ok_; }
    [[nodiscard]] std::size_t failed() const { return failed_; }
    [[nodiscard]] std::size_t connects() const { return connects_; }
    std::size_t served_by(const std::string& name);
    std::vector<std::string> failures();

private:
    void run(std::uint16_t port);
    void note(const std::string& what);

    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> ok_{0};
    std::atomic<std::size_t> failed_{0};
    std::atomic<std::size_t> connects_{0};
    std::mutex mutex_;
    std::map<std::string, std::size_t> by_upstream_;
    std::vector<std::string> failure_notes_;
    std::vector<std::thread> threads_;
};

// Replaces a file as editors and Kubernetes volumes do: a new file renamed over the old one.
void replace_file(const std::filesystem::path& path, const std::string& content);
std::string file_text(const std::filesystem::path& path);

// The path of the tandem-lb binary under test (TANDEM_LB_UNDER_TEST, when set, names another).
const char* tandem_lb_path();

}  // namespace support
