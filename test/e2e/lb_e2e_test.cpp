// tandem-lb as a real process in front of real upstream processes (fake-upstream) and a real
// DNS server on loopback. Ports are 0 everywhere; readiness is the processes' ready lines.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "support/child_process.hpp"
#include "support/dns_server.hpp"
#include "support/http.hpp"

namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using support::ChildProcess;

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

std::uint16_t port_after(const std::string& line, const std::string& key) {
    const auto pos = line.find(key);
    if (pos == std::string::npos) {
        return 0;
    }
    const auto colon = line.find(':', pos + key.size());
    return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

struct Upstream {
    std::string name;
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::unique_ptr<ChildProcess> process;

    static std::unique_ptr<Upstream> start(const std::string& name,
                                           std::uint16_t port = 0,
                                           const std::string& host = "127.0.0.1",
                                           std::vector<std::string> extra = {}) {
        auto u = std::make_unique<Upstream>();
        u->name = name;
        u->host = host;
        std::vector<std::string> argv{FAKE_UPSTREAM_PATH,  "--name", name, "--host", host, "--port",
                                      std::to_string(port)};
        argv.insert(argv.end(), extra.begin(), extra.end());
        u->process = std::make_unique<ChildProcess>(std::move(argv));
        const auto line = u->process->read_line(10s);
        if (!line || line->find("listening on") == std::string::npos) {
            return nullptr;
        }
        u->port = static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
        return u;
    }
    std::string address() const { return host + ":" + std::to_string(port); }
    void kill() {
        process->signal(SIGKILL);
        process->wait(5s);
    }
};

struct Balancer {
    fs::path dir;
    std::uint16_t port = 0;
    std::uint16_t admin = 0;
    std::string admin_ip = "127.0.0.1";  // (a reload may move the admin listener)
    std::uint16_t https = 0;
    std::unique_ptr<ChildProcess> process;

    static std::unique_ptr<Balancer> start(const std::string& yaml) {
        auto b = std::make_unique<Balancer>();
        b->dir = fs::temp_directory_path() /
                 ("tandem-lb-e2e-" + std::to_string(::getpid()) + "-" +
                  std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
        fs::create_directories(b->dir);
        std::ofstream(b->dir / "lb.yaml") << "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n" << yaml;
        b->process = std::make_unique<ChildProcess>(
            std::vector<std::string>{TANDEM_LB_PATH, "-c", (b->dir / "lb.yaml").string()});
        const auto line = b->process->read_line(15s);
        if (!line || line->find("tandem-lb ready") == std::string::npos) {
            return nullptr;
        }
        b->port = port_after(*line, "listen=");
        b->admin = port_after(*line, "admin=");
        b->https = port_after(*line, "https=");
        return b;
    }
    ~Balancer() {
        if (process) {
            process->signal(SIGKILL);
            process->wait(5s);
        }
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    // Replaces the configuration file (listen/admin as at startup unless `yaml` sets them) and
    // sends SIGHUP; returns once /status reports the reload's outcome.
    bool reload(const std::string& yaml, bool keep_addresses = true) {
        const auto before = status()["config"]["reloads"].get<int>();
        std::ofstream(dir / "lb.yaml", std::ios::trunc)
            << (keep_addresses ? "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n" : "") << yaml;
        process->signal(SIGHUP);
        return wait_until([&] { return status()["config"]["reloads"] == before + 1; }, 10s);
    }
    Json status() const {
        const auto r = support::http_request_at(admin_ip, admin, "GET", "/status");
        return r.status == 200 ? Json::parse(r.body) : Json();
    }
    bool endpoint_healthy(const std::string& cluster, bool healthy) const {
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
    double metric(const std::string& prefix) const {
        const auto r = support::http_request_at(admin_ip, admin, "GET", "/metrics");
        double sum = 0;
        std::istringstream in(r.body);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(prefix, 0) == 0) {
                sum += std::stod(line.substr(line.rfind(' ') + 1));
            }
        }
        return sum;
    }
};

std::string cluster_yaml(const std::vector<std::pair<std::string, std::string>>& clusters,
                         const std::string& extra_per_cluster = "") {
    std::string y = "clusters:\n";
    for (const auto& [name, address] : clusters) {
        y += "  - name: " + name + "\n    address: " + address + "\n" + extra_per_cluster;
    }
    return y;
}

const std::string kFastChecks =
    "healthCheck:\n  path: /health\n  interval: 100ms\n  timeout: 80ms\n  rise: 2\n  fall: 2\n"
    "  jitter: 0%\n";

// GET / on an open keep-alive connection (5 s at most); status 0 when it failed (why in
// `error` when given).
http::response<http::string_body> get_on(beast::tcp_stream& s,
                                         beast::flat_buffer& b,
                                         boost::system::error_code* error = nullptr) {
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

// Persistent keep-alive connections sending GET / in a loop, counting answers per upstream
// and every failure (a non-200 or an I/O error on the client side).
class Load {
public:
    Load(std::uint16_t port, int connections) {
        for (int i = 0; i < connections; ++i) {
            threads_.emplace_back([this, port] { run(port); });
        }
    }
    ~Load() { stop(); }
    void stop() {
        stop_ = true;
        for (auto& t : threads_) {
            if (t.joinable()) {
                t.join();
            }
        }
    }
    std::size_t ok() const { return ok_; }
    std::size_t failed() const { return failed_; }
    std::size_t connects() const { return connects_; }
    std::size_t served_by(const std::string& name) {
        std::lock_guard lock(mutex_);
        return by_upstream_[name];
    }
    std::vector<std::string> failures() {
        std::lock_guard lock(mutex_);
        return failure_notes_;
    }

private:
    void run(std::uint16_t port) {
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
    void note(const std::string& what) {
        ++failed_;
        std::lock_guard lock(mutex_);
        if (failure_notes_.size() < 20) {
            failure_notes_.push_back(what);
        }
    }

    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> ok_{0};
    std::atomic<std::size_t> failed_{0};
    std::atomic<std::size_t> connects_{0};
    std::mutex mutex_;
    std::map<std::string, std::size_t> by_upstream_;
    std::vector<std::string> failure_notes_;
    std::vector<std::thread> threads_;
};

TEST(Balancer, RequestsAlternateAcrossTwoUpstreams) {
    auto a = Upstream::start("east");
    auto b = Upstream::start("west");
    ASSERT_TRUE(a && b);
    auto lb = Balancer::start("threads: 1\n" +
                              cluster_yaml({{"east", a->address()}, {"west", b->address()}}) +
                              kFastChecks);
    ASSERT_TRUE(lb);
    std::vector<std::string> seen;
    for (int i = 0; i < 8; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/");
        ASSERT_EQ(r.status, 200u) << r.error;
        seen.push_back(r.headers.at("x-upstream"));
    }
    for (std::size_t i = 1; i < seen.size(); ++i) {
        EXPECT_NE(seen[i], seen[i - 1]) << "request " << i << " did not alternate";
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), "east"), 4);
}

TEST(Balancer, WeightsAndTheBackupTier) {
    auto a = Upstream::start("heavy");
    auto b = Upstream::start("light");
    auto dr = Upstream::start("dr");
    ASSERT_TRUE(a && b && dr);
    auto lb = Balancer::start(
        "threads: 1\nclusters:\n  - name: heavy\n    address: " + a->address() +
        "\n    weight: 3\n  - name: light\n    address: " + b->address() +
        "\n  - name: dr\n    address: " + dr->address() + "\n    backup: true\n" + kFastChecks);
    ASSERT_TRUE(lb);
    std::map<std::string, int> count;
    for (int i = 0; i < 40; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/");
        ASSERT_EQ(r.status, 200u);
        ++count[r.headers.at("x-upstream")];
    }
    EXPECT_EQ(count["heavy"], 30);
    EXPECT_EQ(count["light"], 10);
    EXPECT_EQ(count["dr"], 0);
    a->kill();
    b->kill();
    ASSERT_TRUE(wait_until(
        [&] {
            return lb->endpoint_healthy("light", false) && lb->endpoint_healthy("heavy", false);
        },
        5s));
    for (int i = 0; i < 5; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/");
        ASSERT_EQ(r.status, 200u);
        EXPECT_EQ(r.headers.at("x-upstream"), "dr");
    }
    EXPECT_EQ(support::http_request(lb->admin, "GET", "/healthz").status, 200u);
    dr->kill();
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("dr", false); }, 5s));
    const auto none = support::http_request(lb->port, "GET", "/");
    EXPECT_EQ(none.status, 503u);
    EXPECT_NE(none.body.find("no healthy cluster"), std::string::npos) << none.body;
    EXPECT_EQ(support::http_request(lb->admin, "GET", "/healthz").status, 503u);
}

TEST(Balancer, ForwardingAndHopByHopHeaders) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    auto lb = Balancer::start("threads: 1\n" + cluster_yaml({{"east", a->address()}}));
    ASSERT_TRUE(lb);
    const auto r = support::http_request(lb->port, "POST", "/echo", "payload",
                                         {{"Host", "petstore.apps.example.com"},
                                          {"Connection", "keep-alive, X-Hop"},
                                          {"X-Hop", "only for the first hop"},
                                          {"X-Custom", "kept"},
                                          {"X-Forwarded-For", "203.0.113.7"}});
    ASSERT_EQ(r.status, 200u) << r.error;
    EXPECT_EQ(r.body, "payload");
    EXPECT_EQ(r.headers.at("x-echo-host"), "petstore.apps.example.com");
    EXPECT_EQ(r.headers.at("x-echo-xff"), "203.0.113.7, 127.0.0.1");
    EXPECT_EQ(r.headers.at("x-echo-xfp"), "http");
    EXPECT_EQ(r.headers.at("x-echo-forwarded"), "for=127.0.0.1;proto=http");
    EXPECT_EQ(r.headers.at("x-echo-hop"), "-");
    EXPECT_EQ(r.headers.at("x-echo-custom"), "kept");
    EXPECT_EQ(r.headers.at("x-echo-connection"), "-");
}

