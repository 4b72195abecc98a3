// tandem-lb's YAML file -> a validated LbConfig. yaml-cpp stays inside this file; its exceptions
// never leave it. Every problem is collected with file:line, field path and what to do.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/asio/ip/address.hpp>
#include <yaml-cpp/yaml.h>

#include "lb/config.hpp"

namespace lb {

using config::Diagnostic;
using config::Diagnostics;

std::string HostPort::to_string() const {
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + std::to_string(port);
    }
    return host + ":" + std::to_string(port);
}

namespace {

std::optional<std::uint64_t> parse_unsigned(std::string_view s) {
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
        return std::nullopt;
    }
    return value;
}

// "16KiB", "1MiB", "512", "1k" -> bytes.
std::optional<std::uint64_t> parse_size(const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    const auto number = parse_unsigned(std::string_view(text).substr(0, digits));
    if (!number) {
        return std::nullopt;
    }
    std::string unit = text.substr(digits);
    std::transform(unit.begin(), unit.end(), unit.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "b") {
        factor = 1;
    } else if (unit == "k" || unit == "kb" || unit == "kib") {
        factor = 1024;
    } else if (unit == "m" || unit == "mb" || unit == "mib") {
        factor = 1024 * 1024;
    } else if (unit == "g" || unit == "gb" || unit == "gib") {
        factor = 1024ULL * 1024 * 1024;
    } else {
        return std::nullopt;
    }
    if (*number > UINT64_MAX / factor) {
        return std::nullopt;
    }
    return *number * factor;
}

class Reader {
public:
    Reader(std::string file, Diagnostics& out) : file_(std::move(file)), out_(out) {}

    config::Source at(const YAML::Node& node) const {
        return {file_, node.IsDefined() ? node.Mark().line + 1 : 0};
    }
    void error(const YAML::Node& node, const std::string& path, const std::string& message) {
        out_.push_back({Diagnostic::Severity::kError, at(node), path, message});
    }

