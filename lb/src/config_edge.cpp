// tandem-lb's file, the sections of the balancer at the edge: accessLog and requestId.
#include "config_edge.hpp"

#include <algorithm>

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

}  // namespace

void read_edge(YamlReader& r,
               const YamlNode& root,
               const std::filesystem::path& base,
               LbConfig& out) {
    read_access_log(r, root, base, out.access_log);
    read_request_id(r, root, out.request_id);
}

}  // namespace lb
