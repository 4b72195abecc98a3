// The PROXY protocol end to end, both ways and both versions: tandem-lb behind a layer-4
// HAProxy that sends it (the client's address reaches the cluster and the log), a header from
// an untrusted source never believed, a trusted source without one refused; towards clusters,
// HAProxy (`accept-proxy`, v2) and nginx (`proxy_protocol`, v1) as the routers that require
// it, health checks included.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lb/proxy_protocol.hpp"
#include "support/anchors.hpp"
#include "support/balancer.hpp"
#include "support/http.hpp"
#include "support/recorder.hpp"
#include "support/wait.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using support::AnchorProxy;
using support::Balancer;
using support::Recorder;
using support::wait_until;

const std::string kChecks =
    "healthCheck: {path: /__health, interval: 100ms, timeout: 80ms, rise: 1, fall: 1}\n";

std::string v1(const std::string& src) {
    return "PROXY TCP4 " + src + " 127.0.0.1 40001 80\r\n";
}
const std::string kGet = "GET /who HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

TEST(ProxyProtocol, TheClientAddressComesFromATrustedHeaderOnly) {
    Recorder rec;
    auto lb = Balancer::start("threads: 1\n" + support::cluster_yaml({{"east", rec.address()}}) +
                              kChecks + "proxyProtocol: {accept: any, from: [127.0.0.1/32]}\n");
    ASSERT_TRUE(lb);
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("east", true); }, 10s));
    // v1 and v2 from the trusted L4 balancer (127.0.0.1): the header's source is the client.
    auto answer = support::send_and_half_close(lb->port, v1("203.0.113.9") + kGet);
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0U) << answer;
    EXPECT_EQ(rec.requests().back().headers.at("x-forwarded-for"), "203.0.113.9");
    EXPECT_EQ(rec.requests().back().headers.at("forwarded"), "for=203.0.113.9;proto=http");
    const auto v2 = lb::proxy_header(lb::ProxyVersion::kV2,
                                     {boost::asio::ip::make_address("2001:db8::7"), 4242},
                                     {boost::asio::ip::make_address("2001:db8::1"), 80});
    answer = support::send_and_half_close(lb->port, v2 + kGet);
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0U) << answer;
    EXPECT_EQ(rec.requests().back().headers.at("forwarded"), "for=\"[2001:db8::7]\";proto=http");
    // A health check of the balancer in front (v2 LOCAL): the connection's own address.
    answer = support::send_and_half_close(lb->port,
                                          lb::proxy_header_local(lb::ProxyVersion::kV2) + kGet);
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0U);
    EXPECT_EQ(rec.requests().back().headers.at("x-forwarded-for"), "127.0.0.1");
    // From a trusted source the header is required: no answer, the connection closes.
    const auto before = rec.requests().size();
    EXPECT_EQ(support::send_and_half_close(lb->port, kGet), "");
    EXPECT_EQ(support::send_and_half_close(lb->port, "PROXY TCP4 1.2.3.4\r\n" + kGet), "");
    EXPECT_EQ(rec.requests().size(), before);
    EXPECT_GE(lb->metric("tandem_lb_proxy_protocol_refused_total"), 2.0);
}

TEST(ProxyProtocol, AHeaderFromAnUntrustedSourceIsNeverBelieved) {
    Recorder rec;
    auto lb = Balancer::start("threads: 1\n" + support::cluster_yaml({{"east", rec.address()}}) +
                              kChecks + "proxyProtocol: {accept: v1, from: [10.0.0.0/8]}\n");
    ASSERT_TRUE(lb);
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("east", true); }, 10s));
    // 127.0.0.1 is not in 10.0.0.0/8: a plain connection, and "PROXY ..." is a bad request.
    auto answer = support::send_and_half_close(lb->port, v1("203.0.113.9") + kGet);
    EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0U) << answer;
    answer = support::send_and_half_close(lb->port, kGet);
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0U);
    EXPECT_EQ(rec.requests().back().headers.at("x-forwarded-for"), "127.0.0.1");
}