TEST(Balancer, KeepAliveConnectionsSurviveIdlePeriods) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    auto lb = Balancer::start("threads: 1\ntimeouts:\n  clientIdle: 2500ms\n" +
                              cluster_yaml({{"east", a->address()}}));
    ASSERT_TRUE(lb);
    asio::io_context ioc;
    const asio::ip::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), lb->port);
    const auto get = [](beast::tcp_stream& s, beast::flat_buffer& b) {
        const auto res = get_on(s, b);
        EXPECT_EQ(res.result_int(), 200u);
        EXPECT_EQ(res.body(), "east\n");
    };
    const auto closed_by_balancer = [](beast::tcp_stream& s, beast::flat_buffer& b) {
        http::response<http::string_body> res;
        boost::system::error_code ec;
        s.expires_after(10s);
        http::read(s, b, res, ec);
        return ec == http::error::end_of_stream;
    };
    beast::tcp_stream stream(ioc);
    stream.connect(at);
    beast::flat_buffer buffer;
    // The second request comes after the balancer has parked the idle connection (1 s).
    get(stream, buffer);
    std::this_thread::sleep_for(1500ms);  // the idle period under test
    get(stream, buffer);
    EXPECT_EQ(lb->status()["client_connections"], 1);

    // A parked connection is still closed at clientIdle.
    const auto idle_from = std::chrono::steady_clock::now();
    EXPECT_TRUE(closed_by_balancer(stream, buffer));
    const auto idle_for = std::chrono::steady_clock::now() - idle_from;
    EXPECT_GE(idle_for, 2000ms);
    EXPECT_LT(idle_for, 4000ms);
    EXPECT_TRUE(wait_until([&] { return lb->status()["client_connections"] == 0; }, 2s));

    // SIGTERM closes parked connections at once and exits.
    beast::tcp_stream last(ioc);
    last.connect(at);
    beast::flat_buffer last_buffer;
    get(last, last_buffer);
    std::this_thread::sleep_for(1300ms);  // parked
    lb->process->signal(SIGTERM);
    EXPECT_EQ(lb->process->wait(3s), 0);
    EXPECT_TRUE(closed_by_balancer(last, last_buffer));
}

TEST(Balancer, LargeAndChunkedBodiesStreamBothWays) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    auto lb = Balancer::start("threads: 1\n" + cluster_yaml({{"east", a->address()}}) +
                              "limits:\n  maxBodyBytes: 8MiB\n");
    ASSERT_TRUE(lb);
    std::string big(5 * 1024 * 1024, 'b');
    for (std::size_t i = 0; i < big.size(); i += 4096) {
        big[i] = static_cast<char>('a' + (i / 4096) % 26);
    }
    const auto echo = support::http_request(lb->port, "PUT", "/echo", big, {}, 30s);
    ASSERT_EQ(echo.status, 200u) << echo.error;
    EXPECT_EQ(echo.body.size(), big.size());
    EXPECT_TRUE(echo.body == big);

    const auto chunked = support::http_request(lb->port, "GET", "/chunked?bytes=3000000");
    ASSERT_EQ(chunked.status, 200u);
    EXPECT_EQ(chunked.body.size(), 3000000u);
    EXPECT_EQ(chunked.headers.at("transfer-encoding"), "chunked");

    // A chunked request body (with Expect: 100-continue) arrives whole.
    const std::string raw =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: "
        "100-continue\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    const auto reply = support::raw_exchange(lb->port, raw);
    EXPECT_EQ(reply.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 0), 0u) << reply;
    EXPECT_NE(reply.find("X-Echo-Body-Bytes: 11"), std::string::npos) << reply;
    EXPECT_NE(reply.find("X-Echo-Expect: -"), std::string::npos) << reply;
    EXPECT_NE(reply.find("hello world"), std::string::npos) << reply;

    const auto too_big = support::http_request(lb->port, "POST", "/echo",
                                               std::string(9 * 1024 * 1024, 'x'), {}, 30s);
    EXPECT_EQ(too_big.status, 413u);
}

TEST(Balancer, WebSocketsAreTunneled) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start("threads: 1\ntimeouts:\n  tunnelIdle: 1s\n" +
                              cluster_yaml({{"east", east->address()}, {"west", west->address()}}) +
                              kFastChecks);
    ASSERT_TRUE(lb);
    asio::io_context ioc;
    using Ws = beast::websocket::stream<beast::tcp_stream>;
    const auto open = [&](Ws& ws, std::string& upstream) {
        beast::get_lowest_layer(ws).expires_after(5s);
        beast::get_lowest_layer(ws).connect(
            asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), lb->port));
        beast::get_lowest_layer(ws).expires_never();
        beast::websocket::response_type res;
        ws.handshake(res, "api.example.com", "/ws");
        upstream = std::string(res["X-Upstream"]);
    };
    const auto say = [](Ws& ws, const std::string& text) {
        ws.write(asio::buffer(text));
        beast::flat_buffer in;
        ws.read(in);
        return beast::buffers_to_string(in.data());
    };
    // Two WebSockets: one per cluster (each handshake is a request of the round robin); messages
    // go both ways through the balancer, many times over.
    Ws first(ioc);
    Ws second(ioc);
    std::string u1;
    std::string u2;
    open(first, u1);
    open(second, u2);
    EXPECT_NE(u1, u2);
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(say(first, "hello " + std::to_string(i)), u1 + ": hello " + std::to_string(i));
        EXPECT_EQ(say(second, std::string(70000, 'x')), u2 + ": " + std::string(70000, 'x'));
    }
    const auto idle_from = std::chrono::steady_clock::now();  // second's last byte
    const auto s = lb->status();
    EXPECT_EQ(s["clusters"][0]["in_flight"].get<int>() + s["clusters"][1]["in_flight"].get<int>(),
              2);
    EXPECT_EQ(lb->metric("tandem_lb_requests_total{cluster=\"east\",code_class=\"1xx\"") +
                  lb->metric("tandem_lb_requests_total{cluster=\"west\",code_class=\"1xx\""),
              2);
    // The closing handshake passes through too (close() waits for the cluster's close frame).
    boost::system::error_code ec;
    beast::get_lowest_layer(first).expires_after(5s);
    first.close(beast::websocket::close_code::normal, ec);
    EXPECT_FALSE(ec) << ec.message();
    beast::flat_buffer rest;
    // A tunnel with no byte either way for tunnelIdle is closed.
    beast::get_lowest_layer(second).expires_after(10s);
    second.read(rest, ec);
    EXPECT_TRUE(ec) << "the idle tunnel stayed open";
    const auto idle_for = std::chrono::steady_clock::now() - idle_from;
    EXPECT_GE(idle_for, 900ms);
    EXPECT_LT(idle_for, 3s);
    EXPECT_TRUE(wait_until(
        [&] {
            const auto st = lb->status();
            return st["clusters"][0]["in_flight"] == 0 && st["clusters"][1]["in_flight"] == 0;
        },
        3s));
    // Upgrade: h2c is not asked of the clusters: a plain request.
    const auto h2c = support::http_request(lb->port, "GET", "/echo", "",
                                           {{"Connection", "Upgrade, HTTP2-Settings"},
                                            {"Upgrade", "h2c"},
                                            {"HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA"}});
    EXPECT_EQ(h2c.status, 200u);
    EXPECT_EQ(h2c.headers.at("x-echo-connection"), "-");
}

TEST(Balancer, LimitsAndMalformedRequests) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", a->address()}}) +
                        "limits:\n  maxHeaderBytes: 4KiB\ntimeouts:\n  clientHeader: 300ms\n");
    ASSERT_TRUE(lb);
    const auto big =
        support::http_request(lb->port, "GET", "/", "", {{"X-Big", std::string(8000, 'h')}});
    EXPECT_EQ(big.status, 431u);
    const auto bad = support::raw_exchange(lb->port, "GET / HTTP/1.1\r\nHost x\r\n\r\n");
    EXPECT_EQ(bad.rfind("HTTP/1.1 400", 0), 0u) << bad;
    EXPECT_NE(bad.find("Connection: close"), std::string::npos);
    const auto slow = support::raw_exchange(lb->port, "GET / HTTP/1.1\r\nHost: x\r\n", 5s);
    EXPECT_EQ(slow.rfind("HTTP/1.1 408", 0), 0u) << slow;
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").status, 200u);  // still serving
}

// A throwaway PKI made with the openssl command: a CA, a second CA that signed nothing we
// serve, and a certificate for router.test and 127.0.0.1 signed by the first.
struct TestPki {
    fs::path dir;
    bool ok = false;
    TestPki() {
        dir = fs::temp_directory_path() / ("tandem-lb-pki-" + std::to_string(::getpid()));
        fs::create_directories(dir);
        const std::string d = dir.string();
        const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        const std::string cmd =
            "set -e; cd '" + d +
            "'; exec >openssl.log 2>&1\n"
            "openssl req -x509" +
            ec +
            " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca\n"
            "openssl req -x509" +
            ec +
            " -keyout other.key -out other-ca.pem -days 2 "
            "-subj /CN=other-ca\n"
            "openssl req" +
            ec +
            " -keyout server.key -out server.csr -subj /CN=router.test\n"
            "printf 'subjectAltName=DNS:router.test,IP:127.0.0.1\\n' >san.ext\n"
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out server.pem -days 2 -extfile san.ext\n"
            // The balancer's own certificate for clients, and its renewal (a new key).
            "printf 'subjectAltName=DNS:api.test\\n' >api.ext\n"
            // A client certificate (mutual TLS towards clusters that ask for one).
            "openssl req" +
            ec +
            " -keyout client.key -out client.csr -subj /CN=tandem-lb\n"
            "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out client.pem -days 2\n"
            "for n in api api2; do openssl req" +
            ec +
            " -keyout \\$n.key -out \\$n.csr "
            "-subj /CN=api.test; openssl x509 -req -in \\$n.csr -CA ca.pem -CAkey ca.key "
            "-CAcreateserial -out \\$n.pem -days 2 -extfile api.ext; done\n";
        ok = std::system(("bash -c \"" + cmd + "\"").c_str()) == 0;
    }
    ~TestPki() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }
    std::vector<std::string> server_args() const {
        return {"--tls-cert", (dir / "server.pem").string(), "--tls-key",
                (dir / "server.key").string()};
    }
};

std::string endpoint_error(const Json& status, const std::string& cluster) {
    for (const auto& c : status["clusters"]) {
        if (c["name"] == cluster && !c["endpoints"].empty()) {
            const auto& last = c["endpoints"][0]["last_check"];
            return last.is_object() && last["error"].is_string() ? last["error"].get<std::string>()
                                                                 : "";
        }
    }
    return "";
}

