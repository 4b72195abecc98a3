#include "lb/config.hpp"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "config/yaml_reader.hpp"

namespace {

std::vector<std::string> errors_of(const std::string& yaml) {
    auto r = lb::parse_lb_config(yaml, "lb.yaml");
    std::vector<std::string> out;
    if (!r) {
        for (const auto& d : r.error()) {
            out.push_back(d.to_string());
        }
    }
    return out;
}

bool contains(const std::vector<std::string>& lines, const std::string& needle) {
    for (const auto& l : lines) {
        if (l.find(needle) != std::string::npos) {
            return true;
        }
    }
    return false;
}

TEST(LbConfig, TheIssuesExampleLoadsWithItsValues) {
    const auto r = lb::parse_lb_config(R"(listen: 0.0.0.0:8080
admin: 127.0.0.1:9901
threads: 2
clusters:
  - name: east
    address: router.east.example.com:443     # hostname or IP, with port
    weight: 1
  - name: west
    address: 10.0.2.15:80
  - name: dr
    address: router.dr.example.com:80
    backup: true
healthCheck:
  path: /status
  interval: 2s
  timeout: 1s
  rise: 2
  fall: 3
)",
                                       "lb.yaml");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->listen.port, 8080);
    EXPECT_EQ(r->threads, 2u);
    ASSERT_EQ(r->clusters.size(), 3u);
    EXPECT_EQ(r->clusters[0].address.host, "router.east.example.com");
    EXPECT_EQ(r->clusters[0].address.port, 443);
    EXPECT_TRUE(r->clusters[2].backup);
    EXPECT_FALSE(r->clusters[1].backup);
    EXPECT_EQ(r->clusters[1].source.line, 8);
    EXPECT_EQ(r->health_check.path, "/status");
    EXPECT_EQ(r->health_check.interval, std::chrono::seconds(2));
    EXPECT_EQ(r->health_check.timeout, std::chrono::seconds(1));
    EXPECT_EQ(r->health_check.fall, 3u);
}

TEST(LbConfig, EveryProblemIsReportedWithItsLine) {
    const auto errors = errors_of(R"(listen: 0.0.0.0
admin: localhost:9901
threads: many
colour: blue
clusters:
  - name: east
    address: east.example.com
  - name: east
    address: "[::1]:80"
    weight: 0
healthCheck:
  interval: 1s
  timeout: 2s
  method: POST
  expectStatus: [200, 299-200]
  jitter: 80%
timeouts:
  upstreamConnect: soon
)");
    EXPECT_TRUE(contains(errors, "lb.yaml:1: error: listen: must be IP:port")) << errors.size();
    EXPECT_TRUE(contains(errors, "lb.yaml:2: error: admin: must be IP:port"));
    EXPECT_TRUE(contains(errors, "lb.yaml:3: error: threads: must be an integer from 0 to 256"));
    EXPECT_TRUE(contains(errors, "lb.yaml:4: error: colour: unknown field"));
    EXPECT_TRUE(contains(errors, "lb.yaml:7: error: clusters[0].address: must be host:port"));
    EXPECT_TRUE(contains(errors, "lb.yaml:8: error: clusters[1].name: duplicate cluster name"));
    EXPECT_TRUE(contains(errors, "lb.yaml:10: error: clusters[1].weight: must be an integer"));
    EXPECT_TRUE(contains(errors, "lb.yaml:13: error: healthCheck.timeout: must not exceed"));
    EXPECT_TRUE(contains(errors, "lb.yaml:14: error: healthCheck.method: must be GET"));
    EXPECT_TRUE(contains(errors, "lb.yaml:15: error: healthCheck.expectStatus"));
    EXPECT_TRUE(contains(errors, "lb.yaml:16: error: healthCheck.jitter"));
    EXPECT_TRUE(
        contains(errors, "lb.yaml:18: error: timeouts.upstreamConnect: must be a duration"));
}