TEST(ProxyProtocol, BehindALayer4HaproxyThatSendsIt) {
    Recorder rec;
    fs::path log = fs::temp_directory_path() / ("tandem-lb-pp-" + std::to_string(::getpid()));
    auto lb = Balancer::start("threads: 1\n" + support::cluster_yaml({{"east", rec.address()}}) +
                              kChecks + "proxyProtocol: {accept: v2, from: [127.0.0.1]}\n" +
                              "accessLog: {path: " + log.string() + "}\n");
    ASSERT_TRUE(lb);
    AnchorProxy::Options l4;
    l4.tcp = true;
    l4.l4 = true;
    l4.server_options = "send-proxy-v2";
    auto front = AnchorProxy::start(AnchorProxy::Kind::kHaproxy,
                                    "127.0.0.1:" + std::to_string(lb->port), l4);
    ASSERT_TRUE(front);
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("east", true); }, 10s));
    // The client connects from 127.0.0.3; HAProxy's connection to tandem-lb comes from
    // 127.0.0.1, and its v2 header names 127.0.0.3.
    const auto answer = support::send_and_half_close_from("127.0.0.3", front->port, kGet);
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0U) << answer;
    EXPECT_EQ(rec.requests().back().headers.at("x-forwarded-for"), "127.0.0.3");
    ASSERT_TRUE(wait_until([&] { return fs::exists(log) && fs::file_size(log) > 0; }, 5s));
    std::ifstream in(log);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(nlohmann::json::parse(line)["client"], "127.0.0.3");
    fs::remove(log);
}

// A router that requires the PROXY protocol (HAProxy `accept-proxy`, nginx `proxy_protocol`)
// in front of the recorder: it tells the recorder the source its header named.
void check_router(AnchorProxy::Kind kind, const std::string& version) {
    Recorder rec;
    AnchorProxy::Options router;
    router.tcp = true;
    if (kind == AnchorProxy::Kind::kHaproxy) {
        router.bind_options = "accept-proxy";
        router.extra = "    http-request set-header X-Proxy-Src %[src]\n";
    } else {
        router.bind_options = "proxy_protocol";
        router.extra = "        proxy_set_header X-Proxy-Src $proxy_protocol_addr;\n";
    }
    auto front = AnchorProxy::start(kind, rec.address(), router);
    ASSERT_TRUE(front);
    auto lb = Balancer::start(
        "threads: 1\n" +
        support::cluster_yaml({{"east", "127.0.0.1:" + std::to_string(front->port)}},
                              "    proxyProtocol: " + version + "\n") +
        kChecks);
    ASSERT_TRUE(lb);
    // The router refuses a connection without the header: checks that pass send it.
    const auto checks = [&](const char* key) {
        return lb->status()["clusters"][0]["endpoints"][0][key].get<int>();
    };
    ASSERT_TRUE(wait_until([&] { return checks("checks") >= 3; }, 10s));
    EXPECT_EQ(checks("failed_checks"), 0);
    const auto answer = support::send_and_half_close_from("127.0.0.3", lb->port, kGet);
    ASSERT_EQ(answer.rfind("HTTP/1.1 200", 0), 0U) << answer;
    EXPECT_EQ(rec.requests().back().headers.at("x-proxy-src"), "127.0.0.3");
    // Another client connection: its own header (a pooled connection is not shared).
    const auto second = support::send_and_half_close_from("127.0.0.4", lb->port, kGet);
    ASSERT_EQ(second.rfind("HTTP/1.1 200", 0), 0U) << second;
    EXPECT_EQ(rec.requests().back().headers.at("x-proxy-src"), "127.0.0.4");
}

TEST(ProxyProtocol, ToAClusterV2ThroughHaproxyAcceptProxy) {
    check_router(AnchorProxy::Kind::kHaproxy, "v2");
}

TEST(ProxyProtocol, ToAClusterV1ThroughNginxProxyProtocol) {
    check_router(AnchorProxy::Kind::kNginx, "v1");
}

}  // namespace