TEST(Balancer, TlsClustersAreVerifiedAndGetSni) {
    TestPki pki;
    ASSERT_TRUE(pki.ok) << "openssl failed; see " << (pki.dir / "openssl.log");
    auto secure = Upstream::start("secure", 0, "127.0.0.1", pki.server_args());
    ASSERT_TRUE(secure);
    const std::string ca = (pki.dir / "ca.pem").string();
    const std::string other = (pki.dir / "other-ca.pem").string();
    const std::string addr = secure->address();
    auto lb = Balancer::start(
        "threads: 1\nclusters:\n"
        "  - {name: good, address: '" +
        addr + "', tls: {serverName: router.test, caFile: '" + ca +
        "'}}\n"
        "  - {name: wrongname, address: '" +
        addr + "', tls: {serverName: other.test, caFile: '" + ca +
        "'}}\n"
        "  - {name: wrongca, address: '" +
        addr + "', tls: {serverName: router.test, caFile: '" + other +
        "'}}\n"
        "  - {name: unverified, address: '" +
        addr + "', tls: {verify: false}}\n" + kFastChecks + "retry:\n  ejectFor: 0s\n");
    ASSERT_TRUE(lb);
    ASSERT_TRUE(wait_until(
        [&] {
            return lb->endpoint_healthy("good", true) && lb->endpoint_healthy("unverified", true) &&
                   lb->endpoint_healthy("wrongname", false) &&
                   lb->endpoint_healthy("wrongca", false);
        },
        5s))
        << lb->status().dump(2);
    const auto status = lb->status();
    EXPECT_NE(endpoint_error(status, "wrongname").find("hostname mismatch"), std::string::npos)
        << status.dump(2);
    EXPECT_NE(endpoint_error(status, "wrongname").find("name checked: other.test"),
              std::string::npos);
    EXPECT_NE(endpoint_error(status, "wrongca").find("certificate verify failed"),
              std::string::npos)
        << status.dump(2);
    // Requests go over TLS to the healthy clusters: SNI router.test for good, none for the
    // unverified cluster addressed by IP; bodies and headers pass through.
    std::map<std::string, int> sni;
    for (int i = 0; i < 8; ++i) {
        const auto r = support::http_request(lb->port, "POST", "/echo", "over tls",
                                             {{"Host", "petstore.apps.example.com"}});
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.body, "over tls");
        EXPECT_EQ(r.headers.at("x-echo-host"), "petstore.apps.example.com");
        ++sni[r.headers.at("x-echo-sni")];
    }
    EXPECT_EQ(sni["router.test"], 4) << "good";
    EXPECT_EQ(sni["-"], 4) << "unverified";
    const auto big = support::http_request(lb->port, "GET", "/chunked?bytes=300000");
    EXPECT_EQ(big.status, 200u);
    EXPECT_EQ(big.body.size(), 300000u);

    // Without health checks the request path meets the failure itself: the handshake fails,
    // the request is retried on another cluster; with nowhere else to go it is a 502 that
    // says why.
    auto only_bad = Balancer::start(
        "threads: 1\nclusters:\n"
        "  - {name: wrongname, address: '" +
        addr + "', tls: {serverName: other.test, caFile: '" + ca +
        "'}}\n  - {name: good, address: '" + addr + "', tls: {serverName: router.test, caFile: '" +
        ca + "'}}\nhealthCheck:\n  enabled: false\nretry:\n  ejectFor: 0s\n");
    ASSERT_TRUE(only_bad);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(support::http_request(only_bad->port, "GET", "/").status, 200u);
    }
    EXPECT_GE(only_bad->metric("tandem_lb_retries_total{cluster=\"wrongname\",reason=\"connect\""),
              2);
    auto none = Balancer::start(
        "threads: 1\nclusters:\n"
        "  - {name: wrongname, address: '" +
        addr + "', tls: {serverName: other.test, caFile: '" + ca +
        "'}}\nhealthCheck:\n  enabled: false\n");
    ASSERT_TRUE(none);
    const auto r = support::http_request(none->port, "GET", "/");
    EXPECT_EQ(r.status, 502u);
    EXPECT_NE(r.body.find("TLS handshake with cluster wrongname failed: certificate verify "
                          "failed: hostname mismatch (name checked: other.test)"),
              std::string::npos)
        << r.body;
    // ... and the balancer is still there to say it again.
    EXPECT_EQ(support::http_request(none->port, "GET", "/").status, 502u);
}

// Routers close idle keep-alive connections; one the balancer still holds in its pool must not
// cost a request: an idempotent one is retried on a fresh connection, a non-idempotent one
// probes the pooled connection first. Plain and TLS (close_notify) both.
// A certificate's serial number in hex ("" without one); frees `cert`.
std::string serial(X509* cert) {
    if (cert == nullptr) {
        return "";
    }
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string out = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(cert);
    return out;
}

// SNI api.test (SSL_set_tlsext_host_name without its C cast).
void set_sni(SSL* ssl) {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>("api.test"));
}

// A TLS client of the balancer's https listener: verifies its certificate against the test CA
// for api.test, keeps the connection alive.
struct HttpsClient {
    asio::io_context ioc;
    asio::ssl::context ctx{asio::ssl::context::tls_client};
    std::unique_ptr<asio::ssl::stream<beast::tcp_stream>> stream;
    beast::flat_buffer buffer;

    bool connect(std::uint16_t port, const fs::path& ca, const std::string& ip = "127.0.0.1") {
        ctx.load_verify_file(ca.string());
        ctx.set_verify_mode(asio::ssl::verify_peer);
        stream = std::make_unique<asio::ssl::stream<beast::tcp_stream>>(ioc, ctx);
        set_sni(stream->native_handle());
        SSL_set1_host(stream->native_handle(), "api.test");
        beast::get_lowest_layer(*stream).expires_after(5s);
        boost::system::error_code ec;
        beast::get_lowest_layer(*stream).connect(
            asio::ip::tcp::endpoint(asio::ip::make_address(ip), port), ec);
        if (!ec) {
            stream->handshake(asio::ssl::stream_base::client, ec);
        }
        return !ec;
    }
    // GET `path`; the error when the connection failed (end_of_stream: closed by the balancer).
    boost::system::error_code get(const std::string& path, http::response<http::string_body>& res) {
        http::request<http::empty_body> req{http::verb::get, path, 11};
        req.set(http::field::host, "api.test");
        boost::system::error_code ec;
        beast::get_lowest_layer(*stream).expires_after(5s);
        http::write(*stream, req, ec);
        if (!ec) {
            http::read(*stream, buffer, res, ec);
        }
        return ec;
    }
    std::string peer_serial() { return serial(SSL_get1_peer_certificate(stream->native_handle())); }
};

std::string serial_of(const fs::path& pem) {
    FILE* f = std::fopen(pem.c_str(), "r");
    X509* cert = f != nullptr ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f != nullptr) {
        std::fclose(f);
    }
    return serial(cert);
}

// The https listener's tests: a test PKI and two upstreams, east and west.
struct TlsBed {
    TestPki pki;
    std::unique_ptr<Upstream> east = Upstream::start("east");
    std::unique_ptr<Upstream> west = Upstream::start("west");
    [[nodiscard]] bool ready() const { return pki.ok && east && west; }
    // An https section serving `cert` and `key`.
    static std::string https(const fs::path& cert, const fs::path& key) {
        return "https:\n  listen: 127.0.0.1:0\n  certFile: " + cert.string() +
               "\n  keyFile: " + key.string() + "\n";
    }
    // east, and west too when `both`.
    [[nodiscard]] std::string clusters(bool both) const {
        std::vector<std::pair<std::string, std::string>> c{{"east", east->address()}};
        if (both) {
            c.emplace_back("west", west->address());
        }
        return cluster_yaml(c);
    }
};

