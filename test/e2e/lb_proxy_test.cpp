// tandem-lb end to end, the request path: balancing, weights and the backup tier, forwarding
// headers, keep-alive, streamed bodies, WebSocket tunnels, limits and malformed requests,
// upstream timeouts and retries; --check-config and the keepalived rendering. The balancer and
// its upstreams are real processes on loopback (test/support: balancer.hpp); ports are 0
// everywhere and readiness is the processes' ready lines.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/http.hpp"
#include "support/wait.hpp"

namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using support::Balancer;
using support::ChildProcess;
using support::cluster_yaml;
using support::get_on;
using support::kFastChecks;
using support::Upstream;
using support::wait_until;

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

}  // namespace