TEST(LbConfig, TheShippedExampleLoads) {
    const auto r = lb::load_lb_config(std::string(TANDEM_EXAMPLES_DIR) + "/tandem-lb.yaml");
    ASSERT_TRUE(r.has_value()) << r.error().front().to_string();
    EXPECT_EQ(r->clusters.size(), 3u);
    EXPECT_EQ(r->health_check.down_interval, std::chrono::seconds(5));
    EXPECT_EQ(r->health_check.host, "api.example.com");
    EXPECT_EQ(r->retry.per_try_timeout, std::chrono::seconds(2));
    EXPECT_EQ(r->dns.max_ttl, std::chrono::minutes(5));
    const auto missing = lb::load_lb_config("/nonexistent/lb.yaml");
    ASSERT_FALSE(missing.has_value());
    EXPECT_NE(missing.error().front().to_string().find("cannot read the file"), std::string::npos);
}

TEST(LbConfig, KeepalivedSectionAndVipRanges) {
    const auto vips = lb::expand_vips("10.1.1.5-8/24");
    ASSERT_TRUE(vips);
    EXPECT_EQ(*vips, (std::vector<std::string>{"10.1.1.5/24", "10.1.1.6/24", "10.1.1.7/24",
                                               "10.1.1.8/24"}));
    EXPECT_EQ(lb::expand_vips("42.42.42.42"), (std::vector<std::string>{"42.42.42.42/32"}));
    EXPECT_EQ(lb::expand_vips("2001:db8::10/64"), (std::vector<std::string>{"2001:db8::10/64"}));
    EXPECT_FALSE(lb::expand_vips("10.1.1.8-5"));
    EXPECT_FALSE(lb::expand_vips("10.1.1.5/33"));
    EXPECT_FALSE(lb::expand_vips("2001:db8::1-5"));
    EXPECT_FALSE(lb::expand_vips("vip.example.com"));
    const auto errors = errors_of(
        "clusters: [{name: a, address: 'a:1'}]\nkeepalived:\n  virtualRouterIdBase: 254\n"
        "  vips: [10.0.0.1-5, nope]\n  nodes: [{name: lb1, address: 10.0.0.11}]\n"
        "  tandemLbPath: relative/tandem-lb\n");
    EXPECT_TRUE(contains(errors, "lb.yaml:4: error: keepalived.vips[1]: must be an address"));
    EXPECT_TRUE(contains(errors, "exceed VRRP's 255 router ids"));
    EXPECT_TRUE(contains(errors, "keepalived.nodes: needs at least two nodes"));
    EXPECT_TRUE(contains(errors, "must be absolute paths"));
    const auto ok = lb::parse_lb_config(
        "clusters: [{name: a, address: 'a:1'}]\nkeepalived:\n  vips: [192.0.2.1-2/24]\n"
        "  nodes: [{name: lb1, address: 10.0.0.11}, {name: lb2, address: 10.0.0.12}]\n",
        "x.yaml");
    ASSERT_TRUE(ok.has_value());
    const auto lb2 = lb::render_keepalived(*ok, "lb2");
    ASSERT_TRUE(lb2.has_value());
    // VIP 0's home is lb1 (lb2 backs it up), VIP 1's home is lb2.
    const auto vip0 = lb2->find("tandem_vip_0");
    const auto vip1 = lb2->find("tandem_vip_1");
    EXPECT_NE(lb2->find("priority 99", vip0), std::string::npos);
    EXPECT_LT(lb2->find("priority 99", vip0), vip1);
    EXPECT_NE(lb2->find("priority 150", vip1), std::string::npos);
    EXPECT_FALSE(lb::render_keepalived(*ok, "lb3").has_value());
}

TEST(LbConfig, NeedsAPrimaryCluster) {
    EXPECT_TRUE(contains(errors_of("clusters:\n  - name: dr\n    address: 10.0.0.1:80\n    "
                                   "backup: true\n"),
                         "every cluster is a backup"));
    EXPECT_TRUE(contains(errors_of("listen: 127.0.0.1:80\n"), "clusters: is required"));
    EXPECT_TRUE(contains(errors_of("clusters: [\n"), "not valid YAML"));
}

