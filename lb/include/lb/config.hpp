#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "config/diagnostic.hpp"
#include "config/secret.hpp"
#include "lb/proxy_protocol.hpp"

namespace lb {

using Millis = std::chrono::milliseconds;

struct HostPort {
    std::string host;  // a hostname, an IPv4 address or an IPv6 address without brackets
    std::uint16_t port = 0;
    [[nodiscard]] std::string to_string() const;
    bool operator==(const HostPort&) const = default;
};

// An address block ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7" for one address).
struct Cidr {
    boost::asio::ip::address network;
    unsigned prefix = 0;
    // An IPv4-mapped IPv6 address (::ffff:10.1.2.3, a v4 client on a v6 socket) is matched as
    // the IPv4 address it is.
    [[nodiscard]] bool contains(const boost::asio::ip::address& a) const;
    bool operator==(const Cidr&) const = default;
};
std::optional<Cidr> parse_cidr(const std::string& text);

// The PROXY protocol on a listener: connections from `from` must start with the header (in a
// version `accept` allows), whose source becomes the client's address; connections from
// elsewhere are plain ones, and a PROXY header from them is never believed.
struct ProxyAcceptConfig {
    bool enabled = false;
    ProxyVersion accept = ProxyVersion::kAny;
    std::vector<Cidr> from;  // empty: every source
    [[nodiscard]] bool trusts(const boost::asio::ip::address& a) const;
    bool operator==(const ProxyAcceptConfig&) const = default;
};

// TLS to a cluster (an OpenShift router on :443). Verification is on unless turned off.
struct TlsConfig {
    bool enabled = false;
    // SNI and the name the certificate must match; default: the address host (an IP address
    // is matched against the certificate's IP SANs and sent without SNI).
    std::optional<std::string> server_name;
    std::optional<std::string> ca_file;  // PEM bundle; default: the system trust store
    bool verify = true;
    // A client certificate for clusters that ask for one (mutual TLS): PEM chain and key.
    std::optional<std::string> cert_file;
    std::optional<std::string> key_file;
    bool operator==(const TlsConfig&) const = default;
};

// What the balancer speaks to a cluster: HTTP/1.1 over pooled connections, or HTTP/2
// (ALPN h2 over TLS, h2c otherwise) with every request a stream on a few multiplexed
// connections per worker and endpoint (gRPC needs it: streams and trailers end to end).
enum class ClusterProtocol { kHttp1, kH2 };

struct ClusterConfig {
    std::string name;
    HostPort address;
    std::int64_t weight = 1;  // 1..1000
    bool backup = false;
    TlsConfig tls;
    // The PROXY protocol towards the cluster (an OpenShift router with
    // ROUTER_USE_PROXY_PROTOCOL): every connection, health checks included, starts with it.
    std::optional<ProxyVersion> proxy_protocol;
    ClusterProtocol protocol = ClusterProtocol::kHttp1;
    config::Source source;
    // The name TLS verifies and sends as SNI.
    [[nodiscard]] const std::string& tls_name() const {
        return tls.server_name ? *tls.server_name : address.host;
    }
};

// Which clusters take a request, by its Host: `primary` sends it to the first healthy cluster of
// the route's list (failover down the list: a portal and admin host pinned to the portal
// instance), `roundRobin` spreads it over the route's clusters per request (weights and backups
// as configured).
enum class RoutePolicy { kRoundRobin, kPrimary };

struct RouteConfig {
    std::string name;                // `name:`, or "routes[N]"
    std::vector<std::string> hosts;  // lower-case: "api.example.com", "*.example.com", "*"
    RoutePolicy policy = RoutePolicy::kRoundRobin;
    std::vector<std::size_t> clusters;  // indexes into LbConfig::clusters, in the route's order
    config::Source source;
};

// Inclusive status ranges that count as a passing check ("200-399", "200", "204").
struct StatusRange {
    unsigned low = 200;
    unsigned high = 399;
    bool operator==(const StatusRange&) const = default;
};

struct HealthCheckConfig {
    bool enabled = true;
    std::string method = "GET";
    std::string path = "/";
    std::optional<std::string> host;  // Host header; default: the cluster's address host
    std::vector<StatusRange> expect{StatusRange{}};
    Millis interval{2000};
    std::optional<Millis> down_interval;  // interval while the endpoint is down (default: interval)
    Millis timeout{1000};
    std::uint32_t rise = 2;
    std::uint32_t fall = 3;
    unsigned jitter_percent = 10;  // each interval is spread by +- this share
    bool operator==(const HealthCheckConfig&) const = default;
};

struct DnsConfig {
    std::vector<HostPort> servers;  // empty: /etc/resolv.conf
    Millis min_ttl{1000};           // re-resolve no sooner than this
    Millis max_ttl{300000};         // and no later than this, whatever the TTL says
    Millis retry{5000};             // after a failed resolution (the last good answer stays)
    Millis timeout{2000};           // one resolution attempt
    bool operator==(const DnsConfig&) const = default;
};

struct TimeoutConfig {
    Millis client_header{10000};      // whole request header -> 408
    Millis client_idle{60000};        // keep-alive wait for the next request -> close
    Millis client_body{30000};        // between reads/writes of a body on the client side
    Millis client_body_grace{10000};  // then a request body must average limits.minBodyRate
    Millis upstream_connect{1000};    // -> retry on another cluster, else 502
    Millis upstream_response{30000};  // request sent -> first response byte; -> 504
    Millis drain{15000};              // SIGTERM: how long in-flight requests may finish
    Millis tunnel_idle{3600000};      // an upgraded connection (WebSocket) with no byte either way
};

struct LimitConfig {
    std::uint32_t max_header_bytes = 16 * 1024;          // -> 431
    std::uint64_t max_body_bytes = 16ULL * 1024 * 1024;  // -> 413
    std::uint64_t min_body_rate = 1024;  // bytes/s a request body averages after the grace; 0: off
    std::uint32_t max_connections = 100000;  // per worker; beyond: refused
    // Response bytes a client connection may have waiting in the kernel, unsent
    // (TCP_NOTSENT_LOWAT): a client that reads slowly holds this much, not the whole response
    // in an autotuned multi-megabyte send buffer (3000 slow readers of 256 KiB responses pushed
    // the machine's TCP memory past tcp_mem without it). 0: the kernel's default.
    std::uint64_t client_unsent_bytes = 128 * 1024;
};

// Bodies relayed between plain TCP sockets on both sides (no TLS either way, HTTP/1.1 to an
// HTTP/1.1 cluster) whose rest is at least `min_bytes` — a Content-Length's rest, or a chunk's
// data — are moved with splice(2): socket -> pipe -> socket, never copied through user space.
struct SpliceConfig {
    bool enabled = true;
    std::uint64_t min_bytes = 16 * 1024;
    std::uint32_t max_pipes = 1024;  // per worker (two descriptors each); beyond: copied
};

struct PoolConfig {
    std::uint32_t max_idle_per_endpoint = 128;  // per worker
    Millis idle_timeout{15000};                 // below the usual upstream keep-alive timeouts
};

// Retries may not pile onto a struggling fleet (Envoy's retry budget): at most `percent` of the
// requests in flight may be retries, and `min_concurrency` retries are always allowed. A retry
// after a refused connection is not counted (the request reached no cluster).
struct RetryBudgetConfig {
    unsigned percent = 20;
    std::uint32_t min_concurrency = 3;
    bool operator==(const RetryBudgetConfig&) const = default;
};

// Outlier detection, Envoy's way: an endpoint answering `consecutive_errors` gateway errors in
// a row (502, 503 or 504 from it, a failed connect, a per-try timeout) is ejected for
// base_ejection times the number of its ejections so far (at most max_ejection), while no more
// than max_ejection_percent of its cluster's endpoints are ejected (one always may be). Off (0)
// by default: behind a 3scale cluster a 5xx is usually the customer's API, the same everywhere.
struct OutlierConfig {
    std::uint32_t consecutive_errors = 0;  // 0: off
    Millis base_ejection{30000};
    Millis max_ejection{300000};
    unsigned max_ejection_percent = 50;
    bool operator==(const OutlierConfig&) const = default;
};

struct RetryConfig {
    // One retry on another cluster after a connect failure, or a reset before any response byte
    // on an idempotent request. 0 disables retries.
    std::uint32_t attempts = 1;
    // When set, an idempotent request with no first response byte after this long is retried
    // on another cluster (a frozen cluster costs one per-try timeout instead of the response
    // timeout). Off by default: it caps how slow a legitimate response may be.
    std::optional<Millis> per_try_timeout;
    // Passive outlier detection: after a connect failure (or a per-try timeout) a worker stops
    // picking that endpoint for this long, without waiting for the active checks to fail `fall`
    // times. 0 disables it.
    Millis eject_for{3000};
    RetryBudgetConfig budget;
};

// keepalived in front of tandem-lb on VMs or bare metal (floating VIPs, unicast VRRP): one VRRP
// instance per VIP, spread over the nodes, each tracking the local tandem-lb's /healthz.
struct KeepalivedNode {
    std::string name;
    std::string address;  // the node's own address (unicast VRRP source / peer)
    config::Source source;
};
struct KeepalivedConfig {
    bool present = false;
    std::string interface = "eth0";
    unsigned virtual_router_id_base = 51;  // VIP i uses base + i (1..255)
    std::vector<std::string> vips;         // expanded: "192.0.2.10/24", one per address
    std::vector<KeepalivedNode> nodes;
    Millis advert_interval{1000};
    Millis check_interval{1000};
    std::uint32_t fall = 2;
    std::uint32_t rise = 2;
    std::string tandem_lb_path = "/usr/local/bin/tandem-lb";  // the track script runs it
    std::string config_path = "/etc/tandem-lb/tandem-lb.yaml";
    config::Source source;
};

// TLS towards clients: a second listener that terminates HTTPS with one certificate chain.
struct HttpsConfig {
    bool enabled = false;
    HostPort listen{"0.0.0.0", 8443};
    std::string cert_file;             // PEM, the leaf first, then the intermediates
    std::string key_file;              // PEM private key of the leaf
    ProxyAcceptConfig proxy_protocol;  // read before the TLS handshake
    // The protocols offered by ALPN, the balancer's preference first: "h2", "http/1.1". A
    // client that offers none of them (or no ALPN at all) speaks HTTP/1.1.
    std::vector<std::string> alpn{"h2", "http/1.1"};
    bool operator==(const HttpsConfig&) const = default;
};

// HTTP/2 towards clients: h2 by ALPN on the https listener, h2c with prior knowledge on
// `listen` when `h2c` is set (HTTP/1.1 is still served there). Every stream is a request,
// balanced on its own.
struct Http2Config {
    bool h2c = false;
    std::uint32_t max_concurrent_streams = 100;  // per connection (SETTINGS)
    std::uint32_t max_header_list_size = 64 * 1024;
    // Request body bytes a stream may send ahead of what the cluster took; a connection may
    // send four times that.
    std::uint32_t initial_window = 256 * 1024;
    Millis idle_timeout{60000};  // no stream open this long: GOAWAY, and the connection closes
    // With streams open and nothing heard from the client for ping_interval, a PING; no answer
    // within ping_timeout ends the connection (a peer gone without a FIN holds no stream). 0:
    // off.
    Millis ping_interval{0};
    Millis ping_timeout{10000};
    bool operator==(const Http2Config&) const = default;
};

// Applying a changed file without a signal: Kubernetes updates a mounted ConfigMap or Secret in
// place (cert-manager rotates certificates that way).
struct ReloadConfig {
    // How often the configuration file and the files it names (certificates, keys, CA bundles)
    // are compared with what was loaded; a change reloads as SIGHUP does. 0: only on SIGHUP.
    Millis watch_interval{0};
};

// The access log: one line per request, and per request the balancer answered itself.
struct AccessLogConfig {
    enum class Format { kJson, kCommon, kCombined };
    bool enabled = false;
    std::string path;  // a file (appended to, reopened on SIGUSR1 and reload), or "stdout"
    Format format = Format::kJson;
    // Query parameters written as <redacted> (3scale's credentials travel in the query); the
    // same names, and Authorization, Cookie and Proxy-Authorization, redact a logged header.
    std::vector<std::string> redact_query{"user_key", "app_id", "app_key", "access_token"};
    std::vector<std::string> headers;  // request headers logged (JSON format): none unless listed
    unsigned sample_percent = 100;     // requests logged; errors (5xx, the balancer's own) always
    std::uint64_t buffer_bytes = 1024 * 1024;  // per worker; a line beyond it is dropped, counted
    bool operator==(const AccessLogConfig&) const = default;
};

// X-Request-Id: kept from a client the balancer trusts, generated otherwise; sent upstream,
// returned to the client, logged.
struct RequestIdConfig {
    bool enabled = true;
    std::string header = "X-Request-Id";
    bool trust_incoming = false;  // keep a well-formed one the client sent
    bool operator==(const RequestIdConfig&) const = default;
};

struct LbConfig {
    HostPort listen{"0.0.0.0", 8080};
    ProxyAcceptConfig proxy_protocol;  // on `listen`
    HttpsConfig https;
    HostPort admin{"127.0.0.1", 9901};
    // admin.token: what the runtime API's mutations need (Authorization: Bearer); without one
    // they are accepted only on a loopback admin listener.
    config::Secret admin_token;
    std::string admin_token_source;  // "env VARIABLE" or "file PATH" (for messages)
    unsigned threads = 0;            // 0: the number of cores
    std::string forwarded_proto = "http";
    Http2Config http2;
    std::vector<ClusterConfig> clusters;
    // First match wins; none: every request round robin over every cluster (one implicit
    // catch-all route).
    std::vector<RouteConfig> routes;
    HealthCheckConfig health_check;
    DnsConfig dns;
    TimeoutConfig timeouts;
    LimitConfig limits;
    SpliceConfig splice;
    PoolConfig pool;
    RetryConfig retry;
    ReloadConfig reload;
    KeepalivedConfig keepalived;
    AccessLogConfig access_log;
    RequestIdConfig request_id;
    OutlierConfig outlier;

