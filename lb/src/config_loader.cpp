// tandem-lb's YAML file -> a validated LbConfig, read with the project's one YAML reader
// (config/yaml_reader.hpp). Every problem is collected with file:line, field path and what to do.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "config/secret.hpp"
#include "config/yaml_reader.hpp"
#include "config_edge.hpp"
#include "config_fields.hpp"
#include "config_routes.hpp"
#include "lb/config.hpp"

namespace lb {

using config::Diagnostic;
using config::Diagnostics;
using config::parse_unsigned;
using config::YamlNode;
using config::YamlReader;

std::string HostPort::to_string() const {
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + std::to_string(port);
    }
    return host + ":" + std::to_string(port);
}

namespace {
bool valid_cluster_name(const std::string& name) {
    return !name.empty() && name.size() <= 63 &&
           std::all_of(name.begin(), name.end(), [](unsigned char c) {
               return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.';
           });
}

// https: {listen, certFile, keyFile}: all three required when the section is there.
void read_https(YamlReader& r,
                const YamlNode& root,
                const std::filesystem::path& base_dir,
                HttpsConfig& out) {
    const YamlNode node = r.child(root, "https");
    if (!node.defined() || node.null()) {
        return;
    }
    if (!r.mapping(node, "https", {"listen", "certFile", "keyFile", "proxyProtocol", "alpn"})) {
        return;
    }
    out.enabled = true;
    for (const char* key : {"listen", "certFile", "keyFile"}) {
        if (!r.child(node, key).defined() || r.child(node, key).null()) {
            r.error(node, std::string("https.") + key,
                    "is required with https (listen: IP:port, certFile and keyFile: PEM files)");
        }
    }
    address(r, node, "listen", "https", true, out.listen);
    if (auto f = readable_file(r, node, "certFile", "https", base_dir,
                               "the PEM certificate chain clients get, the leaf first")) {
        out.cert_file = *f;
    }
    if (auto f = readable_file(r, node, "keyFile", "https", base_dir,
                               "the PEM private key of that certificate")) {
        out.key_file = *f;
    }
    read_proxy_accept(r, node, "https", out.proxy_protocol);
    read_alpn(r, node, out.alpn);
}

// `tls: true`, or a mapping {enabled, serverName, caFile, verify, certFile, keyFile} (present means
// enabled unless it says enabled: false).
void read_tls(YamlReader& r,
              const YamlNode& cluster,
              const std::string& cluster_path,
              const std::filesystem::path& base_dir,
              TlsConfig& out) {
    const YamlNode node = r.child(cluster, "tls");
    const std::string path = cluster_path + ".tls";
    if (!node.defined() || node.null()) {
        return;
    }
    if (node.is_scalar()) {
        flag(r, cluster, "tls", cluster_path, out.enabled);
        return;
    }
    if (!r.mapping(node, path,
                   {"enabled", "serverName", "caFile", "verify", "certFile", "keyFile"})) {
        return;
    }
    out.enabled = true;
    flag(r, node, "enabled", path, out.enabled);
    flag(r, node, "verify", path, out.verify);
    if (auto s = r.scalar(node, "serverName", path)) {
        boost::system::error_code ec;
        (void)boost::asio::ip::make_address(s->first, ec);
        const bool hostname =
            !s->first.empty() && s->first.size() <= 253 &&
            std::all_of(s->first.begin(), s->first.end(), [](unsigned char ch) {
                return std::isalnum(ch) != 0 || ch == '-' || ch == '.' || ch == '*';
            });
        if (!hostname && ec) {
            r.error(s->second, path + ".serverName",
                    "must be a DNS name or an IP address (got '" + s->first + "')");
        } else {
            out.server_name = s->first;
        }
    }
    out.ca_file = readable_file(r, node, "caFile", path, base_dir,
                                "a PEM file of the CA certificates that sign the cluster's "
                                "certificate");
    out.cert_file = readable_file(r, node, "certFile", path, base_dir,
                                  "the PEM client certificate chain presented to the cluster");
    out.key_file = readable_file(r, node, "keyFile", path, base_dir,
                                 "the PEM private key of that client certificate");
    for (const char* key : {"certFile", "keyFile"}) {
        const char* other = std::string_view(key) == "certFile" ? "keyFile" : "certFile";
        if (r.child(node, key).defined() && !r.child(node, other).defined()) {
            r.error(r.child(node, key), path + "." + key,
                    std::string("needs ") + other + " too (a client certificate and its key)");
        }
    }
    if (!out.verify && out.ca_file) {
        r.error(r.child(node, "caFile"), path + ".caFile",
                "is not used when verify is false: remove one");
    }
}

void read_clusters(YamlReader& r,
                   const YamlNode& root,
                   LbConfig& out,
                   const std::filesystem::path& base_dir) {
    const YamlNode list = r.child(root, "clusters");
    if (!list.defined() || list.null()) {
        r.error(root, "clusters", "is required: list the clusters to balance across");
        return;
    }
    if (!list.is_sequence() || list.size() == 0) {
        r.error(list, "clusters", "must be a non-empty list of {name, address}");
        return;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const YamlNode node = list[i];
        const std::string path = "clusters[" + std::to_string(i) + "]";
        if (!r.mapping(
                node, path,
                {"name", "address", "weight", "backup", "tls", "proxyProtocol", "protocol"})) {
            continue;
        }
        ClusterConfig c;
        c.source = r.at(node);
        text(r, node, "name", path, c.name);
        if (!r.child(node, "name").defined()) {
            r.error(node, path + ".name", "is required");
        } else if (!c.name.empty() && !valid_cluster_name(c.name)) {
            r.error(r.child(node, "name"), path + ".name",
                    "must be 1-63 letters, digits, '-', '_' or '.' (it is a metrics label)");
        } else if (!c.name.empty() && !names.insert(c.name).second) {
            r.error(r.child(node, "name"), path + ".name",
                    "duplicate cluster name '" + c.name + "'");
        }
        if (!r.child(node, "address").defined()) {
            r.error(node, path + ".address", "is required (host:port)");
        }
        address(r, node, "address", path, false, c.address);
        number(r, node, "weight", path, 1, 1000, c.weight);
        flag(r, node, "backup", path, c.backup);
        read_tls(r, node, path, base_dir, c.tls);
        read_proxy_send(r, node, path, c.proxy_protocol);
        if (auto p = r.scalar(node, "protocol", path)) {
            if (p->first == "h2") {
                c.protocol = ClusterProtocol::kH2;
            } else if (p->first != "http1") {
                r.error(
                    p->second, path + ".protocol",
                    "must be http1 (the default) or h2 (ALPN h2 over TLS, h2c otherwise; got '" +
                        p->first + "')");
            }
        }
        out.clusters.push_back(std::move(c));
    }
    if (!out.clusters.empty() && std::all_of(out.clusters.begin(), out.clusters.end(),
                                             [](const ClusterConfig& c) { return c.backup; })) {
        r.error(list, "clusters", "every cluster is a backup: at least one must be a primary");
    }
}

void read_health(YamlReader& r, const YamlNode& root, HealthCheckConfig& hc) {
    const YamlNode node = r.child(root, "healthCheck");
    const std::string path = "healthCheck";
    if (!node.defined() || node.null() ||
        !r.mapping(node, path,
                   {"enabled", "method", "path", "host", "expectStatus", "interval", "downInterval",
                    "timeout", "rise", "fall", "jitter"})) {
        return;
    }
    flag(r, node, "enabled", path, hc.enabled);
    text(r, node, "method", path, hc.method);
    if (hc.method != "GET" && hc.method != "HEAD" && hc.method != "OPTIONS") {
        r.error(r.child(node, "method"), path + ".method",
                "must be GET, HEAD or OPTIONS (a check must not change anything)");
    }
    text(r, node, "path", path, hc.path);
    if (hc.path.empty() || hc.path.front() != '/' ||
        std::any_of(hc.path.begin(), hc.path.end(),
                    [](unsigned char c) { return c <= ' ' || c == 0x7f; })) {
        r.error(r.child(node, "path"), path + ".path", "must start with '/' and contain no spaces");
    }
    if (auto s = r.scalar(node, "host", path)) {
        hc.host = s->first;
    }
    if (const YamlNode expect = r.child(node, "expectStatus"); expect.defined() && !expect.null()) {
        const std::vector<YamlNode> items =
            expect.is_sequence() ? expect.items() : std::vector<YamlNode>{expect};
        hc.expect.clear();
        for (const auto& item : items) {
            const std::string s = item.is_scalar() ? item.scalar() : "";
            const auto dash = s.find('-');
            const auto low = parse_unsigned(s.substr(0, dash));
            const auto high = dash == std::string::npos ? low : parse_unsigned(s.substr(dash + 1));
            if (!low || !high || *low < 100 || *high > 599 || *low > *high) {
                r.error(item, path + ".expectStatus",
                        "must be statuses or ranges such as 200, 204 or 200-399 (got '" + s + "')");
                continue;
            }
            hc.expect.push_back({static_cast<unsigned>(*low), static_cast<unsigned>(*high)});
        }
    }
    duration(r, node, "interval", path, hc.interval, Millis(10));
    Millis down{0};
    duration(r, node, "downInterval", path, down, Millis(10));
    if (down.count() > 0) {
        hc.down_interval = down;
    }
    duration(r, node, "timeout", path, hc.timeout, Millis(1));
    number(r, node, "rise", path, 1, 100, hc.rise);
    number(r, node, "fall", path, 1, 100, hc.fall);
    percent(r, node, "jitter", path, 0, 50, hc.jitter_percent);
    if (hc.timeout > hc.interval) {
        r.error(r.child(node, "timeout").defined() ? r.child(node, "timeout") : node,
                path + ".timeout",
                "must not exceed interval (" + std::to_string(hc.interval.count()) +
                    "ms): a check would still run when the next one starts");
    }
}

void read_dns(YamlReader& r, const YamlNode& root, DnsConfig& dns) {
    const YamlNode node = r.child(root, "dns");
    const std::string path = "dns";
    if (!node.defined() || node.null() ||
        !r.mapping(node, path, {"servers", "minTtl", "maxTtl", "retry", "timeout"})) {
        return;
    }
    if (const YamlNode servers = r.child(node, "servers"); servers.defined() && !servers.null()) {
        if (!servers.is_sequence()) {
            r.error(servers, path + ".servers", "must be a list of IP:port");
        } else {
            for (std::size_t i = 0; i < servers.size(); ++i) {
                const std::string p = path + ".servers[" + std::to_string(i) + "]";
                const std::string s = servers[i].is_scalar() ? servers[i].scalar() : "";
                auto hp = parse_host_port(s);
                if (!hp) {  // a bare IP means port 53
                    hp = parse_host_port(s + ":53");
                }
                boost::system::error_code ec;
                if (hp) {
                    (void)boost::asio::ip::make_address(hp->host, ec);
                }
                if (!hp || ec) {
                    r.error(servers[i], p, "must be IP or IP:port (got '" + s + "')");
                } else {
                    dns.servers.push_back(*hp);
                }
            }
        }
    }
    duration(r, node, "minTtl", path, dns.min_ttl, Millis(100));
    duration(r, node, "maxTtl", path, dns.max_ttl, Millis(100));
    duration(r, node, "retry", path, dns.retry, Millis(100));
    duration(r, node, "timeout", path, dns.timeout, Millis(100));
    if (dns.min_ttl > dns.max_ttl) {
        r.error(node, path + ".minTtl", "must not exceed maxTtl");
    }
}

void read_rest(YamlReader& r, const YamlNode& root, LbConfig& out) {
    if (const YamlNode t = r.child(root, "timeouts");
        t.defined() && !t.null() &&
        r.mapping(t, "timeouts",
                  {"clientHeader", "clientIdle", "clientBody", "clientBodyGrace", "upstreamConnect",
                   "upstreamResponse", "drain", "tunnelIdle"})) {
        auto& to = out.timeouts;
        duration(r, t, "clientHeader", "timeouts", to.client_header);
        duration(r, t, "clientIdle", "timeouts", to.client_idle);
        duration(r, t, "clientBody", "timeouts", to.client_body);
        duration(r, t, "clientBodyGrace", "timeouts", to.client_body_grace, Millis(0));
        duration(r, t, "upstreamConnect", "timeouts", to.upstream_connect);
        duration(r, t, "upstreamResponse", "timeouts", to.upstream_response);
        duration(r, t, "drain", "timeouts", to.drain, Millis(0));
        duration(r, t, "tunnelIdle", "timeouts", to.tunnel_idle);
    }
    if (const YamlNode l = r.child(root, "limits");
        l.defined() && !l.null() &&
        r.mapping(l, "limits",
                  {"maxHeaderBytes", "maxBodyBytes", "minBodyRate", "maxConnections",
                   "clientUnsentBytes"})) {
        size(r, l, "maxHeaderBytes", "limits", 1024, 1024 * 1024, out.limits.max_header_bytes);
        size(r, l, "maxBodyBytes", "limits", 0, 1ULL << 40, out.limits.max_body_bytes);
        size(r, l, "minBodyRate", "limits", 0, 1ULL << 30, out.limits.min_body_rate);
        number(r, l, "maxConnections", "limits", 1, 10000000, out.limits.max_connections);
        size(r, l, "clientUnsentBytes", "limits", 0, 64ULL << 20, out.limits.client_unsent_bytes);
    }
    if (const YamlNode s = r.child(root, "splice");
        s.defined() && !s.null() && r.mapping(s, "splice", {"enabled", "minBytes", "maxPipes"})) {
        flag(r, s, "enabled", "splice", out.splice.enabled);
        size(r, s, "minBytes", "splice", 1, 1ULL << 40, out.splice.min_bytes);
        number(r, s, "maxPipes", "splice", 1, 1000000, out.splice.max_pipes);
    }
    if (const YamlNode p = r.child(root, "pool");
        p.defined() && !p.null() && r.mapping(p, "pool", {"maxIdlePerEndpoint", "idleTimeout"})) {
        number(r, p, "maxIdlePerEndpoint", "pool", 0, 100000, out.pool.max_idle_per_endpoint);
        duration(r, p, "idleTimeout", "pool", out.pool.idle_timeout);
    }
    if (const YamlNode p = r.child(root, "reload");
        p.defined() && !p.null() && r.mapping(p, "reload", {"watchInterval"})) {
        Millis every{0};
        duration(r, p, "watchInterval", "reload", every, Millis(0));
        if (every.count() > 0 && every < Millis(100)) {
            r.error(r.scalar(p, "watchInterval", "reload")->second, "reload.watchInterval",
                    "must be 0 (off: only SIGHUP reloads) or at least 100ms");
        } else {
            out.reload.watch_interval = every;
        }
    }
    if (const YamlNode p = r.child(root, "retry");
        p.defined() && !p.null() &&
        r.mapping(p, "retry", {"attempts", "perTryTimeout", "ejectFor", "budget"})) {
        number(r, p, "attempts", "retry", 0, 3, out.retry.attempts);
        Millis per_try{0};
        duration(r, p, "perTryTimeout", "retry", per_try, Millis(0));
        if (per_try.count() > 0) {
            out.retry.per_try_timeout = per_try;
        }
        duration(r, p, "ejectFor", "retry", out.retry.eject_for, Millis(0));
        read_retry_budget(r, p, out.retry.budget);
    }
}

void read_keepalived(YamlReader& r, const YamlNode& root, KeepalivedConfig& k) {
    const YamlNode node = r.child(root, "keepalived");
    const std::string path = "keepalived";
    if (!node.defined() || node.null() ||
        !r.mapping(node, path,
                   {"interface", "virtualRouterIdBase", "vips", "nodes", "advertInterval",
                    "checkInterval", "fall", "rise", "tandemLbPath", "configPath"})) {
        return;
    }
    k.present = true;
    k.source = r.at(node);
    text(r, node, "interface", path, k.interface);
    number(r, node, "virtualRouterIdBase", path, 1, 255, k.virtual_router_id_base);
    duration(r, node, "advertInterval", path, k.advert_interval, Millis(100));
    duration(r, node, "checkInterval", path, k.check_interval, Millis(100));
    number(r, node, "fall", path, 1, 100, k.fall);
    number(r, node, "rise", path, 1, 100, k.rise);
    text(r, node, "tandemLbPath", path, k.tandem_lb_path);
    text(r, node, "configPath", path, k.config_path);
    for (const auto* p : {&k.tandem_lb_path, &k.config_path}) {
        if (p->empty() || p->front() != '/' || p->find_first_of(" \t\"'\\;") != std::string::npos) {
            r.error(node, path,
                    "tandemLbPath and configPath must be absolute paths without "
                    "spaces or quotes (keepalived runs the track script by them)");
        }
    }
    const YamlNode vips = r.child(node, "vips");
    if (!vips.is_sequence() || vips.size() == 0) {
        r.error(vips.defined() ? vips : node, path + ".vips",
                "is required: a list of addresses or ranges, e.g. [192.0.2.10-12/24, "
                "198.51.100.7/24]");
    } else {
        for (std::size_t i = 0; i < vips.size(); ++i) {
            const std::string text = vips[i].is_scalar() ? vips[i].scalar() : "";
            auto expanded = expand_vips(text);
            if (!expanded) {
                r.error(vips[i], path + ".vips[" + std::to_string(i) + "]",
                        "must be an address or a range within the last octet, with an optional "
                        "prefix: 192.0.2.10/24, 192.0.2.10-12/24 (got '" +
                            text + "')");
                continue;
            }
            k.vips.insert(k.vips.end(), expanded->begin(), expanded->end());
        }
        if (k.virtual_router_id_base + k.vips.size() - 1 > 255) {
            r.error(vips, path + ".vips",
                    std::to_string(k.vips.size()) + " VIPs from virtualRouterIdBase " +
                        std::to_string(k.virtual_router_id_base) +
                        " exceed VRRP's 255 router ids: lower the base or use fewer VIPs");
        }
    }
    const YamlNode nodes = r.child(node, "nodes");
    if (!nodes.is_sequence() || nodes.size() < 2) {
        r.error(nodes.defined() ? nodes : node, path + ".nodes",
                "needs at least two nodes ({name, address}): VIPs float between them");
        return;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const std::string p = path + ".nodes[" + std::to_string(i) + "]";
        if (!r.mapping(nodes[i], p, {"name", "address"})) {
            continue;
        }
        KeepalivedNode n;
        n.source = r.at(nodes[i]);
        text(r, nodes[i], "name", p, n.name);
        text(r, nodes[i], "address", p, n.address);
        boost::system::error_code ec;
        (void)boost::asio::ip::make_address(n.address, ec);
        if (n.name.empty() || n.address.empty() || ec) {
            r.error(nodes[i], p, "needs a name and an IP address");
            continue;
        }
        if (!names.insert(n.name).second) {
            r.error(r.child(nodes[i], "name"), p + ".name", "duplicate node name '" + n.name + "'");
        }
        k.nodes.push_back(n);
    }
}
}  // namespace