    static std::string join(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    // Checks that `node` is a mapping whose keys are all in `allowed` and unique.
    bool mapping(const YAML::Node& node,
                 const std::string& path,
                 std::initializer_list<const char*> allowed) {
        if (!node.IsMap()) {
            error(node, path.empty() ? "(top level)" : path, "must be a mapping");
            return false;
        }
        std::set<std::string> seen;
        for (auto it = node.begin(); it != node.end(); ++it) {
            const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
            if (!seen.insert(key).second) {
                error(it->first, join(path, key), "duplicate key");
            }
            if (std::none_of(allowed.begin(), allowed.end(),
                             [&](const char* a) { return key == a; })) {
                std::string known;
                for (const char* a : allowed) {
                    known += (known.empty() ? "" : ", ") + std::string(a);
                }
                error(it->first, join(path, key), "unknown field (known: " + known + ")");
            }
        }
        return true;
    }

    // The scalar under `key`, if present; reports a non-scalar.
    std::optional<std::pair<std::string, YAML::Node>> scalar(const YAML::Node& map,
                                                             const std::string& key,
                                                             const std::string& path) {
        const YAML::Node node = map[key];
        if (!node.IsDefined() || node.IsNull()) {
            return std::nullopt;
        }
        if (!node.IsScalar()) {
            error(node, join(path, key), "must be a single value");
            return std::nullopt;
        }
        return std::make_pair(node.Scalar(), node);
    }

    void text(const YAML::Node& map,
              const std::string& key,
              const std::string& path,
              std::string& out) {
        if (auto s = scalar(map, key, path)) {
            if (s->first.empty()) {
                error(s->second, join(path, key), "must not be empty");
            } else {
                out = s->first;
            }
        }
    }

    template <class T>
    void number(const YAML::Node& map,
                const std::string& key,
                const std::string& path,
                std::uint64_t low,
                std::uint64_t high,
                T& out) {
        if (auto s = scalar(map, key, path)) {
            const auto v = parse_unsigned(s->first);
            if (!v || *v < low || *v > high) {
                error(s->second, join(path, key),
                      "must be an integer from " + std::to_string(low) + " to " +
                          std::to_string(high) + " (got '" + s->first + "')");
            } else {
                out = static_cast<T>(*v);
            }
        }
    }

    void flag(const YAML::Node& map, const std::string& key, const std::string& path, bool& out) {
        if (auto s = scalar(map, key, path)) {
            if (s->first == "true") {
                out = true;
            } else if (s->first == "false") {
                out = false;
            } else {
                error(s->second, join(path, key), "must be true or false (got '" + s->first + "')");
            }
        }
    }

    void duration(const YAML::Node& map,
                  const std::string& key,
                  const std::string& path,
                  Millis& out,
                  Millis low = Millis(1)) {
        if (auto s = scalar(map, key, path)) {
            const auto d = parse_duration(s->first);
            if (!d || *d < low || *d > std::chrono::hours(24)) {
                error(s->second, join(path, key),
                      "must be a duration such as 500ms, 2s or 1m, at least " +
                          std::to_string(low.count()) + "ms and at most 24h (got '" + s->first +
                          "')");
            } else {
                out = *d;
            }
        }
    }

    template <class T>
    void size(const YAML::Node& map,
              const std::string& key,
              const std::string& path,
              std::uint64_t low,
              std::uint64_t high,
              T& out) {
        if (auto s = scalar(map, key, path)) {
            const auto v = parse_size(s->first);
            if (!v || *v < low || *v > high) {
                error(s->second, join(path, key),
                      "must be a size such as 16KiB or 1MiB, from " + std::to_string(low) + " to " +
                          std::to_string(high) + " bytes (got '" + s->first + "')");
            } else {
                out = static_cast<T>(*v);
            }
        }
    }

    void address(const YAML::Node& map,
                 const std::string& key,
                 const std::string& path,
                 bool must_be_ip,
                 HostPort& out) {
        if (auto s = scalar(map, key, path)) {
            auto hp = parse_host_port(s->first);
            boost::system::error_code ec;
            if (hp && must_be_ip) {
                (void)boost::asio::ip::make_address(hp->host, ec);
            }
            if (!hp || ec) {
                error(s->second, join(path, key),
                      std::string("must be ") + (must_be_ip ? "IP:port" : "host:port") + ", e.g. " +
                          (must_be_ip ? "127.0.0.1:9901 or [::1]:9901"
                                      : "router.east.example.com:80 or 10.0.2.15:80") +
                          " (got '" + s->first + "')");
            } else {
                out = *hp;
            }
        }
    }

private:
    std::string file_;
    Diagnostics& out_;
};

bool valid_cluster_name(const std::string& name) {
    return !name.empty() && name.size() <= 63 &&
           std::all_of(name.begin(), name.end(), [](unsigned char c) {
               return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.';
           });
}

// A file named at `key`, relative to the configuration file's directory; an error with its line
// when it cannot be read. `what` says what the file should be.
std::optional<std::string> readable_file(Reader& r,
                                         const YAML::Node& map,
                                         const std::string& key,
                                         const std::string& path,
                                         const std::filesystem::path& base_dir,
                                         const std::string& what) {
    auto s = r.scalar(map, key, path);
    if (!s) {
        return std::nullopt;
    }
    std::filesystem::path file(s->first);
    if (file.is_relative()) {
        file = base_dir / file;
    }
    std::ifstream probe(file);
    if (s->first.empty() || !probe) {
        r.error(s->second, path + "." + key,
                "cannot read '" + file.string() + "' (" + what +
                    "; relative paths are from the configuration file)");
        return std::nullopt;
    }
    return file.string();
}

// https: {listen, certFile, keyFile}: all three required when the section is there.
void read_https(Reader& r,
                const YAML::Node& root,
                const std::filesystem::path& base_dir,
                HttpsConfig& out) {
    const YAML::Node node = root["https"];
    if (!node.IsDefined() || node.IsNull()) {
        return;
    }
    if (!r.mapping(node, "https", {"listen", "certFile", "keyFile"})) {
        return;
    }
    out.enabled = true;
    for (const char* key : {"listen", "certFile", "keyFile"}) {
        if (!node[key].IsDefined() || node[key].IsNull()) {
            r.error(node, std::string("https.") + key,
                    "is required with https (listen: IP:port, certFile and keyFile: PEM files)");
        }
    }
    r.address(node, "listen", "https", true, out.listen);
    if (auto f = readable_file(r, node, "certFile", "https", base_dir,
                               "the PEM certificate chain clients get, the leaf first")) {
        out.cert_file = *f;
    }
    if (auto f = readable_file(r, node, "keyFile", "https", base_dir,
                               "the PEM private key of that certificate")) {
        out.key_file = *f;
    }
}

// `tls: true`, or a mapping {enabled, serverName, caFile, verify, certFile, keyFile} (present means
// enabled unless it says enabled: false).
void read_tls(Reader& r,
              const YAML::Node& cluster,
              const std::string& cluster_path,
              const std::filesystem::path& base_dir,
              TlsConfig& out) {
    const YAML::Node node = cluster["tls"];
    const std::string path = cluster_path + ".tls";
    if (!node.IsDefined() || node.IsNull()) {
        return;
    }
    if (node.IsScalar()) {
        r.flag(cluster, "tls", cluster_path, out.enabled);
        return;
    }
    if (!r.mapping(node, path,
                   {"enabled", "serverName", "caFile", "verify", "certFile", "keyFile"})) {
        return;
    }
    out.enabled = true;
    r.flag(node, "enabled", path, out.enabled);
    r.flag(node, "verify", path, out.verify);
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
        if (node[key].IsDefined() && !node[other].IsDefined()) {
            r.error(node[key], path + "." + key,
                    std::string("needs ") + other + " too (a client certificate and its key)");
        }
    }
    if (!out.verify && out.ca_file) {
        r.error(node["caFile"], path + ".caFile", "is not used when verify is false: remove one");
    }
}

