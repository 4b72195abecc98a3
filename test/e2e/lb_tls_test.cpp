// tandem-lb end to end, TLS both ways: cluster certificates verified with SNI, client
// certificates to clusters, the https listener and its renewal, TLS connections across reloads,
// pooled connections a cluster closed. A throwaway PKI and an HTTPS client come from
// test/support (tls_bed.hpp); ports are 0 everywhere, readiness is the processes' ready lines.
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

#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/http.hpp"
#include "support/tls_bed.hpp"
#include "support/wait.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using support::Balancer;
using support::ChildProcess;
using support::HttpsClient;
using support::kFastChecks;
using support::serial_of;
using support::set_sni;
using support::TestPki;
using support::TlsBed;
using support::Upstream;
using support::wait_until;

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

TEST(Balancer, HttpsListenerReadsAProxyHeaderBeforeTheHandshake) {
    TlsBed bed;
    ASSERT_TRUE(bed.ready()) << "see " << (bed.pki.dir / "openssl.log");
    auto lb = Balancer::start(
        "https: {listen: 127.0.0.1:0, certFile: " + (bed.pki.dir / "api.pem").string() +
        ", keyFile: " + (bed.pki.dir / "api.key").string() +
        ", proxyProtocol: {accept: v1}}\nthreads: 1\n" + bed.clusters(false) + kFastChecks);
    ASSERT_TRUE(lb);
    HttpsClient client;
    ASSERT_TRUE(client.connect(lb->https, bed.pki.dir / "ca.pem", "127.0.0.1",
                               "PROXY TCP4 198.51.100.4 127.0.0.1 5000 443\r\n"));
    http::response<http::string_body> res;
    ASSERT_FALSE(client.get("/echo", res));
    EXPECT_EQ(res["X-Echo-XFF"], "198.51.100.4");
    EXPECT_EQ(res["X-Echo-XFP"], "https");
    // Without the header, the TLS handshake never starts: the connection is refused.
    HttpsClient plain;
    EXPECT_FALSE(plain.connect(lb->https, bed.pki.dir / "ca.pem"));
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

// Routers close idle keep-alive connections; one the balancer still holds in its pool must not
// cost a request: an idempotent one is retried on a fresh connection, a non-idempotent one
// probes the pooled connection first. Plain and TLS (close_notify) both.
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

}  // namespace
