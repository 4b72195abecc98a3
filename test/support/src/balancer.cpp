// tandem-lb's end-to-end harness (support/balancer.hpp).
#include "support/balancer.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <unistd.h>

#include "support/http.hpp"
#include "support/wait.hpp"

namespace support {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using Json = nlohmann::json;

namespace {

std::uint16_t port_after(const std::string& line, const std::string& key) {
    const auto pos = line.find(key);
    if (pos == std::string::npos) {
        return 0;
    }
    const auto colon = line.find(':', pos + key.size());
    return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

}  // namespace

const char* tandem_lb_path() {
    // (TANDEM_LB_UNDER_TEST runs the suite against another build: tandem-lb-uring, say.)
    if (const char* other = std::getenv("TANDEM_LB_UNDER_TEST"); other != nullptr && *other) {
        return other;
    }
    return TANDEM_LB_PATH;
}

namespace {

// `argv` started; the port from its "listening on HOST:PORT" line.
std::unique_ptr<Upstream> launch(const std::string& name,
                                 const std::string& host,
                                 std::vector<std::string> argv) {
    auto u = std::make_unique<Upstream>();
    u->name = name;
    u->host = host;
    u->process = std::make_unique<ChildProcess>(std::move(argv));
    const auto line = u->process->read_line(10s);
    if (!line || line->find("listening on") == std::string::npos) {
        return nullptr;
    }
    u->port = static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
    return u;
}

}  // namespace

std::unique_ptr<Upstream> Upstream::start(const std::string& name,
                                          std::uint16_t port,
                                          const std::string& host,
                                          std::vector<std::string> extra) {
    std::vector<std::string> argv{FAKE_UPSTREAM_PATH,  "--name", name, "--host", host, "--port",
                                  std::to_string(port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return launch(name, host, std::move(argv));
}

std::unique_ptr<Upstream> Upstream::start_h2(const std::string& name,
                                             std::vector<std::string> extra) {
    std::vector<std::string> argv{FAKE_H2_UPSTREAM_PATH, "--name", name, "--port", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return launch(name, "127.0.0.1", std::move(argv));
}

void Upstream::kill() {
    process->signal(SIGKILL);
    process->wait(5s);
}

namespace {

// listen and admin on 127.0.0.1:0 unless `yaml` sets them itself.
std::string with_addresses(const std::string& yaml) {
    const auto sets = [&](const std::string& key) {
        return yaml.rfind(key + ":", 0) == 0 || yaml.find("\n" + key + ":") != std::string::npos;
    };
    return (sets("listen") ? "" : "listen: 127.0.0.1:0\n") +
           std::string(sets("admin") ? "" : "admin: 127.0.0.1:0\n") + yaml;
}

}  // namespace

std::unique_ptr<Balancer> Balancer::start(const std::string& yaml, bool merge_stderr) {
    auto b = std::make_unique<Balancer>();
    b->dir = fs::temp_directory_path() /
             ("tandem-lb-e2e-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(b->dir);
    std::ofstream(b->dir / "lb.yaml") << with_addresses(yaml);
    b->process = std::make_unique<ChildProcess>(
        std::vector<std::string>{TANDEM_LB_PATH, "-c", (b->dir / "lb.yaml").string()},
        std::map<std::string, std::string>{}, merge_stderr);
    auto line = b->process->read_line(15s);
    for (int skipped = 0;
         merge_stderr && line && skipped < 50 && line->find("tandem-lb ready") == std::string::npos;
         ++skipped) {
        b->early_output += *line + "\n";  // (log lines before the ready line)
        line = b->process->read_line(15s);
    }
    if (!line || line->find("tandem-lb ready") == std::string::npos) {
        return nullptr;
    }
    b->port = port_after(*line, "listen=");
    b->admin = port_after(*line, "admin=");
    b->https = port_after(*line, "https=");
    return b;
}

Balancer::~Balancer() {
    if (process) {
        process->signal(SIGKILL);
        process->wait(5s);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

bool Balancer::reload(const std::string& yaml, bool keep_addresses) {
    const auto before = status()["config"]["reloads"].get<int>();
    std::ofstream(dir / "lb.yaml", std::ios::trunc)
        << (keep_addresses ? with_addresses(yaml) : yaml);
    process->signal(SIGHUP);
    return wait_until([&] { return status()["config"]["reloads"] == before + 1; }, 10s);
}

Json Balancer::status() const {
    const auto r = support::http_request_at(admin_ip, admin, "GET", "/status");
    return r.status == 200 ? Json::parse(r.body) : Json();
}

bool Balancer::endpoint_healthy(const std::string& cluster, bool healthy) const {
    const auto s = status();
    if (s.is_null()) {
        return false;
    }
    for (const auto& c : s["clusters"]) {
        if (c["name"] == cluster) {
            return c["healthy"].get<bool>() == healthy;
        }
    }
    return false;
}

double Balancer::metric(const std::string& prefix) const {
    return metric_sum(support::http_request_at(admin_ip, admin, "GET", "/metrics").body, prefix);
}

std::string cluster_yaml(const std::vector<std::pair<std::string, std::string>>& clusters,
                         const std::string& extra_per_cluster) {
    std::string y = "clusters:\n";
    for (const auto& [name, address] : clusters) {
        y += "  - name: " + name + "\n    address: " + address + "\n" + extra_per_cluster;
    }
    return y;
}

const std::string kFastChecks =
    "healthCheck:\n  path: /health\n  interval: 100ms\n  timeout: 80ms\n  rise: 2\n  fall: 2\n"
    "  jitter: 0%\n";

http::response<http::string_body> get_on(beast::tcp_stream& s,
                                         beast::flat_buffer& b,
                                         boost::system::error_code* error) {
    http::request<http::string_body> req{http::verb::get, "/", 11};
    req.set(http::field::host, "x");
    boost::system::error_code ec;
    s.expires_after(5s);
    http::write(s, req, ec);
    http::response<http::string_body> res;
    if (!ec) {
        http::read(s, b, res, ec);
    }
    if (ec) {
        res.result(0);
    }
    if (error != nullptr) {
        *error = ec;
    }
    return res;
}

Load::Load(std::uint16_t port, int connections) {
    for (int i = 0; i < connections; ++i) {
        threads_.emplace_back([this, port] { run(port); });
    }
}

Load::~Load() {
    stop();
}

void Load::stop() {
    stop_ = true;
    for (auto& t : threads_) {
        if (t.joinable()) {
            t.join();
        }
    }
}

std::size_t Load::served_by(const std::string& name) {
    std::lock_guard lock(mutex_);
    return by_upstream_[name];
}

std::vector<std::string> Load::failures() {
    std::lock_guard lock(mutex_);
    return failure_notes_;
}

void Load::run(std::uint16_t port) {
    asio::io_context ioc;
    while (!stop_) {
        beast::tcp_stream stream(ioc);
        boost::system::error_code ec;
        stream.expires_after(5s);
        stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
        if (ec) {
            note("connect: " + ec.message());
            continue;
        }
        ++connects_;
        beast::flat_buffer buffer;
        while (!stop_) {
            const auto res = get_on(stream, buffer, &ec);
            if (ec) {
                note("io: " + ec.message());
                break;
            }
            if (res.result_int() != 200) {
                note("status " + std::to_string(res.result_int()) + ": " + res.body());
            } else {
                ++ok_;
                std::lock_guard lock(mutex_);
                ++by_upstream_[std::string(res["X-Upstream"])];
            }
            if (!res.keep_alive()) {
                break;
            }
        }
    }
}

void Load::note(const std::string& what) {
    ++failed_;
    std::lock_guard lock(mutex_);
    if (failure_notes_.size() < 20) {
        failure_notes_.push_back(what);
    }
}

void replace_file(const fs::path& path, const std::string& content) {
    const fs::path tmp = path.string() + ".new";
    std::ofstream(tmp, std::ios::trunc) << content;
    fs::rename(tmp, path);
}

std::string file_text(const fs::path& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace support