TEST(Balancer, HttpsListenerTerminatesTlsAndRenewsItsCertificateOnReload) {
    TlsBed bed;
    ASSERT_TRUE(bed.ready()) << "see " << (bed.pki.dir / "openssl.log");
    const TestPki& pki = bed.pki;
    const auto https = [&](const std::string& name) {
        return TlsBed::https(pki.dir / (name + ".pem"), pki.dir / (name + ".key"));
    };
    const std::string rest =
        "threads: 1\ntimeouts:\n  clientIdle: 5s\n" + bed.clusters(true) + kFastChecks;
    auto lb = Balancer::start(https("api") + rest);
    ASSERT_TRUE(lb);
    ASSERT_NE(lb->https, 0);
    EXPECT_EQ(lb->status()["https"], "127.0.0.1:" + std::to_string(lb->https));

    // Verified against the CA for api.test; keep-alive; requests alternate; the clusters learn
    // that the client came over https.
    HttpsClient client;
    ASSERT_TRUE(client.connect(lb->https, pki.dir / "ca.pem"));
    EXPECT_EQ(client.peer_serial(), serial_of(pki.dir / "api.pem"));
    std::map<std::string, int> by;
    for (int i = 0; i < 4; ++i) {
        http::response<http::string_body> res;
        ASSERT_FALSE(client.get("/echo", res));
        EXPECT_EQ(res.result_int(), 200u);
        EXPECT_EQ(res["X-Echo-XFP"], "https");
        ++by[std::string(res["X-Upstream"])];
    }
    EXPECT_EQ(by["east"], 2);
    EXPECT_EQ(by["west"], 2);
    // A WebSocket over TLS (wss): tunneled through the TLS session.
    {
        asio::ssl::context wctx{asio::ssl::context::tls_client};
        wctx.load_verify_file((pki.dir / "ca.pem").string());
        wctx.set_verify_mode(asio::ssl::verify_peer);
        beast::websocket::stream<asio::ssl::stream<beast::tcp_stream>> wss(client.ioc, wctx);
        set_sni(wss.next_layer().native_handle());
        beast::get_lowest_layer(wss).expires_after(5s);
        beast::get_lowest_layer(wss).connect(
            asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), lb->https));
        wss.next_layer().handshake(asio::ssl::stream_base::client);
        beast::websocket::response_type wres;
        wss.handshake(wres, "api.test", "/ws");
        const std::string who(wres["X-Upstream"]);
        for (int i = 0; i < 5; ++i) {
            wss.write(asio::buffer(std::string("ping")));
            beast::flat_buffer in;
            wss.read(in);
            EXPECT_EQ(beast::buffers_to_string(in.data()), who + ": ping");
        }
        boost::system::error_code wec;
        wss.close(beast::websocket::close_code::normal, wec);
        EXPECT_FALSE(wec) << wec.message();
    }
    // The plain listener still says http.
    EXPECT_EQ(support::http_request(lb->port, "GET", "/echo").headers.at("x-echo-xfp"), "http");
    // An idle TLS connection is parked (1 s) and resumes with its TLS state.
    std::this_thread::sleep_for(1300ms);  // the idle period under test
    {
        http::response<http::string_body> res;
        ASSERT_FALSE(client.get("/", res));
        EXPECT_EQ(res.result_int(), 200u);
    }
    // Plain HTTP on the https port fails its handshake and costs nothing else.
    EXPECT_EQ(support::http_request(lb->https, "GET", "/", "", {}, 2s).status, 0u);

    // A renewed certificate and west removed: SIGHUP. New connections get the new certificate;
    // the open TLS connection (idle, not parked yet) moves to the new generation with its TLS
    // session: it keeps working, on the same connection, and now sees east only.
    const std::string east_only =
        "threads: 1\ntimeouts:\n  clientIdle: 5s\n" + bed.clusters(false) + kFastChecks;
    ASSERT_TRUE(lb->reload(https("api2") + east_only));
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true) << lb->status().dump(2);
    const auto moved_requests = [&](const std::string& path, std::map<std::string, int>& seen) {
        for (int i = 0; i < 4; ++i) {
            http::response<http::string_body> r;
            const auto ec = client.get(path, r);
            if (ec) {
                return ::testing::AssertionFailure() << "request " << i << ": " << ec.message();
            }
            if (r.result_int() != 200 || !r.keep_alive()) {
                return ::testing::AssertionFailure() << "request " << i << ": " << r;
            }
            ++seen[std::string(r["X-Upstream"])];
        }
        return ::testing::AssertionSuccess();
    };
    std::map<std::string, int> seen;
    ASSERT_TRUE(moved_requests("/echo", seen));
    EXPECT_EQ(seen["east"], 4);
    // The old generation ends while the connection stays open.
    ASSERT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 5s))
        << lb->status().dump(2);
    EXPECT_EQ(lb->metric("tandem_lb_client_connections{"), 1);
    seen.clear();
    ASSERT_TRUE(moved_requests("/", seen));
    // A request in flight during a reload (west back): answered by the old generation with
    // keep-alive, then the connection moves on, between requests (a request that is already
    // there when the response has gone is served where it is; the next turn moves it).
    {
        http::response<http::string_body> slow;
        boost::system::error_code slow_ec;
        std::jthread t([&] { slow_ec = client.get("/slow?ms=700", slow); });
        ASSERT_TRUE(wait_until(
            [&] { return lb->metric("tandem_lb_upstream_requests_in_flight") == 1; }, 5s));
        ASSERT_TRUE(lb->reload(https("api2") + rest));
        t.join();
        ASSERT_FALSE(slow_ec) << slow_ec.message();
        EXPECT_EQ(slow.result_int(), 200u);
        EXPECT_TRUE(slow.keep_alive());
        ASSERT_TRUE(wait_until(
            [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 5s));
        seen.clear();
        ASSERT_TRUE(moved_requests("/echo", seen));
        EXPECT_EQ(seen["east"], 2);
        EXPECT_EQ(seen["west"], 2);
    }
    // Parked (idle > 1 s) during a reload: moved while parked.
    std::this_thread::sleep_for(1300ms);  // the idle period under test
    ASSERT_TRUE(lb->reload(https("api2") + east_only));
    ASSERT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 5s));
    seen.clear();
    ASSERT_TRUE(moved_requests("/echo", seen));
    EXPECT_EQ(seen["east"], 4);
    // Still the first TLS session (certificate of before the renewal).
    EXPECT_EQ(client.peer_serial(), serial_of(pki.dir / "api.pem"));
    EXPECT_EQ(lb->status()["config"]["generation"], 4);

    HttpsClient renewed;
    ASSERT_TRUE(renewed.connect(lb->https, pki.dir / "ca.pem"));
    EXPECT_EQ(renewed.peer_serial(), serial_of(pki.dir / "api2.pem"));
    EXPECT_NE(renewed.peer_serial(), serial_of(pki.dir / "api.pem"));
    http::response<http::string_body> res;
    ASSERT_FALSE(renewed.get("/", res));
    EXPECT_EQ(res.result_int(), 200u);

    // A key that does not belong to the certificate: the reload is refused and says so.
    ASSERT_TRUE(
        lb->reload("https:\n  listen: 127.0.0.1:0\n  certFile: " + (pki.dir / "api.pem").string() +
                   "\n  keyFile: " + (pki.dir / "api2.key").string() + "\n" + rest));
    const auto s = lb->status();
    EXPECT_EQ(s["config"]["last_reload"]["ok"], false);
    EXPECT_NE(s["config"]["last_reload"]["error"].get<std::string>().find(
                  "does not belong to the certificate"),
              std::string::npos)
        << s.dump(2);
    // --check-config finds the same before anything runs.
    ChildProcess check({TANDEM_LB_PATH, "--check-config", "-c", (lb->dir / "lb.yaml").string()}, {},
                       true);
    const auto out = check.read_all(10s);
    EXPECT_EQ(check.wait(5s), 1);
    EXPECT_NE(out.find("does not belong to the certificate"), std::string::npos) << out;
    lb->process->signal(SIGTERM);
    EXPECT_EQ(lb->process->wait(5s), 0);
}

TEST(Balancer, TlsConnectionsUnderLoadMoveAcrossReloads) {
    TlsBed bed;
    ASSERT_TRUE(bed.ready()) << "see " << (bed.pki.dir / "openssl.log");
    const TestPki& pki = bed.pki;
    const auto yaml = [&](bool both) {
        return "threads: 2\n" + TlsBed::https(pki.dir / "api.pem", pki.dir / "api.key") +
               bed.clusters(both) + kFastChecks;
    };
    auto lb = Balancer::start(yaml(true));
    ASSERT_TRUE(lb);
    // Keep-alive TLS clients sending back to back; any failure (a close, a reset, a non-200, a
    // Connection: close) ends one, and none reconnects.
    constexpr int kClients = 4;
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    std::vector<std::string> failures(kClients);
    std::vector<std::jthread> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&, i] {
            HttpsClient c;
            if (!c.connect(lb->https, pki.dir / "ca.pem")) {
                failures[static_cast<std::size_t>(i)] = "connect failed";
                return;
            }
            while (!stop) {
                http::response<http::string_body> res;
                const auto ec = c.get("/echo", res);
                if (ec || res.result_int() != 200 || !res.keep_alive()) {
                    failures[static_cast<std::size_t>(i)] =
                        ec ? ec.message() : "status " + std::to_string(res.result_int());
                    return;
                }
                ++answered;
            }
        });
    }
    const auto more = [&](int n) {
        const int from = answered;
        return wait_until([&] { return answered >= from + n; }, 10s);
    };
    ASSERT_TRUE(more(200));
    for (int r = 0; r < 4; ++r) {
        ASSERT_TRUE(lb->reload(yaml(r % 2 == 1)));
        EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
        ASSERT_TRUE(more(200)) << "traffic stopped after reload " << r;
    }
    // Every connection left the old generations while the clients kept sending.
    EXPECT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 10s))
        << lb->status().dump(2);
    // Still the same four connections, open, accepted once each (a move is not an accept).
    EXPECT_EQ(lb->metric("tandem_lb_client_connections{"), kClients);
    EXPECT_EQ(lb->metric("tandem_lb_client_connections_total"), kClients);
    stop = true;
    clients.clear();
    for (const auto& f : failures) {
        EXPECT_EQ(f, "");
    }
    EXPECT_EQ(lb->status()["config"]["generation"], 5);
}

// Replaces a file as editors and Kubernetes volumes do: a new file renamed over the old one.
void replace_file(const fs::path& path, const std::string& content) {
    const fs::path tmp = path.string() + ".new";
    std::ofstream(tmp, std::ios::trunc) << content;
    fs::rename(tmp, path);
}
std::string file_text(const fs::path& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Balancer, ChangedFilesAreAppliedWithoutASignal) {
    TlsBed bed;
    ASSERT_TRUE(bed.ready()) << "see " << (bed.pki.dir / "openssl.log");
    const TestPki& pki = bed.pki;
    const fs::path cert = pki.dir / "live.pem";
    const fs::path key = pki.dir / "live.key";
    replace_file(cert, file_text(pki.dir / "api.pem"));
    replace_file(key, file_text(pki.dir / "api.key"));
    const auto yaml = [&](const std::string& interval, bool both) {
        return "threads: 1\nreload:\n  watchInterval: " + interval + "\n" +
               TlsBed::https(cert, key) + bed.clusters(both) + kFastChecks;
    };
    auto lb = Balancer::start(yaml("100ms", true));
    ASSERT_TRUE(lb);
    // Edits keep the addresses (port 0 as at the start: the same sockets).
    const auto edit = [&](const std::string& text) {
        replace_file(lb->dir / "lb.yaml", "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n" + text);
    };
    const auto config = [&] { return lb->status()["config"]; };
    EXPECT_EQ(config()["watch_interval_ms"], 100);
    const auto served_serial = [&] {
        HttpsClient c;
        return c.connect(lb->https, pki.dir / "ca.pem") ? c.peer_serial() : std::string();
    };
    EXPECT_EQ(served_serial(), serial_of(pki.dir / "api.pem"));

    // The certificate renewed in place (as cert-manager does to a mounted Secret), no signal: new
    // connections get it. (Between the two files the key does not match: that look is refused,
    // the next one applies.)
    replace_file(key, file_text(pki.dir / "api2.key"));
    replace_file(cert, file_text(pki.dir / "api2.pem"));
    ASSERT_TRUE(wait_until([&] { return served_serial() == serial_of(pki.dir / "api2.pem"); }, 5s))
        << config().dump(2);
    EXPECT_EQ(config()["last_reload"]["ok"], true);

    // The configuration edited (west removed): applied, traffic follows.
    const int gen = config()["generation"].get<int>();
    edit(yaml("100ms", false));
    ASSERT_TRUE(wait_until([&] { return config()["generation"] == gen + 1; }, 5s));
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(support::http_request(lb->port, "GET", "/").body, "east\n");
    }

    // A broken edit is refused once, not again while the file stays as it is; fixing it applies.
    const int reloads = config()["reloads"].get<int>();
    edit(yaml("100ms", true) + "bogus: 1\n");
    ASSERT_TRUE(wait_until([&] { return config()["reloads"] == reloads + 1; }, 5s));
    EXPECT_EQ(config()["last_reload"]["ok"], false);
    EXPECT_NE(config()["last_reload"]["error"].get<std::string>().find("unknown field"),
              std::string::npos)
        << config().dump(2);
    std::this_thread::sleep_for(600ms);  // six more looks at the unchanged broken file
    EXPECT_EQ(config()["reloads"], reloads + 1);
    EXPECT_EQ(config()["generation"], gen + 1);
    edit(yaml("100ms", true));
    ASSERT_TRUE(wait_until([&] { return config()["generation"] == gen + 2; }, 5s));
    std::set<std::string> seen;
    for (int i = 0; i < 4; ++i) {
        seen.insert(support::http_request(lb->port, "GET", "/").body);
    }
    EXPECT_EQ(seen.size(), 2u);

    // The watch turned off by an edit: later edits wait for SIGHUP.
    edit(yaml("0s", true));
    ASSERT_TRUE(wait_until([&] { return config()["generation"] == gen + 3; }, 5s));
    EXPECT_EQ(config()["watch_interval_ms"], 0);
    edit(yaml("0s", false));
    std::this_thread::sleep_for(1500ms);  // the period under test: not applied by itself
    EXPECT_EQ(config()["generation"], gen + 3);
    lb->process->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return config()["generation"] == gen + 4; }, 5s));
    lb->process->signal(SIGTERM);
    EXPECT_EQ(lb->process->wait(5s), 0);
}