TEST(LbConfig, ClusterTls) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("tandem-lb-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "ca.pem") << "-----BEGIN CERTIFICATE-----\n";
    const std::string file = (dir / "lb.yaml").string();
    auto r = lb::parse_lb_config(R"(clusters:
  - name: east
    address: router.east.example.com:443
    tls: true
  - name: west
    address: 10.0.2.15:443
    tls:
      serverName: api.apps.example.com
      caFile: ca.pem
  - name: lab
    address: 10.0.2.16:443
    tls: {verify: false}
  - name: plain
    address: 10.0.2.17:80
    tls: {enabled: false, serverName: x.example.com}
)",
                                 file);
    ASSERT_TRUE(r) << (r ? "" : r.error().front().to_string());
    const auto& c = r->clusters;
    EXPECT_TRUE(c[0].tls.enabled);
    EXPECT_TRUE(c[0].tls.verify);
    EXPECT_EQ(c[0].tls_name(), "router.east.example.com");  // the address host by default
    EXPECT_EQ(c[1].tls_name(), "api.apps.example.com");
    EXPECT_EQ(c[1].tls.ca_file, (dir / "ca.pem").string());  // relative to the file
    EXPECT_TRUE(c[2].tls.enabled);
    EXPECT_FALSE(c[2].tls.verify);
    EXPECT_FALSE(c[3].tls.enabled);

    const auto errors = [&](const std::string& tls) {
        std::vector<std::string> out;
        auto bad = lb::parse_lb_config(
            "clusters:\n  - name: a\n    address: a.example.com:443\n"
            "    tls: " +
                tls + "\n",
            file);
        if (!bad) {
            for (const auto& d : bad.error()) {
                out.push_back(d.to_string());
            }
        }
        return out;
    };
    EXPECT_TRUE(contains(errors("{caFile: missing.pem}"), "lb.yaml:4"));
    EXPECT_TRUE(contains(errors("{caFile: missing.pem}"), "clusters[0].tls.caFile: cannot read"));
    EXPECT_TRUE(contains(errors("{verify: false, caFile: ca.pem}"), "is not used when verify"));
    EXPECT_TRUE(contains(errors("{serverName: 'bad name!'}"), "tls.serverName: must be a DNS"));
    EXPECT_TRUE(contains(errors("{sni: x}"), "tls.sni: unknown field"));
    EXPECT_TRUE(contains(errors("yes"), "must be true or false"));
    EXPECT_TRUE(contains(errors("{keyFile: ca.pem}"), "tls.keyFile: needs certFile too"));
    EXPECT_TRUE(
        contains(errors("{certFile: missing.pem, keyFile: ca.pem}"), "tls.certFile: cannot read"));
    auto mtls = lb::parse_lb_config(
        "clusters:\n  - name: a\n    address: a.example.com:443\n"
        "    tls: {certFile: ca.pem, keyFile: ca.pem}\n",
        file);
    ASSERT_TRUE(mtls);
    EXPECT_EQ(mtls->clusters[0].tls.cert_file, (dir / "ca.pem").string());
    EXPECT_EQ(mtls->clusters[0].tls.key_file, (dir / "ca.pem").string());
    std::filesystem::remove_all(dir);
}