void read_clusters(Reader& r,
                   const YAML::Node& root,
                   LbConfig& out,
                   const std::filesystem::path& base_dir) {
    const YAML::Node list = root["clusters"];
    if (!list.IsDefined() || list.IsNull()) {
        r.error(root, "clusters", "is required: list the clusters to balance across");
        return;
    }
    if (!list.IsSequence() || list.size() == 0) {
        r.error(list, "clusters", "must be a non-empty list of {name, address}");
        return;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const YAML::Node node = list[i];
        const std::string path = "clusters[" + std::to_string(i) + "]";
        if (!r.mapping(node, path, {"name", "address", "weight", "backup", "tls"})) {
            continue;
        }
        ClusterConfig c;
        c.source = r.at(node);
        r.text(node, "name", path, c.name);
        if (!node["name"].IsDefined()) {
            r.error(node, path + ".name", "is required");
        } else if (!c.name.empty() && !valid_cluster_name(c.name)) {
            r.error(node["name"], path + ".name",
                    "must be 1-63 letters, digits, '-', '_' or '.' (it is a metrics label)");
        } else if (!c.name.empty() && !names.insert(c.name).second) {
            r.error(node["name"], path + ".name", "duplicate cluster name '" + c.name + "'");
        }
        if (!node["address"].IsDefined()) {
            r.error(node, path + ".address", "is required (host:port)");
        }
        r.address(node, "address", path, false, c.address);
        r.number(node, "weight", path, 1, 1000, c.weight);
        r.flag(node, "backup", path, c.backup);
        read_tls(r, node, path, base_dir, c.tls);
        out.clusters.push_back(std::move(c));
    }
    if (!out.clusters.empty() && std::all_of(out.clusters.begin(), out.clusters.end(),
                                             [](const ClusterConfig& c) { return c.backup; })) {
        r.error(list, "clusters", "every cluster is a backup: at least one must be a primary");
    }
}

