// tandem-lb's file, the sections of the balancer at the edge: accessLog, requestId, the PROXY
// protocol (listeners and clusters), outlierDetection and the retry budget.
#include "config_edge.hpp"

#include <algorithm>

#include "config/yaml_reader.hpp"
#include "config_fields.hpp"

namespace lb {

using config::YamlNode;
using config::YamlReader;

namespace {

// A field name (RFC 9110 token): what a header name must be.
bool valid_field_name(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 ||
               std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                   std::string_view::npos;
    });
}

void read_access_log(YamlReader& r,
                     const YamlNode& root,
                     const std::filesystem::path& base,
                     AccessLogConfig& log) {
    const YamlNode node = r.child(root, "accessLog");
    const std::string path = "accessLog";
    if (!node.defined() || node.null() ||
        !r.mapping(
            node, path,
            {"enabled", "path", "format", "redactQuery", "headers", "sample", "bufferSize"})) {
        return;
    }
    log.enabled = true;
    flag(r, node, "enabled", path, log.enabled);
    text(r, node, "path", path, log.path);
    if (log.path.empty() && log.enabled) {
        r.error(node, path + ".path",
                "is required: a file (appended to; reopened on SIGUSR1 for logrotate) or stdout");
    } else if (log.path != "stdout" && std::filesystem::path(log.path).is_relative()) {
        log.path = (base / log.path).string();
    }
    if (auto s = r.scalar(node, "format", path)) {
        if (s->first == "json") {
            log.format = AccessLogConfig::Format::kJson;
        } else if (s->first == "common") {
            log.format = AccessLogConfig::Format::kCommon;
        } else if (s->first == "combined") {
            log.format = AccessLogConfig::Format::kCombined;
        } else {
            r.error(s->second, path + ".format",
                    "must be json, common or combined (got '" + s->first + "')");
        }
    }
    strings(r, node, "redactQuery", path, log.redact_query);
    strings(r, node, "headers", path, log.headers);
    for (std::size_t i = 0; i < log.headers.size(); ++i) {
        if (!valid_field_name(log.headers[i])) {
            r.error(r.child(node, "headers"), path + ".headers[" + std::to_string(i) + "]",
                    "must be a header name (got '" + log.headers[i] + "')");
        }
    }
    percent(r, node, "sample", path, 1, 100, log.sample_percent);
    size(r, node, "bufferSize", path, 4096, 1ULL << 30, log.buffer_bytes);
}

void read_request_id(YamlReader& r, const YamlNode& root, RequestIdConfig& id) {
    const YamlNode node = r.child(root, "requestId");
    const std::string path = "requestId";
    if (!node.defined() || node.null() ||
        !r.mapping(node, path, {"enabled", "header", "trustIncoming"})) {
        return;
    }
    flag(r, node, "enabled", path, id.enabled);
    text(r, node, "header", path, id.header);
    if (!valid_field_name(id.header)) {
        r.error(r.child(node, "header"), path + ".header",
                "must be a header name (got '" + id.header + "')");
    }
    flag(r, node, "trustIncoming", path, id.trust_incoming);
}

std::optional<ProxyVersion> version_of(const std::string& text, bool any_allowed) {
    if (text == "v1") {
        return ProxyVersion::kV1;
    }
    if (text == "v2") {
        return ProxyVersion::kV2;
    }
    if (text == "any" && any_allowed) {
        return ProxyVersion::kAny;
    }
    return std::nullopt;
}

}  // namespace

std::optional<Cidr> parse_cidr(const std::string& text) {
    const auto slash = text.find('/');
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(text.substr(0, slash), ec);
    if (ec) {
        return std::nullopt;
    }
    const unsigned bits = address.is_v4() ? 32 : 128;
    unsigned prefix = bits;
    if (slash != std::string::npos) {
        const auto p = config::parse_unsigned(std::string_view(text).substr(slash + 1));
        if (!p || *p > bits) {
            return std::nullopt;
        }
        prefix = static_cast<unsigned>(*p);
    }
    return Cidr{address, prefix};
}