TEST(Balancer, ClientCertificatesForClustersThatAskForThem) {
    TestPki pki;
    ASSERT_TRUE(pki.ok) << "openssl failed; see " << (pki.dir / "openssl.log");
    const std::string ca = (pki.dir / "ca.pem").string();
    auto args = pki.server_args();
    args.insert(args.end(), {"--tls-client-ca", ca});
    auto strict = Upstream::start("strict", 0, "127.0.0.1", args);
    ASSERT_TRUE(strict);
    const std::string tls = "tls: {serverName: router.test, caFile: '" + ca + "'";
    auto lb = Balancer::start(
        "threads: 1\nclusters:\n"
        "  - {name: mtls, address: '" +
        strict->address() + "', " + tls + ", certFile: '" + (pki.dir / "client.pem").string() +
        "', keyFile: '" + (pki.dir / "client.key").string() +
        "'}}\n"
        "  - {name: anonymous, address: '" +
        strict->address() + "', " + tls + "}}\n" + kFastChecks + "retry:\n  ejectFor: 0s\n");
    ASSERT_TRUE(lb);
    // The cluster that asks for a certificate accepts the one that has it, checks included.
    ASSERT_TRUE(wait_until(
        [&] {
            return lb->endpoint_healthy("mtls", true) && lb->endpoint_healthy("anonymous", false);
        },
        5s))
        << lb->status().dump(2);
    EXPECT_FALSE(endpoint_error(lb->status(), "anonymous").empty());
    for (int i = 0; i < 4; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/echo");
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.headers.at("x-echo-client-cn"), "tandem-lb");
    }
    // A certificate without its key is a configuration error with its line.
    std::ofstream(lb->dir / "half.yaml")
        << "clusters:\n  - name: a\n    address: 10.0.0.1:443\n    tls:\n      certFile: '"
        << (pki.dir / "client.pem").string() << "'\n";
    ChildProcess check({TANDEM_LB_PATH, "--check-config", "-c", (lb->dir / "half.yaml").string()},
                       {}, true);
    const auto out = check.read_all(10s);
    EXPECT_EQ(check.wait(5s), 1);
    EXPECT_NE(out.find("half.yaml:5: error: clusters[0].tls.certFile: needs keyFile too"),
              std::string::npos)
        << out;
}

TEST(Balancer, PooledConnectionsTheClusterClosedCostNoRequest) {
    TestPki pki;
    ASSERT_TRUE(pki.ok) << "openssl failed; see " << (pki.dir / "openssl.log");
    auto tls_args = pki.server_args();
    tls_args.insert(tls_args.end(), {"--close-idle-ms", "300"});
    auto plain = Upstream::start("plain", 0, "127.0.0.1", {"--close-idle-ms", "300"});
    auto secure = Upstream::start("secure", 0, "127.0.0.1", tls_args);
    ASSERT_TRUE(plain && secure);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"plain", "clusters:\n  - {name: plain, address: '" + plain->address() + "'}\n"},
        {"secure", "clusters:\n  - {name: secure, address: '" + secure->address() +
                       "', tls: {serverName: router.test, caFile: '" +
                       (pki.dir / "ca.pem").string() + "'}}\n"}};
    for (const auto& [name, clusters] : cases) {
        SCOPED_TRACE(name);
        auto lb = Balancer::start("threads: 1\n" + clusters + "healthCheck:\n  enabled: false\n");
        ASSERT_TRUE(lb);
        EXPECT_EQ(support::http_request(lb->port, "GET", "/").status, 200u);  // pools one
        std::this_thread::sleep_for(600ms);  // the cluster closes it after 300 ms idle
        const auto get = support::http_request(lb->port, "GET", "/");
        EXPECT_EQ(get.status, 200u) << get.body;
        EXPECT_EQ(lb->metric("tandem_lb_retries_total{cluster=\"" + name +
                             "\",reason=\"stale_connection\""),
                  1);
        std::this_thread::sleep_for(600ms);
        const auto post = support::http_request(lb->port, "POST", "/echo", "once");
        EXPECT_EQ(post.status, 200u) << post.body;
        EXPECT_EQ(post.body, "once");
    }
}

TEST(Balancer, SlowUpstreamIs504) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    auto lb = Balancer::start("threads: 1\n" + cluster_yaml({{"east", a->address()}}) +
                              "timeouts:\n  upstreamResponse: 300ms\n");
    ASSERT_TRUE(lb);
    const auto start = std::chrono::steady_clock::now();
    const auto r = support::http_request(lb->port, "GET", "/slow?ms=3000");
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.status, 504u);
    EXPECT_NE(r.body.find("upstream response timeout (cluster east)"), std::string::npos);
    EXPECT_LT(took, 2s);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/slow?ms=10").status, 200u);
}

TEST(Balancer, ConnectFailureIsRetriedOnAnotherCluster) {
    auto a = Upstream::start("east");
    auto dead = Upstream::start("dead");
    ASSERT_TRUE(a && dead);
    const auto dead_address = dead->address();
    dead->kill();  // a port nobody listens on: connection refused
    auto lb = Balancer::start("threads: 1\n" +
                              cluster_yaml({{"dead", dead_address}, {"east", a->address()}}) +
                              "healthCheck:\n  enabled: false\nretry:\n  ejectFor: 0s\n");
    ASSERT_TRUE(lb);
    for (int i = 0; i < 10; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/");
        ASSERT_EQ(r.status, 200u) << r.body;
        EXPECT_EQ(r.headers.at("x-upstream"), "east");
    }
    EXPECT_GE(lb->metric("tandem_lb_retries_total{cluster=\"dead\",reason=\"connect\""), 5);
    // A POST is retried too when the connect failed: nothing was sent.
    EXPECT_EQ(support::http_request(lb->port, "POST", "/echo", "x").status, 200u);
}

TEST(Balancer, KilledUpstreamUnderLoadLosesNoRequestAndComesBackAfterRise) {
    auto a = Upstream::start("east");
    auto b = Upstream::start("west");
    ASSERT_TRUE(a && b);
    const std::uint16_t west_port = b->port;
    auto lb = Balancer::start("threads: 2\n" +
                              cluster_yaml({{"east", a->address()}, {"west", b->address()}}) +
                              kFastChecks);
    ASSERT_TRUE(lb);
    Load load(lb->port, 8);
    ASSERT_TRUE(wait_until([&] { return load.served_by("west") > 200; }, 10s));
    const auto killed_at = std::chrono::steady_clock::now();
    b->kill();
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("west", false); }, 5s));
    const auto detected = std::chrono::steady_clock::now() - killed_at;
    // fall (2) x interval (100 ms) + timeout, with slack for a loaded CI machine.
    EXPECT_LT(detected, 1500ms);
    const auto east_before = load.served_by("east");
    ASSERT_TRUE(wait_until([&] { return load.served_by("east") > east_before + 500; }, 10s));

    // Back on the same port: traffic returns after `rise` passing checks.
    auto b2 = Upstream::start("west", west_port);
    ASSERT_TRUE(b2);
    const auto restarted = std::chrono::steady_clock::now();
    const auto west_before = load.served_by("west");
    ASSERT_TRUE(wait_until([&] { return load.served_by("west") > west_before + 100; }, 10s));
    EXPECT_LT(std::chrono::steady_clock::now() - restarted, 3s);
    load.stop();
    EXPECT_EQ(load.failed(), 0u) << (load.failures().empty() ? "" : load.failures().front());
    EXPECT_GT(load.ok(), 1000u);
    EXPECT_GE(lb->metric("tandem_lb_endpoint_transitions_total{cluster=\"west\""), 2);
}

// "first" on 127.0.0.2 and "second" on 127.0.0.3, on the same port: which one serves is up to
// the DNS answer for a name.
std::pair<std::unique_ptr<Upstream>, std::unique_ptr<Upstream>> upstreams_on_two_addresses() {
    auto a = Upstream::start("first", 0, "127.0.0.2");
    auto b = a ? Upstream::start("second", a->port, "127.0.0.3") : nullptr;
    return {std::move(a), std::move(b)};
}

TEST(Balancer, FollowsDnsAfterTheTtlAndKeepsTheLastGoodAnswer) {
    support::FakeDnsServer dns;
    auto [a, b] = upstreams_on_two_addresses();
    ASSERT_TRUE(a && b) << "127.0.0.3:" << (a ? a->port : 0) << " is taken";
    dns.set("clusters.test", {"127.0.0.2"}, 1);
    auto lb = Balancer::start("threads: 1\n" +
                              cluster_yaml({{"svc", "clusters.test:" + std::to_string(a->port)}}) +
                              "dns:\n  servers: ['127.0.0.1:" + std::to_string(dns.port()) +
                              "']\n  minTtl: 200ms\n  retry: 200ms\n");
    ASSERT_TRUE(lb);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").headers["x-upstream"], "first");
    const auto changed_at = std::chrono::steady_clock::now();
    dns.set("clusters.test", {"127.0.0.3"}, 1);
    ASSERT_TRUE(wait_until(
        [&] {
            return support::http_request(lb->port, "GET", "/").headers["x-upstream"] == "second";
        },
        5s));
    // TTL 1 s: not before it expires (less a little for the time the first answer was in
    // flight), not much after.
    const auto followed = std::chrono::steady_clock::now() - changed_at;
    EXPECT_LT(followed, 2500ms);
    const auto status = lb->status();
    EXPECT_EQ(status["clusters"][0]["endpoints"].size(), 1u);
    EXPECT_EQ(status["clusters"][0]["endpoints"][0]["address"],
              "127.0.0.3:" + std::to_string(a->port));

    // The name disappears (NXDOMAIN): the last good answer stays in use.
    dns.remove("clusters.test");
    const auto queries = dns.queries("clusters.test");
    ASSERT_TRUE(wait_until([&] { return dns.queries("clusters.test") >= queries + 2; }, 5s));
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").headers["x-upstream"], "second");
    EXPECT_GE(lb->metric("tandem_lb_dns_resolutions_total{cluster=\"svc\",result=\"failed\"}"), 1);
    EXPECT_FALSE(lb->status()["clusters"][0]["dns"]["error"].is_null());
}