TEST(LbConfig, DurationsSizesAndAddresses) {
    // The project's one duration grammar (config::parse_duration): a unit is required.
    EXPECT_EQ(config::parse_duration("250ms"), std::chrono::milliseconds(250));
    EXPECT_EQ(config::parse_duration("2s"), std::chrono::seconds(2));
    EXPECT_EQ(config::parse_duration("1m"), std::chrono::minutes(1));
    EXPECT_EQ(config::parse_duration("1h"), std::chrono::hours(1));
    EXPECT_EQ(config::parse_duration("0"), std::chrono::milliseconds(0));
    EXPECT_FALSE(config::parse_duration("15"));
    EXPECT_FALSE(config::parse_duration("2 s"));
    EXPECT_FALSE(config::parse_duration("-1s"));
    EXPECT_FALSE(config::parse_duration("s"));
    EXPECT_FALSE(config::parse_duration("1d"));
    // A bare number in the file: refused where it is, with the unit to add (it used to mean
    // milliseconds here).
    EXPECT_TRUE(contains(errors_of("clusters:\n  - {name: a, address: 10.0.0.1:80}\n"
                                   "healthCheck:\n  interval: 500\n"),
                         "lb.yaml:4: error: healthCheck.interval: '500' has no unit: write 500ms"));
    // "0" needs no unit.
    EXPECT_TRUE(errors_of("clusters:\n  - {name: a, address: 10.0.0.1:80}\ntimeouts:\n  drain: 0\n")
                    .empty());
    auto v6 = lb::parse_host_port("[::1]:8080");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->to_string(), "[::1]:8080");
    EXPECT_FALSE(lb::parse_host_port("::1:8080"));
    EXPECT_FALSE(lb::parse_host_port("host:99999"));
    EXPECT_FALSE(lb::parse_host_port("host"));
    const auto r = lb::parse_lb_config(
        "clusters:\n  - {name: a, address: 'a:1'}\nlimits:\n  maxHeaderBytes: 8KiB\n  "
        "maxBodyBytes: 1MiB\nretry:\n  perTryTimeout: 500ms\ndns:\n  servers: [127.0.0.1]\n",
        "x.yaml");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->limits.max_header_bytes, 8192u);
    EXPECT_EQ(r->limits.max_body_bytes, 1024u * 1024u);
    EXPECT_EQ(r->retry.per_try_timeout, std::chrono::milliseconds(500));
    ASSERT_EQ(r->dns.servers.size(), 1u);
    EXPECT_EQ(r->dns.servers[0].port, 53);
    EXPECT_EQ(r->reload.watch_interval.count(), 0);  // off unless asked for
}

TEST(LbConfig, ReloadWatchInterval) {
    const std::string clusters = "clusters:\n  - {name: a, address: 'a:1'}\n";
    const auto watch = lb::parse_lb_config(clusters + "reload:\n  watchInterval: 10s\n", "x.yaml");
    ASSERT_TRUE(watch.has_value());
    EXPECT_EQ(watch->reload.watch_interval, std::chrono::seconds(10));
    const auto off = lb::parse_lb_config(clusters + "reload:\n  watchInterval: 0s\n", "x.yaml");
    ASSERT_TRUE(off.has_value());
    EXPECT_EQ(off->reload.watch_interval.count(), 0);
    for (const auto& [text, says] : std::vector<std::pair<std::string, std::string>>{
             {"reload:\n  watchInterval: 20ms\n",
              "x.yaml:4: error: reload.watchInterval: must be "
              "0 (off: only SIGHUP reloads) or at least 100ms"},
             {"reload:\n  watchInterval: soon\n",
              "x.yaml:4: error: reload.watchInterval: must be a "
              "duration"},
             {"reload:\n  every: 1s\n",
              "x.yaml:4: error: reload.every: unknown field (known: "
              "watchInterval)"}}) {
        const auto bad = lb::parse_lb_config(clusters + text, "x.yaml");
        ASSERT_FALSE(bad.has_value()) << text;
        EXPECT_EQ(bad.error().front().to_string().rfind(says, 0), 0u)
            << bad.error().front().to_string();
    }
}

}  // namespace