std::optional<HostPort> parse_host_port(const std::string& text) {
    HostPort out;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::nullopt;
        }
        out.host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon) {
            return std::nullopt;  // no port, or an IPv6 address without brackets
        }
        out.host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    const auto p = parse_unsigned(port);
    if (out.host.empty() || !p || *p > 65535 ||
        std::any_of(out.host.begin(), out.host.end(),
                    [](unsigned char c) { return c <= ' ' || c == '/' || c == '@'; })) {
        return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(*p);
    return out;
}

// `admin: 127.0.0.1:9901`, or `admin: {listen: 127.0.0.1:9901, token: {env: VARIABLE}}`: the
// token the runtime API's mutations (PUT /clusters/NAME/state) must present.
void read_admin(YamlReader& r,
                const YamlNode& root,
                const std::filesystem::path& base,
                LbConfig& out) {
    const YamlNode node = r.child(root, "admin");
    if (!node.defined() || node.null() || !node.is_map()) {
        address(r, root, "admin", "", true, out.admin);
        return;
    }
    if (!r.mapping(node, "admin", {"listen", "token"})) {
        return;
    }
    address(r, node, "listen", "admin", true, out.admin);
    if (const YamlNode token = r.child(node, "token"); token.defined()) {
        if (auto t = config::read_secret_source(
                r, token, "admin.token", base,
                "the token that PUT /clusters/NAME/state must present as Authorization: Bearer")) {
            out.admin_token = std::move(t->value);
            out.admin_token_source = std::move(t->source);
        }
    }
}

