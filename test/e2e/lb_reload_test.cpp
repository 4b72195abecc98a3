// tandem-lb end to end, reloads and shutdown: SIGHUP and watched files, invalid reloads, moved
// listeners and changed worker counts, connections moving between generations under load,
// SIGTERM drains. Real processes on loopback (test/support: balancer.hpp); ports are 0
// everywhere and readiness is the processes' ready lines.
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
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/http.hpp"
#include "support/tls_bed.hpp"
#include "support/wait.hpp"

namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using support::Balancer;
using support::cluster_yaml;
using support::file_text;
using support::get_on;
using support::HttpsClient;
using support::kFastChecks;
using support::Load;
using support::replace_file;
using support::serial_of;
using support::TestPki;
using support::TlsBed;
using support::Upstream;
using support::wait_until;

// Whether a connection to ip:port is refused: nothing listens there any more.
bool refused(const std::string& ip, std::uint16_t port) {
    asio::io_context ioc;
    asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address(ip), port}, ec);
    return ec == asio::error::connection_refused;
}

// What became of the requests sent to an address a reload gave up, until one was refused.
struct GivenUp {
    bool closed = false;  // a connection was refused within 2 s
    int served = 0;       // requests that landed before: passed on to the new generation
};

// A listener given up by a reload closes on the old generation's worker threads, each after
// taking what is queued on its copy of the socket: moments after the reload, not at the instant
// the reload is reported. A request that lands in between is passed on and served.
GivenUp until_refused(const std::string& ip, std::uint16_t port) {
    const std::string refused_error =
        "connect: " + make_error_code(asio::error::connection_refused).message();
    GivenUp out;
    out.closed = wait_until(
        [&] {
            const auto r = support::http_request_at(ip, port, "GET", "/", "", {}, 2s);
            out.served += r.status == 200 ? 1 : 0;
            return r.status == 0 && r.error == refused_error;
        },
        2s);
    return out;
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
    // (east itself says when: the balancer's in-flight count includes the load's requests)
    ASSERT_TRUE(wait_until(
        [&] { return support::http_request(east->port, "GET", "/count?slow=1").body == "1\n"; },
        5s));

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
    const auto first = until_refused("127.0.0.1", lb->port);
    EXPECT_TRUE(first.closed);
    EXPECT_TRUE(refused("127.0.0.1", lb->admin));  // (closed by the main context, at once)
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
    const auto back = until_refused("127.0.0.2", lb->port);
    EXPECT_TRUE(back.closed);
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
    EXPECT_EQ(lb->metric("tandem_lb_client_connections_total"),
              4 + 20 + 1 + first.served + back.served);
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
    EXPECT_TRUE(until_refused("127.0.0.1", port).closed);
    HttpsClient new_address;
    ASSERT_TRUE(new_address.connect(port, ca, "127.0.0.2"));
    EXPECT_EQ(get(new_address), "east\n");
    // Off: no https listener any more; the connections open on it are served until they close.
    ASSERT_TRUE(lb->reload("threads: 1\n" + rest));
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
    EXPECT_EQ(https_at(), "");
    EXPECT_TRUE(until_refused("127.0.0.2", port).closed);
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
    // All eight load connections are accepted: from here on the count of accepted connections
    // grows only with the slow requests below.
    ASSERT_TRUE(
        wait_until([&] { return lb->metric("tandem_lb_client_connections_total") == 8.0; }, 10s));
    // Slow requests keep earlier generations alive while the next reloads arrive: connections
    // go from generation to generation through the ones still finishing.
    std::vector<std::jthread> slow;
    std::vector<support::HttpReply> replies(5);
    for (std::size_t g = 0; g < 5; ++g) {
        slow.emplace_back(
            [&, g] { replies[g] = support::http_request(lb->port, "GET", "/slow?ms=1500"); });
        // The slow request is this generation's before the reload (accepted: counted after the
        // load's 8 connections and the earlier slow ones). Without this wait a busy machine
        // could connect the last one only after the SIGTERM below.
        ASSERT_TRUE(wait_until(
            [&] {
                return lb->metric("tandem_lb_client_connections_total") >=
                       static_cast<double>(8 + g + 1);
            },
            10s));
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

// A balancer (two workers, a 10 s drain) in front of one upstream, draining: a request for
// /slow?ms=`ms` was in flight when SIGTERM came, and /healthz already says so. (Checks go to
// /health, which the upstream's /count leaves out: only the slow request counts.)
struct Draining {
    std::unique_ptr<Upstream> east = Upstream::start("east");
    std::unique_ptr<Balancer> lb;
    support::HttpReply slow;
    std::jthread request;

    bool start(int ms) {
        lb = east ? Balancer::start("threads: 2\n" + cluster_yaml({{"east", east->address()}}) +
                                    "timeouts:\n  drain: 10s\nhealthCheck:\n  path: /health\n")
                  : nullptr;
        if (!lb) {
            return false;
        }
        request = std::jthread([this, ms] {
            slow = support::http_request(lb->port, "GET", "/slow?ms=" + std::to_string(ms));
        });
        if (!wait_until(
                [&] { return support::http_request(east->port, "GET", "/count").body == "1\n"; },
                5s)) {
            return false;
        }
        lb->process->signal(SIGTERM);
        return wait_until(
            [&] { return support::http_request(lb->admin, "GET", "/healthz").status == 503; }, 2s);
    }
};

// On SIGTERM the listeners close at once: a client that connects while requests are still
// draining is refused there and then (and can go elsewhere), not accepted by the kernel and reset
// when the balancer exits.
TEST(Balancer, SigtermRefusesNewConnectionsAtOnce) {
    Draining d;
    ASSERT_TRUE(d.start(3000));
    // Within a second of the drain, while the slow request still has two to go.
    EXPECT_TRUE(wait_until([&] { return refused("127.0.0.1", d.lb->port); }, 1s));
    d.request.join();
    EXPECT_EQ(d.slow.status, 200u) << d.slow.error;
    EXPECT_EQ(d.lb->process->wait(5s), 0);
}

TEST(Balancer, SigtermDrainsInFlightRequests) {
    // Draining: /healthz says so, new connections are refused once the listeners close.
    Draining d;
    ASSERT_TRUE(d.start(1000));
    d.request.join();
    EXPECT_EQ(d.slow.status, 200u) << d.slow.error;
    EXPECT_EQ(d.slow.body, "east\n");
    EXPECT_EQ(d.lb->process->wait(5s), 0);
    EXPECT_EQ(support::http_request(d.lb->port, "GET", "/", "", {}, 1s).status, 0u);
}

}  // namespace