TEST(LbConfig, HttpsListener) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("tandem-lb-https-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "tls.crt") << "-----BEGIN CERTIFICATE-----\n";
    std::ofstream(dir / "tls.key") << "-----BEGIN PRIVATE KEY-----\n";
    const std::string file = (dir / "lb.yaml").string();
    const std::string clusters = "clusters:\n  - name: a\n    address: 10.0.0.1:80\n";
    auto r = lb::parse_lb_config(
        "https:\n  listen: 0.0.0.0:8443\n  certFile: tls.crt\n  keyFile: tls.key\n" + clusters,
        file);
    ASSERT_TRUE(r) << (r ? "" : r.error().front().to_string());
    EXPECT_TRUE(r->https.enabled);
    EXPECT_EQ(r->https.listen.to_string(), "0.0.0.0:8443");
    EXPECT_EQ(r->https.cert_file, (dir / "tls.crt").string());  // relative to the file
    EXPECT_EQ(r->https.key_file, (dir / "tls.key").string());
    auto none = lb::parse_lb_config(clusters, file);
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->https.enabled);

    // The errors of a file with `top` before the clusters; of one with an https section.
    const auto admin_errors = [&](const std::string& top) {
        std::vector<std::string> out;
        auto bad = lb::parse_lb_config(top + clusters, file);
        if (!bad) {
            for (const auto& d : bad.error()) {
                out.push_back(d.to_string());
            }
        }
        return out;
    };
    const auto errors = [&](const std::string& https) {
        return admin_errors("listen: 0.0.0.0:8080\nhttps:\n" + https);
    };
    const auto e1 = errors("  listen: 0.0.0.0:8443\n  certFile: missing.crt\n  keyFile: tls.key\n");
    EXPECT_TRUE(contains(e1, "lb.yaml:4"));
    EXPECT_TRUE(contains(e1, "https.certFile: cannot read"));
    EXPECT_TRUE(contains(errors("  listen: 0.0.0.0:8443\n  certFile: tls.crt\n"),
                         "https.keyFile: is required"));
    EXPECT_TRUE(contains(errors("  listen: example.com:8443\n  certFile: tls.crt\n  keyFile: "
                                "tls.key\n"),
                         "https.listen: must be IP:port"));
    EXPECT_TRUE(contains(errors("  listen: 0.0.0.0:8080\n  certFile: tls.crt\n  keyFile: "
                                "tls.key\n"),
                         "https.listen: must differ from listen"));
    EXPECT_TRUE(
        contains(errors("  listen: 0.0.0.0:8443\n  cert: tls.crt\n"), "https.cert: unknown field"));
    // One of them on every address (0.0.0.0) takes the port on 127.0.0.1 too.
    EXPECT_TRUE(contains(errors("  listen: 127.0.0.1:8080\n  certFile: tls.crt\n  keyFile: "
                                "tls.key\n"),
                         "https.listen: must differ from listen"));
    EXPECT_TRUE(
        errors("  listen: 127.0.0.1:8443\n  certFile: tls.crt\n  keyFile: tls.key\n").empty());
    const auto a1 = admin_errors("listen: 127.0.0.1:8080\nadmin: 127.0.0.1:8080\n");
    EXPECT_TRUE(contains(a1, "lb.yaml:2"));
    EXPECT_TRUE(contains(a1, "admin: must differ from listen (127.0.0.1:8080)"));
    EXPECT_TRUE(contains(admin_errors("listen: 0.0.0.0:8080\nadmin: 127.0.0.1:8080\n"),
                         "admin: must differ from listen"));
    EXPECT_TRUE(
        contains(admin_errors("admin: 127.0.0.1:8443\nhttps:\n  listen: 0.0.0.0:8443\n  certFile: "
                              "tls.crt\n  keyFile: tls.key\n"),
                 "admin: must differ from https.listen (0.0.0.0:8443)"));
    EXPECT_TRUE(admin_errors("listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n").empty());
    EXPECT_TRUE(admin_errors("listen: 127.0.0.1:8080\nadmin: 127.0.0.2:8080\n").empty());
    std::filesystem::remove_all(dir);
}