TEST(Balancer, SigtermDrainsInFlightRequests) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    // Checks go to /health, which the upstream's /count leaves out: only the slow request counts.
    auto lb = Balancer::start("threads: 2\n" + cluster_yaml({{"east", a->address()}}) +
                              "timeouts:\n  drain: 10s\nhealthCheck:\n  path: /health\n");
    ASSERT_TRUE(lb);
    support::HttpReply slow;
    std::jthread t([&] { slow = support::http_request(lb->port, "GET", "/slow?ms=1000"); });
    ASSERT_TRUE(wait_until(
        [&] { return support::http_request(a->port, "GET", "/count").body == "1\n"; }, 5s));
    lb->process->signal(SIGTERM);
    // Draining: /healthz says so, new connections are refused once the listeners close.
    ASSERT_TRUE(wait_until(
        [&] { return support::http_request(lb->admin, "GET", "/healthz").status == 503; }, 2s));
    t.join();
    EXPECT_EQ(slow.status, 200u) << slow.error;
    EXPECT_EQ(slow.body, "east\n");
    EXPECT_EQ(lb->process->wait(5s), 0);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/", "", {}, 1s).status, 0u);
}

TEST(Balancer, SighupReloadsWithoutClosingAConnection) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    auto dr = Upstream::start("dr");
    ASSERT_TRUE(east && west && dr);
    auto lb =
        Balancer::start("threads: 2\n" + cluster_yaml({{"east", east->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    EXPECT_EQ(lb->status()["config"]["generation"], 1);
    EXPECT_TRUE(lb->status()["config"]["last_reload"].is_null());
    Load load(lb->port, 4);
    ASSERT_TRUE(wait_until([&] { return load.served_by("east") >= 100; }, 10s));
    // A slow request is in flight to east when the reload removes east.
    support::HttpReply slow;
    std::jthread t([&] { slow = support::http_request(lb->port, "GET", "/slow?ms=800"); });
    ASSERT_TRUE(wait_until([&] { return lb->status()["clusters"][0]["in_flight"] >= 1; }, 5s));

    ASSERT_TRUE(lb->reload(
        "threads: 2\nclusters:\n  - name: west\n    address: " + west->address() +
        "\n  - name: dr\n    address: " + dr->address() + "\n    backup: true\n" + kFastChecks));
    const auto s = lb->status();
    EXPECT_EQ(s["config"]["generation"], 2);
    EXPECT_EQ(s["config"]["last_reload"]["ok"], true) << s.dump(2);
    ASSERT_EQ(s["clusters"].size(), 2u);
    EXPECT_EQ(s["clusters"][0]["name"], "west");
    EXPECT_EQ(s["clusters"][1]["backup"], true);
    // The previous generation finishes the slow request, then goes away.
    t.join();
    EXPECT_EQ(slow.status, 200u) << slow.error;
    EXPECT_EQ(slow.body, "east\n");
    ASSERT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 5s));
    const auto east_total = load.served_by("east");
    const auto west_before = load.served_by("west");
    ASSERT_TRUE(wait_until([&] { return load.served_by("west") >= west_before + 200; }, 10s));
    EXPECT_EQ(load.served_by("east"), east_total);
    EXPECT_EQ(load.served_by("dr"), 0u);
    load.stop();
    // Not one connection was closed or failed: the same four carried on.
    EXPECT_EQ(load.failed(), 0u) << (load.failures().empty() ? "" : load.failures()[0]);
    EXPECT_EQ(load.connects(), 4u);
    EXPECT_EQ(lb->metric("tandem_lb_config_reloads_total{result=\"ok\"}"), 1);
    const auto metrics = support::http_request(lb->admin, "GET", "/metrics").body;
    EXPECT_EQ(metrics.find("tandem_lb_cluster_healthy{cluster=\"east\"}"), std::string::npos);
    EXPECT_NE(metrics.find("tandem_lb_cluster_healthy{cluster=\"west\"} 1"), std::string::npos);
    EXPECT_NE(metrics.find("tandem_lb_endpoint_up{cluster=\"west\",endpoint=\"" + west->address() +
                           "\"} 1"),
              std::string::npos)
        << metrics;
    EXPECT_EQ(metrics.find("tandem_lb_endpoint_up{cluster=\"east\""), std::string::npos);
    // Counters carry on across generations (east's requests are still counted).
    EXPECT_GE(lb->metric("tandem_lb_requests_total{cluster=\"east\",code_class=\"2xx\""),
              static_cast<double>(east_total));
    lb->process->signal(SIGTERM);
    EXPECT_EQ(lb->process->wait(5s), 0);
}

TEST(Balancer, InvalidReloadChangesNothing) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", east->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    const auto last_error = [&] {
        const auto s = lb->status();
        EXPECT_EQ(s["config"]["generation"], 1);
        EXPECT_EQ(s["config"]["last_reload"]["ok"], false);
        return s["config"]["last_reload"]["error"].get<std::string>();
    };
    // A mistake in the file: reported with its line, nothing changes.
    ASSERT_TRUE(lb->reload("threads: 1\n" + cluster_yaml({{"west", west->address()}}) +
                           "    wieght: 2\n" + kFastChecks));
    auto error = last_error();
    EXPECT_NE(error.find("lb.yaml:7"), std::string::npos) << error;
    EXPECT_NE(error.find("wieght"), std::string::npos) << error;
    // A listener that cannot be opened (its port is taken: here by tandem-lb's own admin
    // listener) refuses the reload as a whole.
    const auto port = [](std::uint16_t p) { return std::to_string(p); };
    ASSERT_TRUE(lb->reload("listen: 127.0.0.1:" + port(lb->admin) +
                               "\nadmin: 127.0.0.1:0\nthreads: 1\n" +
                               cluster_yaml({{"west", west->address()}}) + kFastChecks,
                           false));
    error = last_error();
    EXPECT_NE(
        error.find("cannot listen on 127.0.0.1:" + port(lb->admin) + ": Address already in use"),
        std::string::npos)
        << error;
    // The same for the admin listener; the extra worker's socket, bound before that failed, is
    // given back unused.
    ASSERT_TRUE(lb->reload("listen: 127.0.0.1:0\nadmin: 127.0.0.1:" + port(lb->port) +
                               "\nthreads: 2\n" + cluster_yaml({{"west", west->address()}}) +
                               kFastChecks,
                           false));
    error = last_error();
    EXPECT_NE(error.find("cannot listen on admin 127.0.0.1:" + port(lb->port)), std::string::npos)
        << error;
    EXPECT_EQ(lb->status()["workers"], 1);
    for (int i = 0; i < 4; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/");
        EXPECT_EQ(r.status, 200u);
        EXPECT_EQ(r.body, "east\n");
    }
    EXPECT_EQ(lb->metric("tandem_lb_config_reloads_total{result=\"failed\"}"), 3);
    // The file fixed: the next SIGHUP applies it.
    ASSERT_TRUE(
        lb->reload("threads: 1\n" + cluster_yaml({{"west", west->address()}}) + kFastChecks));
    EXPECT_EQ(lb->status()["config"]["generation"], 2);
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").body, "west\n");
}

TEST(Balancer, ReloadMovesListenersAndChangesWorkersWithoutClosingAConnection) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    const auto clusters =
        cluster_yaml({{"east", east->address()}, {"west", west->address()}}) + kFastChecks;
    auto lb = Balancer::start("threads: 2\n" + clusters);
    ASSERT_TRUE(lb);
    const auto port = std::to_string(lb->port);
    const auto admin = std::to_string(lb->admin);
    Load load(lb->port, 4);
    ASSERT_TRUE(wait_until([&] { return load.ok() >= 200; }, 10s));
    // Both listeners move to 127.0.0.2 (the same port numbers), with 3 workers instead of 2.
    replace_file(lb->dir / "lb.yaml", "listen: 127.0.0.2:" + port + "\nadmin: 127.0.0.2:" + admin +
                                          "\nthreads: 3\n" + clusters);
    lb->process->signal(SIGHUP);
    lb->admin_ip = "127.0.0.2";
    ASSERT_TRUE(wait_until([&] { return lb->status()["config"]["generation"] == 2; }, 10s));
    auto status = lb->status();
    EXPECT_EQ(status["listen"], "127.0.0.2:" + port);
    EXPECT_EQ(status["admin"], "127.0.0.2:" + admin);
    EXPECT_EQ(status["workers"], 3);
    // The old addresses are closed; the new ones serve, across both clusters.
    EXPECT_EQ(support::http_request(lb->port, "GET", "/", "", {}, 2s).status, 0u);
    EXPECT_EQ(support::http_request(lb->admin, "GET", "/status", "", {}, 2s).status, 0u);
    // (Each worker takes its turns on its own, with the load's requests in between.)
    std::map<std::string, int> seen;
    for (int i = 0; i < 20; ++i) {
        const auto r = support::http_request_at("127.0.0.2", lb->port, "GET", "/");
        EXPECT_EQ(r.status, 200u) << r.error;
        ++seen[r.body];
    }
    EXPECT_GE(seen["east\n"], 1);
    EXPECT_GE(seen["west\n"], 1);
    EXPECT_EQ(seen["east\n"] + seen["west\n"], 20);
    // The open connections went on in the new generation.
    auto ok_before = load.ok();
    ASSERT_TRUE(wait_until([&] { return load.ok() >= ok_before + 200; }, 10s));
    ASSERT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 10s));
    // Back to 127.0.0.1 with 1 worker (the admin listener stays where it is now).
    replace_file(lb->dir / "lb.yaml", "listen: 127.0.0.1:" + port + "\nadmin: 127.0.0.2:" + admin +
                                          "\nthreads: 1\n" + clusters);
    lb->process->signal(SIGHUP);
    ASSERT_TRUE(wait_until([&] { return lb->status()["config"]["generation"] == 3; }, 10s));
    status = lb->status();
    EXPECT_EQ(status["listen"], "127.0.0.1:" + port);
    EXPECT_EQ(status["workers"], 1);
    EXPECT_EQ(status["config"]["last_reload"]["ok"], true);
    EXPECT_EQ(support::http_request_at("127.0.0.2", lb->port, "GET", "/", "", {}, 2s).status, 0u);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").status, 200u);
    ok_before = load.ok();
    ASSERT_TRUE(wait_until([&] { return load.ok() >= ok_before + 200; }, 10s));
    ASSERT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 10s));
    load.stop();
    // Not one of the four connections was closed or failed.
    EXPECT_EQ(load.failed(), 0u) << (load.failures().empty() ? "" : load.failures()[0]);
    EXPECT_EQ(load.connects(), 4u);
    EXPECT_EQ(lb->metric("tandem_lb_config_reloads_total{result=\"ok\"}"), 2);
    EXPECT_EQ(lb->metric("tandem_lb_client_connections_total"), 4 + 20 + 1);
    lb->process->signal(SIGTERM);
    EXPECT_EQ(lb->process->wait(5s), 0);
}