void read_health(Reader& r, const YAML::Node& root, HealthCheckConfig& hc) {
    const YAML::Node node = root["healthCheck"];
    const std::string path = "healthCheck";
    if (!node.IsDefined() || node.IsNull() ||
        !r.mapping(node, path,
                   {"enabled", "method", "path", "host", "expectStatus", "interval", "downInterval",
                    "timeout", "rise", "fall", "jitter"})) {
        return;
    }
    r.flag(node, "enabled", path, hc.enabled);
    r.text(node, "method", path, hc.method);
    if (hc.method != "GET" && hc.method != "HEAD" && hc.method != "OPTIONS") {
        r.error(node["method"], path + ".method",
                "must be GET, HEAD or OPTIONS (a check must not change anything)");
    }
    r.text(node, "path", path, hc.path);
    if (hc.path.empty() || hc.path.front() != '/' ||
        std::any_of(hc.path.begin(), hc.path.end(),
                    [](unsigned char c) { return c <= ' ' || c == 0x7f; })) {
        r.error(node["path"], path + ".path", "must start with '/' and contain no spaces");
    }
    if (auto s = r.scalar(node, "host", path)) {
        hc.host = s->first;
    }
    if (const YAML::Node expect = node["expectStatus"]; expect.IsDefined() && !expect.IsNull()) {
        std::vector<YAML::Node> items;
        if (expect.IsSequence()) {
            for (const auto& item : expect) {
                items.push_back(item);
            }
        } else {
            items.push_back(expect);
        }
        hc.expect.clear();
        for (const auto& item : items) {
            const std::string s = item.IsScalar() ? item.Scalar() : "";
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
    r.duration(node, "interval", path, hc.interval, Millis(10));
    Millis down{0};
    r.duration(node, "downInterval", path, down, Millis(10));
    if (down.count() > 0) {
        hc.down_interval = down;
    }
    r.duration(node, "timeout", path, hc.timeout, Millis(1));
    r.number(node, "rise", path, 1, 100, hc.rise);
    r.number(node, "fall", path, 1, 100, hc.fall);
    if (auto s = r.scalar(node, "jitter", path)) {
        std::string v = s->first;
        if (!v.empty() && v.back() == '%') {
            v.pop_back();
        }
        const auto pct = parse_unsigned(v);
        if (!pct || *pct > 50) {
            r.error(s->second, path + ".jitter",
                    "must be a percentage from 0% to 50% (got '" + s->first + "')");
        } else {
            hc.jitter_percent = static_cast<unsigned>(*pct);
        }
    }
    if (hc.timeout > hc.interval) {
        r.error(node["timeout"].IsDefined() ? node["timeout"] : node, path + ".timeout",
                "must not exceed interval (" + std::to_string(hc.interval.count()) +
                    "ms): a check would still run when the next one starts");
    }
}

void read_dns(Reader& r, const YAML::Node& root, DnsConfig& dns) {
    const YAML::Node node = root["dns"];
    const std::string path = "dns";
    if (!node.IsDefined() || node.IsNull() ||
        !r.mapping(node, path, {"servers", "minTtl", "maxTtl", "retry", "timeout"})) {
        return;
    }
    if (const YAML::Node servers = node["servers"]; servers.IsDefined() && !servers.IsNull()) {
        if (!servers.IsSequence()) {
            r.error(servers, path + ".servers", "must be a list of IP:port");
        } else {
            for (std::size_t i = 0; i < servers.size(); ++i) {
                const std::string p = path + ".servers[" + std::to_string(i) + "]";
                const std::string s = servers[i].IsScalar() ? servers[i].Scalar() : "";
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
    r.duration(node, "minTtl", path, dns.min_ttl, Millis(100));
    r.duration(node, "maxTtl", path, dns.max_ttl, Millis(100));
    r.duration(node, "retry", path, dns.retry, Millis(100));
    r.duration(node, "timeout", path, dns.timeout, Millis(100));
    if (dns.min_ttl > dns.max_ttl) {
        r.error(node, path + ".minTtl", "must not exceed maxTtl");
    }
}

void read_rest(Reader& r, const YAML::Node& root, LbConfig& out) {
    if (const YAML::Node t = root["timeouts"];
        t.IsDefined() && !t.IsNull() &&
        r.mapping(t, "timeouts",
                  {"clientHeader", "clientIdle", "clientBody", "upstreamConnect",
                   "upstreamResponse", "drain", "tunnelIdle"})) {
        auto& to = out.timeouts;
        r.duration(t, "clientHeader", "timeouts", to.client_header);
        r.duration(t, "clientIdle", "timeouts", to.client_idle);
        r.duration(t, "clientBody", "timeouts", to.client_body);
        r.duration(t, "upstreamConnect", "timeouts", to.upstream_connect);
        r.duration(t, "upstreamResponse", "timeouts", to.upstream_response);
        r.duration(t, "drain", "timeouts", to.drain, Millis(0));
        r.duration(t, "tunnelIdle", "timeouts", to.tunnel_idle);
    }
    if (const YAML::Node l = root["limits"];
        l.IsDefined() && !l.IsNull() &&
        r.mapping(l, "limits", {"maxHeaderBytes", "maxBodyBytes", "maxConnections"})) {
        r.size(l, "maxHeaderBytes", "limits", 1024, 1024 * 1024, out.limits.max_header_bytes);
        r.size(l, "maxBodyBytes", "limits", 0, 1ULL << 40, out.limits.max_body_bytes);
        r.number(l, "maxConnections", "limits", 1, 10000000, out.limits.max_connections);
    }
    if (const YAML::Node p = root["pool"];
        p.IsDefined() && !p.IsNull() &&
        r.mapping(p, "pool", {"maxIdlePerEndpoint", "idleTimeout"})) {
        r.number(p, "maxIdlePerEndpoint", "pool", 0, 100000, out.pool.max_idle_per_endpoint);
        r.duration(p, "idleTimeout", "pool", out.pool.idle_timeout);
    }
    if (const YAML::Node p = root["reload"];
        p.IsDefined() && !p.IsNull() && r.mapping(p, "reload", {"watchInterval"})) {
        Millis every{0};
        r.duration(p, "watchInterval", "reload", every, Millis(0));
        if (every.count() > 0 && every < Millis(100)) {
            r.error(r.scalar(p, "watchInterval", "reload")->second, "reload.watchInterval",
                    "must be 0 (off: only SIGHUP reloads) or at least 100ms");
        } else {
            out.reload.watch_interval = every;
        }
    }
    if (const YAML::Node p = root["retry"];
        p.IsDefined() && !p.IsNull() &&
        r.mapping(p, "retry", {"attempts", "perTryTimeout", "ejectFor"})) {
        r.number(p, "attempts", "retry", 0, 3, out.retry.attempts);
        Millis per_try{0};
        r.duration(p, "perTryTimeout", "retry", per_try, Millis(0));
        if (per_try.count() > 0) {
            out.retry.per_try_timeout = per_try;
        }
        r.duration(p, "ejectFor", "retry", out.retry.eject_for, Millis(0));
    }
}

void read_keepalived(Reader& r, const YAML::Node& root, KeepalivedConfig& k) {
    const YAML::Node node = root["keepalived"];
    const std::string path = "keepalived";
    if (!node.IsDefined() || node.IsNull() ||
        !r.mapping(node, path,
                   {"interface", "virtualRouterIdBase", "vips", "nodes", "advertInterval",
                    "checkInterval", "fall", "rise", "tandemLbPath", "configPath"})) {
        return;
    }
    k.present = true;
    k.source = r.at(node);
    r.text(node, "interface", path, k.interface);
    r.number(node, "virtualRouterIdBase", path, 1, 255, k.virtual_router_id_base);
    r.duration(node, "advertInterval", path, k.advert_interval, Millis(100));
    r.duration(node, "checkInterval", path, k.check_interval, Millis(100));
    r.number(node, "fall", path, 1, 100, k.fall);
    r.number(node, "rise", path, 1, 100, k.rise);
    r.text(node, "tandemLbPath", path, k.tandem_lb_path);
    r.text(node, "configPath", path, k.config_path);
    for (const auto* p : {&k.tandem_lb_path, &k.config_path}) {
        if (p->empty() || p->front() != '/' || p->find_first_of(" \t\"'\\;") != std::string::npos) {
            r.error(node, path,
                    "tandemLbPath and configPath must be absolute paths without "
                    "spaces or quotes (keepalived runs the track script by them)");
        }
    }
    const YAML::Node vips = node["vips"];
    if (!vips.IsSequence() || vips.size() == 0) {
        r.error(vips.IsDefined() ? vips : node, path + ".vips",
                "is required: a list of addresses or ranges, e.g. [192.0.2.10-12/24, "
                "198.51.100.7/24]");
    } else {
        for (std::size_t i = 0; i < vips.size(); ++i) {
            const std::string text = vips[i].IsScalar() ? vips[i].Scalar() : "";
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
    const YAML::Node nodes = node["nodes"];
    if (!nodes.IsSequence() || nodes.size() < 2) {
        r.error(nodes.IsDefined() ? nodes : node, path + ".nodes",
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
        r.text(nodes[i], "name", p, n.name);
        r.text(nodes[i], "address", p, n.address);
        boost::system::error_code ec;
        (void)boost::asio::ip::make_address(n.address, ec);
        if (n.name.empty() || n.address.empty() || ec) {
            r.error(nodes[i], p, "needs a name and an IP address");
            continue;
        }
        if (!names.insert(n.name).second) {
            r.error(nodes[i]["name"], p + ".name", "duplicate node name '" + n.name + "'");
        }
        k.nodes.push_back(n);
    }
}
}  // namespace

std::optional<Millis> parse_duration(const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    const auto n = parse_unsigned(std::string_view(text).substr(0, digits));
    if (!n || *n > 100000000) {
        return std::nullopt;
    }
    const std::string unit = text.substr(digits);
    const auto v = static_cast<std::int64_t>(*n);
    if (unit.empty() || unit == "ms") {
        return Millis(v);
    }
    if (unit == "s") {
        return Millis(v * 1000);
    }
    if (unit == "m") {
        return Millis(v * 60 * 1000);
    }
    if (unit == "h") {
        return Millis(v * 3600 * 1000);
    }
    return std::nullopt;
}

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

std::expected<LbConfig, Diagnostics> parse_lb_config(const std::string& text,
                                                     const std::string& file) {
    Diagnostics diags;
    Reader r(file, diags);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        diags.push_back({Diagnostic::Severity::kError,
                         {file, e.mark.line + 1},
                         "",
                         "not valid YAML: " + e.msg});
        return std::unexpected(diags);
    }
    LbConfig out;
    try {
        if (!r.mapping(
                root, "",
                {"listen", "https", "admin", "threads", "forwardedProto", "clusters", "healthCheck",
                 "dns", "timeouts", "limits", "pool", "retry", "reload", "keepalived"})) {
            return std::unexpected(diags);
        }
        r.address(root, "listen", "", true, out.listen);
        r.address(root, "admin", "", true, out.admin);
        r.number(root, "threads", "", 0, 256, out.threads);
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
            return a.port != 0 && a.port == b.port &&
                   (a.host == b.host || any(a.host) || any(b.host));
        };
        if (out.https.enabled && clash(out.https.listen, out.listen)) {
            r.error(root["https"]["listen"], "https.listen",
                    "must differ from listen (" + out.listen.to_string() + ")");
        }
        if (clash(out.admin, out.listen)) {
            r.error(root["admin"], "admin",
                    "must differ from listen (" + out.listen.to_string() +
                        "): the admin listener needs a port of its own");
        } else if (out.https.enabled && clash(out.admin, out.https.listen)) {
            r.error(root["admin"], "admin",
                    "must differ from https.listen (" + out.https.listen.to_string() +
                        "): the admin listener needs a port of its own");
        }
        read_clusters(r, root, out, std::filesystem::path(file).parent_path());
        read_health(r, root, out.health_check);
        read_dns(r, root, out.dns);
        read_rest(r, root, out);
        read_keepalived(r, root, out.keepalived);
    } catch (const YAML::Exception& e) {
        diags.push_back({Diagnostic::Severity::kError, {file, e.mark.line + 1}, "", e.msg});
    }
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