namespace {

TEST(LbConfig, ADuplicateKeyIsReportedWithItsPath) {
    EXPECT_TRUE(contains(errors_of("clusters:\n  - {name: a, address: 10.0.0.1:80}\n"
                                   "healthCheck:\n  interval: 1s\n  interval: 2s\n"),
                         "lb.yaml:5: error: healthCheck.interval: duplicate key"));
}

TEST(LbConfig, AccessLogAndRequestId) {
    const std::string base = "clusters: [{name: a, address: 127.0.0.1:80}]\n";
    auto r = lb::parse_lb_config(base + R"(accessLog:
  path: logs/access.log
  format: combined
  redactQuery: [user_key, api_key]
  headers: User-Agent
  sample: 25%
  bufferSize: 64KiB
requestId: {header: X-Correlation-Id, trustIncoming: true}
)",
                                 "/etc/tandem-lb/lb.yaml");
    ASSERT_TRUE(r) << r.error().front().to_string();
    EXPECT_TRUE(r->access_log.enabled);
    EXPECT_EQ(r->access_log.path, "/etc/tandem-lb/logs/access.log");  // (relative to the file)
    EXPECT_EQ(r->access_log.format, lb::AccessLogConfig::Format::kCombined);
    EXPECT_EQ(r->access_log.redact_query, (std::vector<std::string>{"user_key", "api_key"}));
    EXPECT_EQ(r->access_log.headers, (std::vector<std::string>{"User-Agent"}));
    EXPECT_EQ(r->access_log.sample_percent, 25U);
    EXPECT_EQ(r->access_log.buffer_bytes, 64U * 1024);
    EXPECT_EQ(r->request_id.header, "X-Correlation-Id");
    EXPECT_TRUE(r->request_id.trust_incoming);
    // Defaults: no access log; request IDs on, not trusted; 3scale's credentials redacted.
    auto d = lb::parse_lb_config(base, "lb.yaml");
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->access_log.enabled);
    EXPECT_TRUE(d->request_id.enabled);
    EXPECT_FALSE(d->request_id.trust_incoming);
    EXPECT_EQ(d->access_log.redact_query,
              (std::vector<std::string>{"user_key", "app_id", "app_key", "access_token"}));
    const auto e = errors_of(base + R"(accessLog: {format: xml, headers: ["a b"], sample: 0%}
requestId: {header: "X Id"}
)");
    EXPECT_TRUE(contains(e, "lb.yaml:2: error: accessLog.path: is required")) << e.front();
    EXPECT_TRUE(contains(e, "accessLog.format: must be json, common or combined (got 'xml')"));
    EXPECT_TRUE(contains(e, "accessLog.headers[0]: must be a header name (got 'a b')"));
    EXPECT_TRUE(contains(e, "accessLog.sample: must be a percentage from 1% to 100% (got '0%')"));
    EXPECT_TRUE(contains(e, "requestId.header: must be a header name (got 'X Id')"));
}

TEST(LbConfig, ProxyProtocolBothWays) {
    auto r = lb::parse_lb_config(
        R"(proxyProtocol: {accept: v2, from: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7]}
clusters:
  - {name: a, address: 127.0.0.1:80, proxyProtocol: v1}
  - {name: b, address: 127.0.0.1:81}
)",
        "lb.yaml");
    ASSERT_TRUE(r) << r.error().front().to_string();
    EXPECT_TRUE(r->proxy_protocol.enabled);
    EXPECT_EQ(r->proxy_protocol.accept, lb::ProxyVersion::kV2);
    ASSERT_EQ(r->proxy_protocol.from.size(), 3U);
    const auto ip = [](const char* a) { return boost::asio::ip::make_address(a); };
    EXPECT_TRUE(r->proxy_protocol.trusts(ip("10.200.3.4")));
    EXPECT_TRUE(r->proxy_protocol.trusts(ip("::ffff:10.1.1.1")));  // (v4 on a v6 socket)
    EXPECT_TRUE(r->proxy_protocol.trusts(ip("2001:db8:1::5")));
    EXPECT_TRUE(r->proxy_protocol.trusts(ip("192.0.2.7")));
    EXPECT_FALSE(r->proxy_protocol.trusts(ip("192.0.2.8")));
    EXPECT_FALSE(r->proxy_protocol.trusts(ip("11.0.0.1")));
    EXPECT_EQ(r->clusters[0].proxy_protocol, lb::ProxyVersion::kV1);
    EXPECT_FALSE(r->clusters[1].proxy_protocol);
    EXPECT_FALSE(r->https.proxy_protocol.enabled);
    // No `from`: every source must send the header; off: nobody's is believed.
    auto all = lb::parse_lb_config(
        "proxyProtocol: {}\nclusters: [{name: a, address: 1.2.3.4:80}]\n", "lb.yaml");
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->proxy_protocol.trusts(ip("203.0.113.1")));
    EXPECT_EQ(all->proxy_protocol.accept, lb::ProxyVersion::kAny);
    lb::ProxyAcceptConfig off;
    EXPECT_FALSE(off.trusts(ip("127.0.0.1")));
    const auto e = errors_of(R"(proxyProtocol: {accept: v3, from: [10.0.0.0/33, nonsense]}
clusters: [{name: a, address: 1.2.3.4:80, proxyProtocol: any}]
)");
    EXPECT_TRUE(contains(e, "proxyProtocol.accept: must be v1, v2 or any (got 'v3')"));
    EXPECT_TRUE(contains(e, "proxyProtocol.from[0]: must be an address or a CIDR block"));
    EXPECT_TRUE(contains(e, "proxyProtocol.from[1]: must be an address or a CIDR block"));
    EXPECT_TRUE(contains(e, "clusters[0].proxyProtocol: must be v1 or v2"));
}