    // What the clusters `route` reaches speak (the clusters of one route speak one protocol:
    // the loader checks it); with no routes, every cluster's.
    [[nodiscard]] ClusterProtocol protocol_of(std::optional<std::size_t> route) const {
        if (route && *route < routes.size() && !routes[*route].clusters.empty()) {
            return clusters[routes[*route].clusters.front()].protocol;
        }
        return clusters.empty() ? ClusterProtocol::kHttp1 : clusters.front().protocol;
    }
};

// "10.1.1.5-8/24" -> 10.1.1.5/24 .. 10.1.1.8/24; "42.42.42.42" -> itself (/32). nullopt when
// malformed (ranges only within the last octet of IPv4 addresses; IPv6 single addresses).
std::optional<std::vector<std::string>> expand_vips(const std::string& text);

// keepalived.conf for one node of `keepalived.nodes` (name), or an error message.
std::expected<std::string, std::string> render_keepalived(const LbConfig& config,
                                                          const std::string& node);

// Reads and validates the balancer's YAML file; every problem is reported with file:line.
std::expected<LbConfig, config::Diagnostics> load_lb_config(const std::string& path);
// The same from text (tests); `file` names it in diagnostics.
std::expected<LbConfig, config::Diagnostics> parse_lb_config(const std::string& text,
                                                             const std::string& file);

// The contents of the certificate, key and CA files `config` names (loading only checks that
// they are readable): what a TLS context makes of them, or which file is wrong and why.
std::expected<void, std::string> check_tls_files(const LbConfig& config);

// Whether the access log `config` names can be written (its file, or the directory it would be
// created in), without creating it: --check-config and a reload ask before anything changes.
std::expected<void, std::string> check_access_log(const LbConfig& config);

// "host:port", "[v6]:port"; nullopt when malformed.
std::optional<HostPort> parse_host_port(const std::string& text);

}  // namespace lb