std::expected<LbConfig, Diagnostics> parse_lb_config(const std::string& text,
                                                     const std::string& file) {
    Diagnostics diags;
    YamlReader r(file, diags);
    const auto docs = config::parse_yaml(text);
    if (!docs) {
        diags.push_back({Diagnostic::Severity::kError,
                         {file, docs.error().line},
                         "",
                         "not valid YAML: " + docs.error().message});
        return std::unexpected(diags);
    }
    const YamlNode root = docs->empty() ? YamlNode() : docs->front();
    LbConfig out;
    if (!r.mapping(root, "", {"listen",         "https",
                              "admin",          "threads",
                              "forwardedProto", "clusters",
                              "healthCheck",    "dns",
                              "timeouts",       "limits",
                              "pool",           "retry",
                              "reload",         "keepalived",
                              "accessLog",      "requestId",
                              "proxyProtocol",  "outlierDetection",
                              "routes",         "h2c",
                              "http2",          "splice"})) {
        return std::unexpected(diags);
    }
    address(r, root, "listen", "", true, out.listen);
    read_admin(r, root, std::filesystem::path(file).parent_path(), out);
    number(r, root, "threads", "", 0, 256, out.threads);
    if (auto s = r.scalar(root, "forwardedProto", "")) {
        if (s->first != "http" && s->first != "https") {
            r.error(s->second, "forwardedProto",
                    "must be http or https (how clients reach the balancer; set https when "
                    "TLS is terminated in front of it)");
        } else {
            out.forwarded_proto = s->first;
        }
    }
    read_https(r, root, std::filesystem::path(file).parent_path(), out.https);
    // Two listeners on one port: the same address, or one of them on every address.
    const auto clash = [](const HostPort& a, const HostPort& b) {
        const auto any = [](const std::string& h) { return h == "0.0.0.0" || h == "::"; };
        return a.port != 0 && a.port == b.port && (a.host == b.host || any(a.host) || any(b.host));
    };
    if (out.https.enabled && clash(out.https.listen, out.listen)) {
        r.error(r.child(r.child(root, "https"), "listen"), "https.listen",
                "must differ from listen (" + out.listen.to_string() + ")");
    }
    if (clash(out.admin, out.listen)) {
        r.error(r.child(root, "admin"), "admin",
                "must differ from listen (" + out.listen.to_string() +
                    "): the admin listener needs a port of its own");
    } else if (out.https.enabled && clash(out.admin, out.https.listen)) {
        r.error(r.child(root, "admin"), "admin",
                "must differ from https.listen (" + out.https.listen.to_string() +
                    "): the admin listener needs a port of its own");
    }
    read_clusters(r, root, out, std::filesystem::path(file).parent_path());
    read_routes(r, root, out);
    check_protocols(r, root, out);
    read_health(r, root, out.health_check);
    read_dns(r, root, out.dns);
    read_rest(r, root, out);
    read_keepalived(r, root, out.keepalived);
    read_edge(r, root, std::filesystem::path(file).parent_path(), out);
    if (config::has_errors(diags)) {
        return std::unexpected(diags);
    }
    return out;
}

std::expected<LbConfig, Diagnostics> load_lb_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::unexpected(Diagnostics{{Diagnostic::Severity::kError,
                                            {path, 0},
                                            "",
                                            "cannot read the file (does it exist?)"}});
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_lb_config(text.str(), path);
}

}  // namespace lb