namespace {

// The first `prefix` bits of two byte arrays agree.
template <class Bytes>
bool same_prefix(const Bytes& a, const Bytes& b, unsigned prefix) {
    for (std::size_t i = 0; i < a.size() && prefix > 0; ++i, prefix = prefix > 8 ? prefix - 8 : 0) {
        const unsigned bits = prefix >= 8 ? 8 : prefix;
        const auto mask = static_cast<unsigned char>(0xff << (8 - bits));
        if ((a[i] & mask) != (b[i] & mask)) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool Cidr::contains(const boost::asio::ip::address& candidate) const {
    auto a = candidate;
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
        a = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    }
    if (a.is_v4() != network.is_v4()) {
        return false;
    }
    return a.is_v4() ? same_prefix(a.to_v4().to_bytes(), network.to_v4().to_bytes(), prefix)
                     : same_prefix(a.to_v6().to_bytes(), network.to_v6().to_bytes(), prefix);
}

bool ProxyAcceptConfig::trusts(const boost::asio::ip::address& a) const {
    return enabled && (from.empty() || std::any_of(from.begin(), from.end(),
                                                   [&](const Cidr& c) { return c.contains(a); }));
}

void read_proxy_accept(YamlReader& r,
                       const YamlNode& map,
                       const std::string& parent,
                       ProxyAcceptConfig& out) {
    const YamlNode node = r.child(map, "proxyProtocol");
    const std::string path = YamlReader::join(parent, "proxyProtocol");
    if (!node.defined() || node.null() || !r.mapping(node, path, {"accept", "from"})) {
        return;
    }
    out.enabled = true;
    if (auto s = r.scalar(node, "accept", path)) {
        if (auto v = version_of(s->first, true)) {
            out.accept = *v;
        } else {
            r.error(s->second, path + ".accept", "must be v1, v2 or any (got '" + s->first + "')");
        }
    }
    std::vector<std::string> blocks;
    strings(r, node, "from", path, blocks);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        if (auto c = parse_cidr(blocks[i])) {
            out.from.push_back(*c);
        } else {
            r.error(r.child(node, "from"), path + ".from[" + std::to_string(i) + "]",
                    "must be an address or a CIDR block such as 10.0.0.0/8 or 2001:db8::/32 "
                    "(got '" +
                        blocks[i] + "')");
        }
    }
}

void read_proxy_send(YamlReader& r,
                     const YamlNode& map,
                     const std::string& path,
                     std::optional<ProxyVersion>& out) {
    if (auto s = r.scalar(map, "proxyProtocol", path)) {
        if (auto v = version_of(s->first, false)) {
            out = *v;
        } else {
            r.error(s->second, YamlReader::join(path, "proxyProtocol"),
                    "must be v1 or v2 (what the cluster's router expects; got '" + s->first + "')");
        }
    }
}

void read_retry_budget(YamlReader& r, const YamlNode& retry, RetryBudgetConfig& out) {
    const YamlNode node = r.child(retry, "budget");
    const std::string path = "retry.budget";
    if (!node.defined() || node.null() || !r.mapping(node, path, {"percent", "minConcurrency"})) {
        return;
    }
    percent(r, node, "percent", path, 0, 100, out.percent);
    number(r, node, "minConcurrency", path, 0, 100000, out.min_concurrency);
}

namespace {

void read_outlier(YamlReader& r, const YamlNode& root, OutlierConfig& out) {
    const YamlNode node = r.child(root, "outlierDetection");
    const std::string path = "outlierDetection";
    if (!node.defined() || node.null() ||
        !r.mapping(node, path,
                   {"consecutiveErrors", "baseEjection", "maxEjection", "maxEjectionPercent"})) {
        return;
    }
    out.consecutive_errors = 5;  // (the section is there: on, unless it says 0)
    number(r, node, "consecutiveErrors", path, 0, 1000, out.consecutive_errors);
    duration(r, node, "baseEjection", path, out.base_ejection, Millis(100));
    duration(r, node, "maxEjection", path, out.max_ejection, Millis(100));
    percent(r, node, "maxEjectionPercent", path, 0, 100, out.max_ejection_percent);
    if (out.max_ejection < out.base_ejection) {
        r.error(node, path + ".maxEjection", "must not be below baseEjection");
    }
}

}  // namespace

void read_alpn(YamlReader& r, const YamlNode& https, std::vector<std::string>& out) {
    const YamlNode node = r.child(https, "alpn");
    if (!node.defined()) {
        return;
    }
    std::vector<std::string> list;
    strings(r, https, "alpn", "https", list);
    std::vector<std::string> seen;
    for (const auto& p : list) {
        if (p != "h2" && p != "http/1.1") {
            r.error(node, "https.alpn",
                    "'" + p + "' is not a protocol tandem-lb serves: list h2 and/or http/1.1");
            return;
        }
        if (std::find(seen.begin(), seen.end(), p) != seen.end()) {
            r.error(node, "https.alpn", "lists '" + p + "' twice");
            return;
        }
        seen.push_back(p);
    }
    if (seen.empty()) {
        r.error(node, "https.alpn", "is empty: list h2 and/or http/1.1 (the preferred first)");
        return;
    }
    out = std::move(seen);
}

namespace {

// h2c: true | false; http2: {maxConcurrentStreams, maxHeaderListSize, initialWindow,
// idleTimeout, pingInterval, pingTimeout}.
void read_http2(YamlReader& r, const YamlNode& root, Http2Config& out) {
    flag(r, root, "h2c", "", out.h2c);
    const YamlNode node = r.child(root, "http2");
    if (!node.defined() || node.null() ||
        !r.mapping(node, "http2",
                   {"maxConcurrentStreams", "maxHeaderListSize", "initialWindow", "idleTimeout",
                    "pingInterval", "pingTimeout"})) {
        return;
    }
    number(r, node, "maxConcurrentStreams", "http2", 1, 10000, out.max_concurrent_streams);
    size(r, node, "maxHeaderListSize", "http2", 1024, 1024 * 1024, out.max_header_list_size);
    // (RFC 9113 6.9.2: at most 2^31-1; a connection gets four times it, so a quarter of that)
    size(r, node, "initialWindow", "http2", 16 * 1024, 512ULL * 1024 * 1024, out.initial_window);
    duration(r, node, "idleTimeout", "http2", out.idle_timeout);
    duration(r, node, "pingInterval", "http2", out.ping_interval, Millis(0));
    duration(r, node, "pingTimeout", "http2", out.ping_timeout);
}

}  // namespace

void read_edge(YamlReader& r,
               const YamlNode& root,
               const std::filesystem::path& base,
               LbConfig& out) {
    read_access_log(r, root, base, out.access_log);
    read_request_id(r, root, out.request_id);
    read_proxy_accept(r, root, "", out.proxy_protocol);
    read_outlier(r, root, out.outlier);
    read_http2(r, root, out.http2);
}

}  // namespace lb