// A client that pipelines: a reload moves its connection together with the requests the
// balancer has read but not served yet, without waiting for a pause between them.
TEST(Balancer, APipeliningClientMovesWithTheRequestsAlreadyRead) {
    auto east = Upstream::start("east");
    ASSERT_TRUE(east);
    const auto config = "threads: 1\n" + cluster_yaml({{"east", east->address()}}) + kFastChecks;
    auto lb = Balancer::start(config);
    ASSERT_TRUE(lb);
    asio::io_context ioc;
    beast::tcp_stream s(ioc);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), lb->port));
    // 40 requests in one write, 4 s of work: 20 slow ones and 20 numbered echoes, alternating.
    std::string batch;
    for (int i = 0; i < 40; ++i) {
        batch += i % 2 == 0 ? "GET /slow?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n"
                            : "GET /echo HTTP/1.1\r\nHost: x\r\nX-Custom: " + std::to_string(i) +
                                  "\r\n\r\n";
    }
    s.expires_after(10s);
    asio::write(s, asio::buffer(batch));
    beast::flat_buffer b;
    boost::system::error_code ec;
    http::response<http::string_body> first;
    http::read(s, b, first, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(first.result_int(), 200u);
    ASSERT_TRUE(lb->reload(config));
    // The previous generation lets go of the connection after the request it is serving, not
    // after the batch.
    ASSERT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 1500ms));
    // Every answer arrives, in order, on the same connection.
    for (int i = 1; i < 40; ++i) {
        http::response<http::string_body> r;
        http::read(s, b, r, ec);
        ASSERT_FALSE(ec) << i << ": " << ec.message();
        EXPECT_EQ(r.result_int(), 200u);
        EXPECT_EQ(std::string(r["X-Echo-Custom"]), i % 2 == 0 ? "" : std::to_string(i));
        EXPECT_TRUE(r.keep_alive());
    }
    EXPECT_EQ(lb->metric("tandem_lb_client_connections_total"), 1);
}

// New connections arrive all the time (one per request) while the number of workers goes down
// and up: the sockets given up are drained into the remaining workers, none is reset.
TEST(Balancer, FewerWorkersRefuseNoNewConnection) {
    auto east = Upstream::start("east");
    ASSERT_TRUE(east);
    const auto clusters = cluster_yaml({{"east", east->address()}}) + kFastChecks;
    auto lb = Balancer::start("threads: 4\n" + clusters);
    ASSERT_TRUE(lb);
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0};
    std::atomic<int> failed{0};
    std::mutex mutex;
    std::string first_failure;
    std::vector<std::jthread> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back([&] {
            while (!stop) {
                const auto r = support::http_request(lb->port, "GET", "/", "", {}, 5s);
                if (r.status == 200) {
                    ++ok;
                } else if (++failed == 1) {
                    std::lock_guard lock(mutex);
                    first_failure = std::to_string(r.status) + " " + r.error;
                }
            }
        });
    }
    // Each time until the previous generation is gone: a socket given up closes only after
    // its grace (Worker::kGiveUpGrace), while connections keep coming.
    int generation = 1;
    for (const int threads : {1, 3, 2, 4, 1}) {
        ASSERT_TRUE(lb->reload("threads: " + std::to_string(threads) + "\n" + clusters));
        ++generation;
        const auto status = lb->status();
        ASSERT_EQ(status["config"]["generation"], generation) << status.dump();
        EXPECT_EQ(status["workers"], threads);
        ASSERT_TRUE(wait_until(
            [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 10s));
        const int before = ok;
        ASSERT_TRUE(wait_until([&] { return ok >= before + 100; }, 10s));
    }
    stop = true;
    clients.clear();
    EXPECT_EQ(failed, 0) << first_failure;
    EXPECT_EQ(lb->metric("tandem_lb_config_reloads_total{result=\"ok\"}"), 5);
}

// New DNS servers apply on reload: the answer the previous ones gave is served meanwhile, the
// new servers are asked right away (not when that answer's TTL is due).
TEST(Balancer, ReloadAsksNewDnsServersAtOnce) {
    support::FakeDnsServer dns_a;
    support::FakeDnsServer dns_b;
    auto [a, b] = upstreams_on_two_addresses();
    ASSERT_TRUE(a && b) << "127.0.0.3:" << (a ? a->port : 0) << " is taken";
    dns_a.set("clusters.test", {"127.0.0.2"}, 300);
    dns_b.set("clusters.test", {"127.0.0.3"}, 300);
    const auto yaml = [&](const support::FakeDnsServer& dns) {
        return "threads: 1\n" +
               cluster_yaml({{"svc", "clusters.test:" + std::to_string(a->port)}}) +
               "dns:\n  servers: ['127.0.0.1:" + std::to_string(dns.port()) + "']\n";
    };
    auto lb = Balancer::start(yaml(dns_a));
    ASSERT_TRUE(lb);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").headers["x-upstream"], "first");
    const auto changed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(lb->reload(yaml(dns_b)));
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
    ASSERT_TRUE(wait_until(
        [&] {
            return support::http_request(lb->port, "GET", "/").headers["x-upstream"] == "second";
        },
        5s));
    EXPECT_LT(std::chrono::steady_clock::now() - changed_at, 3s);  // (the TTL is 300 s)
    EXPECT_EQ(dns_b.queries("clusters.test"), 1u);
    EXPECT_EQ(dns_a.queries("clusters.test"), 1u);
}

// https turned on, moved (with more workers) and turned off by reloads; a TLS connection open
// all along carries on.
TEST(Balancer, ReloadTurnsHttpsOnMovesItAndTurnsItOff) {
    TlsBed bed;
    ASSERT_TRUE(bed.ready()) << "see " << (bed.pki.dir / "openssl.log");
    const auto ca = bed.pki.dir / "ca.pem";
    const auto https = TlsBed::https(bed.pki.dir / "api.pem", bed.pki.dir / "api.key");
    const std::string rest = bed.clusters(false) + kFastChecks;
    auto lb = Balancer::start("threads: 2\n" + rest);
    ASSERT_TRUE(lb);
    EXPECT_TRUE(lb->status()["https"].is_null());
    const auto https_at = [&] {
        const auto h = lb->status()["https"];
        return h.is_null() ? std::string() : h.get<std::string>();
    };
    const auto get = [](HttpsClient& c) {
        http::response<http::string_body> res;
        const auto ec = c.get("/", res);
        return ec ? "error: " + ec.message() : res.body();
    };
    // On.
    ASSERT_TRUE(lb->reload("threads: 2\n" + https + rest));
    const auto on = https_at();
    ASSERT_EQ(on.rfind("127.0.0.1:", 0), 0u) << on;
    const auto port = static_cast<std::uint16_t>(std::stoi(on.substr(on.find(':') + 1)));
    HttpsClient open;
    ASSERT_TRUE(open.connect(port, ca));
    EXPECT_EQ(get(open), "east\n");
    // Moved to 127.0.0.2 (the same port), 3 workers.
    auto moved = https;
    moved.replace(moved.find("127.0.0.1:0"), 11, "127.0.0.2:" + std::to_string(port));
    ASSERT_TRUE(lb->reload("threads: 3\n" + moved + rest));
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
    EXPECT_EQ(https_at(), "127.0.0.2:" + std::to_string(port));
    EXPECT_EQ(get(open), "east\n");
    HttpsClient old_address;
    EXPECT_FALSE(old_address.connect(port, ca));
    HttpsClient new_address;
    ASSERT_TRUE(new_address.connect(port, ca, "127.0.0.2"));
    EXPECT_EQ(get(new_address), "east\n");
    // Off: no https listener any more; the connections open on it are served until they close.
    ASSERT_TRUE(lb->reload("threads: 1\n" + rest));
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
    EXPECT_EQ(https_at(), "");
    HttpsClient after;
    EXPECT_FALSE(after.connect(port, ca, "127.0.0.2"));
    EXPECT_EQ(get(open), "east\n");
    EXPECT_EQ(get(new_address), "east\n");
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").body, "east\n");
    lb->process->signal(SIGTERM);
    EXPECT_EQ(lb->process->wait(5s), 0);
}

TEST(Balancer, ReloadKeepsWhatTheChecksKnow) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    // Slow checks: after the reload, nothing is re-learnt within this test.
    const std::string checks =
        "healthCheck:\n  path: /health\n  interval: 300ms\n  timeout: 200ms\n  rise: 20\n"
        "  fall: 1\n  jitter: 0%\n";
    auto lb = Balancer::start("threads: 1\nretry:\n  ejectFor: 0s\n" +
                              cluster_yaml({{"east", east->address()}, {"west", west->address()}}) +
                              checks);
    ASSERT_TRUE(lb);
    west->kill();
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("west", false); }, 5s));
    const auto checks_before = lb->status()["clusters"][1]["endpoints"][0]["checks"].get<int>();
    // Weights change; west is still known to be down (not reset to up, which would cost a
    // failed connect and a retry per request until `fall` checks), and its history stays.
    ASSERT_TRUE(
        lb->reload("threads: 1\nretry:\n  ejectFor: 0s\nclusters:\n  - name: east\n"
                   "    address: " +
                   east->address() +
                   "\n    weight: 5\n  - name: west\n"
                   "    address: 127.0.0.1:" +
                   std::to_string(west->port) + "\n" + checks));
    const auto s = lb->status();
    EXPECT_EQ(s["config"]["generation"], 2);
    EXPECT_EQ(s["clusters"][1]["healthy"], false) << s.dump(2);
    EXPECT_GE(s["clusters"][1]["endpoints"][0]["checks"].get<int>(), checks_before);
    EXPECT_EQ(s["clusters"][0]["weight"], 5);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(support::http_request(lb->port, "GET", "/").body, "east\n");
    }
    EXPECT_EQ(lb->metric("tandem_lb_retries_total"), 0);
}