TEST(LbConfig, OutlierDetectionAndRetryBudget) {
    const std::string base = "clusters: [{name: a, address: 127.0.0.1:80}]\n";
    auto d = lb::parse_lb_config(base, "lb.yaml");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->outlier.consecutive_errors, 0U);  // off unless configured
    EXPECT_EQ(d->retry.budget.percent, 20U);
    EXPECT_EQ(d->retry.budget.min_concurrency, 3U);
    auto r =
        lb::parse_lb_config(base + R"(outlierDetection: {baseEjection: 10s, maxEjectionPercent: 34%}
retry: {budget: {percent: 50, minConcurrency: 1}}
)",
                            "lb.yaml");
    ASSERT_TRUE(r) << r.error().front().to_string();
    EXPECT_EQ(r->outlier.consecutive_errors, 5U);  // the section on its own turns it on
    EXPECT_EQ(r->outlier.base_ejection, std::chrono::seconds(10));
    EXPECT_EQ(r->outlier.max_ejection_percent, 34U);
    EXPECT_EQ(r->retry.budget.percent, 50U);
    EXPECT_EQ(r->retry.budget.min_concurrency, 1U);
    const auto e = errors_of(
        base + R"(outlierDetection: {baseEjection: 1m, maxEjection: 30s, maxEjectionPercent: 150}
retry: {budget: {percent: x}}
)");
    EXPECT_TRUE(contains(e, "outlierDetection.maxEjection: must not be below baseEjection"));
    EXPECT_TRUE(contains(e, "outlierDetection.maxEjectionPercent: must be a percentage"));
    EXPECT_TRUE(
        contains(e, "retry.budget.percent: must be a percentage from 0% to 100% (got 'x')"));
}

}  // namespace

TEST(LbConfig, Http2SettingsAndTheirErrors) {
    const auto ok = lb::parse_lb_config(
        "h2c: true\nhttp2: {maxConcurrentStreams: 50, maxHeaderListSize: 32KiB, "
        "initialWindow: 1MiB, idleTimeout: 30s}\nclusters:\n  - {name: a, address: "
        "10.0.0.1:80}\n",
        "lb.yaml");
    ASSERT_TRUE(ok) << ok.error().front().message;
    EXPECT_TRUE(ok->http2.h2c);
    EXPECT_EQ(ok->http2.max_concurrent_streams, 50u);
    EXPECT_EQ(ok->http2.max_header_list_size, 32u * 1024);
    EXPECT_EQ(ok->http2.initial_window, 1024u * 1024);
    EXPECT_EQ(ok->http2.idle_timeout, lb::Millis(30000));
    EXPECT_EQ(ok->https.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
    const auto errors = errors_of(
        "http2: {maxConcurrentStreams: 0, initialWindow: 1KiB, pings: 1}\n"
        "clusters:\n  - {name: a, address: 10.0.0.1:80}\n");
    EXPECT_TRUE(contains(errors, "lb.yaml:1")) << testing::PrintToString(errors);
    EXPECT_TRUE(contains(errors, "http2.maxConcurrentStreams"));
    EXPECT_TRUE(contains(errors, "http2.initialWindow"));
    EXPECT_TRUE(contains(errors, "pings"));
}

TEST(LbConfig, SpliceSwitchThresholdAndPipes) {
    const auto defaults =
        lb::parse_lb_config("clusters:\n  - {name: a, address: 10.0.0.1:80}\n", "lb.yaml");
    ASSERT_TRUE(defaults);
    EXPECT_TRUE(defaults->splice.enabled);
    EXPECT_EQ(defaults->splice.min_bytes, 16u * 1024);
    EXPECT_EQ(defaults->splice.max_pipes, 1024u);
    const auto ok = lb::parse_lb_config(
        "splice: {enabled: false, minBytes: 1MiB, maxPipes: 8}\n"
        "clusters:\n  - {name: a, address: 10.0.0.1:80}\n",
        "lb.yaml");
    ASSERT_TRUE(ok) << ok.error().front().message;
    EXPECT_FALSE(ok->splice.enabled);
    EXPECT_EQ(ok->splice.min_bytes, 1024u * 1024);
    EXPECT_EQ(ok->splice.max_pipes, 8u);
    const auto errors = errors_of(
        "clusters:\n  - {name: a, address: 10.0.0.1:80}\n"
        "splice:\n  enabled: sometimes\n  minBytes: 0\n  maxPipes: 0\n  pipeSize: 1MiB\n");
    EXPECT_TRUE(contains(errors, "lb.yaml:4")) << testing::PrintToString(errors);
    EXPECT_TRUE(contains(errors, "splice.enabled"));
    EXPECT_TRUE(contains(errors, "splice.minBytes"));
    EXPECT_TRUE(contains(errors, "splice.maxPipes"));
    EXPECT_TRUE(contains(errors, "pipeSize"));
}

TEST(LbConfig, HttpsAlpnListsH2AndHttp11Only) {
    const std::string https =
        "clusters:\n  - {name: a, address: 10.0.0.1:80}\nhttps:\n  listen: 127.0.0.1:8443\n"
        "  certFile: /etc/hostname\n  keyFile: /etc/hostname\n";
    const auto ok = lb::parse_lb_config(https + "  alpn: [http/1.1]\n", "lb.yaml");
    ASSERT_TRUE(ok) << ok.error().front().message;
    EXPECT_EQ(ok->https.alpn, std::vector<std::string>{"http/1.1"});
    EXPECT_TRUE(contains(errors_of(https + "  alpn: [h2, spdy/3]\n"),
                         "'spdy/3' is not a protocol tandem-lb serves"));
    EXPECT_TRUE(contains(errors_of(https + "  alpn: [h2, h2]\n"), "lists 'h2' twice"));
}

TEST(LbConfig, ClusterProtocolIsOnePerRoute) {
    const auto ok = lb::parse_lb_config(
        "clusters:\n  - {name: a, address: 10.0.0.1:80, protocol: h2}\n"
        "  - {name: b, address: 10.0.0.2:80, protocol: h2}\n  - {name: c, address: 10.0.0.3:80}\n"
        "routes:\n  - {hosts: [grpc.example.com], clusters: [a, b]}\n"
        "  - {hosts: ['*'], clusters: [c]}\n",
        "lb.yaml");
    ASSERT_TRUE(ok) << ok.error().front().message;
    EXPECT_EQ(ok->clusters[0].protocol, lb::ClusterProtocol::kH2);
    EXPECT_EQ(ok->clusters[2].protocol, lb::ClusterProtocol::kHttp1);
    EXPECT_EQ(ok->protocol_of(0), lb::ClusterProtocol::kH2);
    EXPECT_EQ(ok->protocol_of(1), lb::ClusterProtocol::kHttp1);
    // Without routes every cluster is one route: one protocol.
    const auto mixed = errors_of(
        "clusters:\n  - {name: a, address: 10.0.0.1:80, protocol: h2}\n"
        "  - {name: b, address: 10.0.0.2:80}\n");
    EXPECT_TRUE(contains(mixed, "lb.yaml:2")) << testing::PrintToString(mixed);
    EXPECT_TRUE(contains(mixed, "clusters: mixes protocols: cluster b speaks http1, cluster a h2"));
    const auto route = errors_of(
        "clusters:\n  - {name: a, address: 10.0.0.1:80, protocol: h2}\n"
        "  - {name: b, address: 10.0.0.2:80}\n"
        "routes:\n  - {hosts: ['*'], clusters: [b, a]}\n");
    EXPECT_TRUE(contains(route, "routes[0].clusters: mixes protocols"));
    EXPECT_TRUE(
        contains(errors_of("clusters:\n  - {name: a, address: 10.0.0.1:80, protocol: h3}\n"),
                 "clusters[0].protocol: must be http1 (the default) or h2"));
    EXPECT_TRUE(contains(errors_of("clusters:\n  - {name: a, address: 10.0.0.1:80, protocol: h2, "
                                   "proxyProtocol: v2}\n"),
                         "h2 cannot be combined with proxyProtocol"));
}