TEST(Balancer, IdleConnectionsMovedByAReloadHoldUpNothing) {
    auto east = Upstream::start("east");
    ASSERT_TRUE(east);
    const std::string yaml = "threads: 1\n" + cluster_yaml({{"east", east->address()}});
    auto lb = Balancer::start(yaml);
    ASSERT_TRUE(lb);
    asio::io_context ioc;
    const asio::ip::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), lb->port);
    const auto get = [](beast::tcp_stream& s, beast::flat_buffer& b) {
        return get_on(s, b).result_int();
    };
    // Two keep-alive connections that go quiet after a request: one idle, one parked (1 s).
    beast::tcp_stream parked(ioc), idle(ioc);
    beast::flat_buffer parked_buffer, idle_buffer;
    parked.connect(at);
    ASSERT_EQ(get(parked, parked_buffer), 200u);
    std::this_thread::sleep_for(1300ms);  // the idle period under test
    idle.connect(at);
    ASSERT_EQ(get(idle, idle_buffer), 200u);
    // Both move to the new generation (whose one worker must not wait on either of them).
    ASSERT_TRUE(lb->reload(yaml));
    ASSERT_TRUE(wait_until(
        [&] { return lb->status()["config"]["previous_generations_finishing"] == 0; }, 5s));
    EXPECT_EQ(lb->status()["client_connections"], 2);
    for (int i = 0; i < 5; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/", "", {}, 2s);
        EXPECT_EQ(r.status, 200u) << r.error;
    }
    EXPECT_EQ(get(idle, idle_buffer), 200u);
    EXPECT_EQ(get(parked, parked_buffer), 200u);
    // SIGTERM closes them at once.
    lb->process->signal(SIGTERM);
    EXPECT_EQ(lb->process->wait(3s), 0);
}

TEST(Balancer, ReloadsInQuickSuccessionUnderLoadThenSigterm) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    const auto config = [&](int east_weight) {
        return "threads: 2\ntimeouts:\n  drain: 10s\nclusters:\n  - name: east\n    address: " +
               east->address() + "\n    weight: " + std::to_string(east_weight) +
               "\n  - name: west\n    address: " + west->address() + "\n" + kFastChecks;
    };
    auto lb = Balancer::start(config(1));
    ASSERT_TRUE(lb);
    Load load(lb->port, 8);
    ASSERT_TRUE(wait_until([&] { return load.ok() >= 200; }, 10s));
    // Slow requests keep earlier generations alive while the next reloads arrive: connections
    // go from generation to generation through the ones still finishing.
    std::vector<std::jthread> slow;
    std::vector<support::HttpReply> replies(5);
    for (std::size_t g = 0; g < 5; ++g) {
        slow.emplace_back(
            [&, g] { replies[g] = support::http_request(lb->port, "GET", "/slow?ms=1500"); });
        const auto before = load.ok();
        ASSERT_TRUE(lb->reload(config(static_cast<int>(g) + 2)));
        EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
        ASSERT_TRUE(wait_until([&] { return load.ok() >= before + 50; }, 10s));
    }
    EXPECT_EQ(lb->status()["config"]["generation"], 6);
    EXPECT_GE(lb->status()["config"]["previous_generations_finishing"].get<int>(), 1);
    load.stop();
    EXPECT_EQ(load.failed(), 0u) << (load.failures().empty() ? "" : load.failures()[0]);
    EXPECT_EQ(load.connects(), 8u);
    // SIGTERM while earlier generations are still finishing: every slow request completes.
    lb->process->signal(SIGTERM);
    slow.clear();  // joins
    for (const auto& r : replies) {
        EXPECT_EQ(r.status, 200u) << r.error;
    }
    EXPECT_EQ(lb->process->wait(10s), 0);
}

TEST(Balancer, HealthcheckCommandFollowsHealthz) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", a->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    // The probe reads the admin address from the same file the balancer runs with.
    const auto config = lb->dir / "probe.yaml";
    std::ofstream(config) << "admin: 127.0.0.1:" << lb->admin << "\n"
                          << cluster_yaml({{"east", a->address()}});
    const auto probe = [&] {
        ChildProcess p({TANDEM_LB_PATH, "--healthcheck", "-c", config.string()}, {}, true);
        p.read_all(10s);
        return p.wait(10s);
    };
    EXPECT_EQ(probe(), 0);
    a->kill();
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("east", false); }, 5s));
    EXPECT_EQ(probe(), 1);  // no healthy cluster: keepalived gives the VIPs up
    lb->process->signal(SIGTERM);
    lb->process->wait(10s);
    EXPECT_EQ(probe(), 1);  // nothing listening
}

// keepalived refuses (or silently disables) a track script that is missing or lives under a
// directory others can write to, so the check runs the real binary from a root-only directory.
TEST(Keepalived, RenderedConfigurationPassesKeepalivedsCheck) {
    ASSERT_EQ(::geteuid(), 0u) << "keepalived's script security check needs root (CI runs as root)";
    const fs::path secure = "/run/tandem-lb-keepalived-test-" + std::to_string(::getpid());
    fs::create_directories(secure);
    fs::permissions(secure, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
    fs::copy_file(TANDEM_LB_PATH, secure / "tandem-lb", fs::copy_options::overwrite_existing);
    // keepalived checks the interface exists and is not the loopback: use this machine's first.
    std::vector<std::string> interfaces;
    for (const auto& e : fs::directory_iterator("/sys/class/net")) {
        if (e.path().filename() != "lo") {
            interfaces.push_back(e.path().filename().string());
        }
    }
    std::sort(interfaces.begin(), interfaces.end());
    const std::string interface = interfaces.empty() ? "" : interfaces.front();
    ASSERT_FALSE(interface.empty()) << "no network interface besides lo";
    const auto render = [&](const std::string& binary, const std::string& node,
                            const fs::path& out) {
        std::ofstream(secure / "lb.yaml")
            << "clusters:\n  - {name: east, address: 10.0.0.1:80}\nkeepalived:\n"
            << "  interface: " << interface << "\n  vips: [192.0.2.10-12/24, 198.51.100.7]\n"
            << "  tandemLbPath: " << binary << "\n  configPath: " << (secure / "lb.yaml").string()
            << "\n  nodes:\n    - {name: lb1, address: 10.0.0.11}\n"
            << "    - {name: lb2, address: 10.0.0.12}\n    - {name: lb3, address: 10.0.0.13}\n";
        ChildProcess r(
            {TANDEM_LB_PATH, "-c", (secure / "lb.yaml").string(), "--render-keepalived", node});
        std::ofstream(out) << r.read_all(10s);
        return r.wait(10s);
    };
    const auto check = [](const fs::path& conf, std::string& output) {
        ChildProcess k({"/usr/sbin/keepalived", "-t", "-l", "-f", conf.string()}, {}, true);
        output = k.read_all(20s);
        return k.wait(20s);
    };
    std::string output;
    for (const char* node : {"lb1", "lb2", "lb3"}) {
        const fs::path conf = secure / (std::string(node) + ".conf");
        ASSERT_EQ(render((secure / "tandem-lb").string(), node, conf), 0);
        EXPECT_EQ(check(conf, output), 0) << node << ":\n" << output;
        EXPECT_EQ(output.find("Disabling track script"), std::string::npos) << output;
        std::ifstream in(conf);
        const std::string text((std::istreambuf_iterator<char>(in)), {});
        EXPECT_EQ(std::count(text.begin(), text.end(), '{'),
                  std::count(text.begin(), text.end(), '}'));
        EXPECT_NE(text.find("virtual_router_id 54"), std::string::npos);  // 4 VIPs: 51..54
        const std::string self = std::string("10.0.0.1") + node[2];
        EXPECT_NE(text.find("unicast_src_ip " + self + "\n"), std::string::npos);
        EXPECT_EQ(text.find("        " + self + "\n"), std::string::npos);  // never its own peer
    }
    // The check can fail: a track script in a world-writable directory is unsafe.
    const fs::path conf = secure / "unsafe.conf";
    ASSERT_EQ(render("/tmp/tandem-lb", "lb1", conf), 0);
    check(conf, output);
    EXPECT_NE(output.find("chk_tandem_lb"), std::string::npos) << output;
    EXPECT_NE(output.find("isabl"), std::string::npos) << output;  // "Disabling track script"
    // An unknown node is refused with the known ones listed.
    ChildProcess bad(
        {TANDEM_LB_PATH, "-c", (secure / "lb.yaml").string(), "--render-keepalived", "lb9"}, {},
        true);
    EXPECT_NE(bad.read_all(10s).find("no node named 'lb9' in keepalived.nodes (lb1, lb2, lb3)"),
              std::string::npos);
    EXPECT_EQ(bad.wait(10s), 1);
    fs::remove_all(secure);
}

TEST(Balancer, CheckConfigReportsFileAndLine) {
    const auto dir = fs::temp_directory_path() / ("tandem-lb-check-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "bad.yaml") << "listen: 0.0.0.0:8080\nclusters:\n  - name: east\n"
                                       "    adress: east.example.com:80\n";
    ChildProcess check({TANDEM_LB_PATH, "--check-config", "-c", (dir / "bad.yaml").string()}, {},
                       true);
    const auto out = check.read_all(10s);
    EXPECT_EQ(check.wait(5s), 1);
    EXPECT_NE(out.find("bad.yaml:4: error: clusters[0].adress: unknown field"), std::string::npos)
        << out;
    EXPECT_NE(out.find("bad.yaml:3: error: clusters[0].address: is required"), std::string::npos)
        << out;
    std::ofstream(dir / "good.yaml") << "clusters:\n  - name: east\n    address: 10.0.0.1:80\n";
    ChildProcess ok({TANDEM_LB_PATH, "--check-config", "-c", (dir / "good.yaml").string()});
    EXPECT_NE(ok.read_all(10s).find("OK (1 clusters"), std::string::npos);
    EXPECT_EQ(ok.wait(5s), 0);
    fs::remove_all(dir);
}

}  // namespace
