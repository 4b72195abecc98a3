// The fleet file's own sections: instances (admin URL, token source, weight, TLS, timeout,
// concurrency, HA inputs), resources, ha and split.
#include "fleet_file.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "apimanager_cr.hpp"
#include "config/normalize.hpp"

namespace config {

namespace fs = std::filesystem;

namespace {

// A value in the fleet file's `ha:` / `databases:` sections: a literal string, {env: VAR} or
// {file: PATH} (the whole file, without its trailing newline).
std::optional<std::string> read_value(YamlReader& r,
                                      const YamlNode& node,
                                      const std::string& where,
                                      const fs::path& base) {
    if (node.is_scalar()) {
        return node.scalar();
    }
    if (!node.is_map()) {
        r.error(node, where, "must be a string, {env: VARIABLE} or {file: PATH}");
        return std::nullopt;
    }
    r.only(node, where, {"env", "file"});
    const auto env = r.str(node, "env", where, false);
    const auto file = r.str(node, "file", where, false);
    if (env.has_value() == file.has_value()) {
        r.error(node, where, "set exactly one of env, file");
        return std::nullopt;
    }
    if (env) {
        const char* value = std::getenv(env->c_str());
        if (value == nullptr || *value == '\0') {
            r.error(node, where + ".env", "environment variable " + *env + " is not set or empty");
            return std::nullopt;
        }
        return std::string(value);
    }
    fs::path path = *file;
    if (path.is_relative()) {
        path = base / path;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        r.error(node, where + ".file", "cannot read " + path.string());
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    std::string value = text.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
        value.pop_back();
    }
    return value;
}

// secret name -> key -> value, as in `databases:` and `ha.mirroredSecrets:`.
// secret name -> key -> value, as in `databases:` and `ha.mirroredSecrets:`.
std::map<std::string, std::map<std::string, std::string>> read_secret_values(
    YamlReader& r,
    const YamlNode& node,
    const std::string& where,
    const fs::path& base,
    const std::set<std::string>& allowed_secrets) {
    std::map<std::string, std::map<std::string, std::string>> out;
    if (!r.is_map(node, where)) {
        return out;
    }
    for (const auto& it : node.entries()) {
        const std::string secret = it.first.scalar();
        const std::string path = where + "." + secret;
        if (!allowed_secrets.contains(secret)) {
            std::string known;
            for (const auto& a : allowed_secrets) {
                known += (known.empty() ? "" : ", ") + a;
            }
            r.error(it.first, path, "not one of the secrets that belong here (" + known + ")");
            continue;
        }
        if (!r.is_map(it.second, path)) {
            continue;
        }
        auto& keys = out[secret];
        for (const auto& kv : it.second.entries()) {
            if (auto v = read_value(r, kv.second, path + "." + kv.first.scalar(), base)) {
                keys[kv.first.scalar()] = *v;
            }
        }
    }
    return out;
}

const std::set<std::string>& database_secret_names() {
    static const std::set<std::string> names{"backend-redis", "system-redis", "system-database",
                                             "zync"};
    return names;
}

const std::set<std::string>& mirrored_secret_names() {
    static const std::set<std::string> names{"backend-internal-api", "system-app",
                                             "system-events-hook", "system-master-apicast",
                                             "system-seed"};
    return names;
}

void read_instance_ha(YamlReader& r,
                      const YamlNode& node,
                      const std::string& where,
                      const fs::path& base,
                      Instance& instance,
                      Diagnostics& diags) {
    instance.ha.source = r.at(node);
    if (const YamlNode am = r.child(node, "apimanager"); am.defined() && !am.null()) {
        instance.ha.apimanager = read_apimanager(r, am, where + ".apimanager", base, diags);
    }
    if (auto zones = r.integer(node, "zones", where, false)) {
        if (*zones < 1 || *zones > 16) {
            r.error(r.child(node, "zones"), where + ".zones",
                    "must be the number of availability zones the instance's nodes span (1..16)");
        } else {
            instance.ha.zones = static_cast<int>(*zones);
        }
    }
    if (auto role = r.str(node, "role", where, false)) {
        if (*role != "active" && *role != "standby") {
            r.error(r.child(node, "role"), where + ".role",
                    "must be active or standby (standby: the passive side of ha.mode "
                    "active-passive)");
        } else {
            instance.ha.role = *role;
        }
    }
    if (const YamlNode db = r.child(node, "databases"); db.defined() && !db.null()) {
        instance.ha.databases =
            read_secret_values(r, db, where + ".databases", base, database_secret_names());
    }
}

}  // namespace

std::optional<std::string> read_ca_bundle(YamlReader& r,
                                          const YamlNode& node,
                                          const std::string& where,
                                          const fs::path& base) {
    auto ca = r.str(node, "caBundle", where, false);
    if (!ca) {
        return std::nullopt;
    }
    fs::path path = *ca;
    if (path.is_relative()) {
        path = base / path;
    }
    if (!fs::is_regular_file(path)) {
        r.error(r.child(node, "caBundle"), where + ".caBundle",
                "cannot read CA bundle " + path.string());
    }
    return path.string();
}

namespace {

void read_token(YamlReader& r,
                const YamlNode& node,
                const std::string& where,
                const fs::path& base,
                Instance& instance) {
    auto token =
        read_secret_source(r, node, where, base, "the " + instance.name + " admin access token");
    if (token) {
        instance.token = std::move(token->value);
        instance.token_source = std::move(token->source);
    }
}

// retries: {attempts: 5, baseDelay: 100ms, maxDelay: 3s}
void read_retries(YamlReader& r, const YamlNode& node, const std::string& where, Instance& out) {
    if (!node.defined() || !r.is_map(node, where)) {
        return;
    }
    r.only(node, where, {"attempts", "baseDelay", "maxDelay"});
    if (auto a = r.integer(node, "attempts", where, false)) {
        if (*a < 1 || *a > 20) {
            r.error(r.child(node, "attempts"), where + ".attempts",
                    "must be an integer 1..20 (1: no retry)");
        }
        out.retry_attempts = static_cast<int>(*a);
    }
    if (auto d = r.duration(node, "baseDelay", where, std::chrono::milliseconds(1),
                            std::chrono::minutes(1), "ms")) {
        out.retry_base_delay = *d;
    }
    if (auto d = r.duration(node, "maxDelay", where, std::chrono::milliseconds(1),
                            std::chrono::minutes(10), "s")) {
        out.retry_max_delay = *d;
    }
    if (out.retry_max_delay < out.retry_base_delay) {
        r.error(node, where + ".maxDelay", "must not be shorter than baseDelay");
    }
}

}  // namespace

void read_instances(YamlReader& r,
                    const YamlNode& root,
                    const fs::path& base,
                    Fleet& fleet,
                    const LoadOptions& options,
                    Diagnostics& diags) {
    const YamlNode instances = r.child(root, "instances");
    if (!instances.is_sequence() || instances.size() == 0) {
        r.error(instances.defined() ? instances : root, "instances",
                "is required: a list of 3scale instances (name, adminUrl, token)");
        return;
    }
    std::map<std::string, int> names;
    std::map<std::string, int> urls;
    for (std::size_t i = 0; i < instances.size(); ++i) {
        const YamlNode node = instances[i];
        const std::string where = "instances[" + std::to_string(i) + "]";
        if (!r.is_map(node, where)) {
            continue;
        }
        r.only(node, where,
               {"name", "adminUrl", "token", "weight", "caBundle", "insecureSkipTlsVerify",
                "timeout", "concurrency", "retries", "apimanager", "zones", "role", "databases"});
        Instance instance;
        instance.source = r.at(node);
        instance.name = r.str(node, "name", where, true).value_or("");
        if (!instance.name.empty() &&
            !std::all_of(instance.name.begin(), instance.name.end(), [](unsigned char ch) {
                return std::isalnum(ch) != 0 || ch == '-' || ch == '_' || ch == '.';
            })) {
            r.error(r.child(node, "name"), where + ".name",
                    "use letters, digits, '-', '_' and '.' only");
        }
        if (!instance.name.empty()) {
            if (auto [it, fresh] = names.emplace(instance.name, instance.source.line); !fresh) {
                r.error(r.child(node, "name"), where + ".name",
                        "duplicate instance name '" + instance.name + "' (first at line " +
                            std::to_string(it->second) + ")");
            }
        }
        if (auto url = r.str(node, "adminUrl", where, true)) {
            auto normalized = normalize_url(*url);
            if (!normalized || !(url->starts_with("http://") || url->starts_with("https://"))) {
                const std::string why = url_problem(*url);
                r.error(r.child(node, "adminUrl"), where + ".adminUrl",
                        "must be an http:// or https:// URL of the tenant's admin portal" +
                            (why.empty() ? std::string() : " (" + why + ")"));
            } else if (normalized->find('?') != std::string::npos ||
                       normalized->find('@') != std::string::npos) {
                r.error(r.child(node, "adminUrl"), where + ".adminUrl",
                        "must not carry credentials or a query string: the token comes from "
                        "'token'");
            } else {
                while (normalized->ends_with("/")) {
                    normalized->pop_back();
                }
                instance.admin_url = *normalized;
                if (auto [it, fresh] = urls.emplace(*normalized, instance.source.line); !fresh) {
                    r.error(r.child(node, "adminUrl"), where + ".adminUrl",
                            "the same admin URL as the instance at line " +
                                std::to_string(it->second) +
                                ": each instance must be an independent 3scale");
                }
            }
        }
        if (options.require_tokens) {
            read_token(r, r.child(node, "token"), where + ".token", base, instance);
        }
        read_instance_ha(r, node, where, base, instance, diags);
        if (auto w = r.integer(node, "weight", where, false)) {
            if (*w < 1 || *w > 1000) {
                r.error(r.child(node, "weight"), where + ".weight", "must be an integer 1..1000");
            }
            instance.weight = *w;
        }
        if (auto ca = read_ca_bundle(r, node, where, base)) {
            instance.ca_bundle = *ca;
        }
        if (r.boolean(node, "insecureSkipTlsVerify", where, false).value_or(false)) {
            instance.insecure_skip_tls_verify = true;
            r.notice(r.child(node, "insecureSkipTlsVerify"), where + ".insecureSkipTlsVerify",
                     "WARNING: TLS certificates of instance '" + instance.name +
                         "' will NOT be verified; anyone on the path can read its admin token");
        }
        if (auto d = r.duration(node, "timeout", where, std::chrono::milliseconds(1),
                                std::chrono::hours(1), "s")) {
            instance.timeout = *d;
        }
        if (auto c = r.integer(node, "concurrency", where, false)) {
            if (*c < 1 || *c > 64) {
                r.error(r.child(node, "concurrency"), where + ".concurrency",
                        "must be an integer 1..64");
            }
            instance.concurrency = static_cast<int>(*c);
        }
        read_retries(r, r.child(node, "retries"), where + ".retries", instance);
        fleet.instances.push_back(std::move(instance));
    }
}

void read_ha(YamlReader& r, const YamlNode& root, const fs::path& base, Fleet& fleet) {
    const YamlNode ha = r.child(root, "ha");
    if (!r.is_map(ha, "ha")) {
        return;
    }
    r.only(ha, "ha",
           {"version", "wildcardDomain", "tenantName", "namespace", "mode", "mirroredSecrets"});
    auto& out = fleet.ha;
    out.present = true;
    out.source = r.at(ha);
    if (auto v = r.str(ha, "version", "ha", false)) {
        const int minor = minor_version(*v);
        if (minor < 9 || minor > 16) {
            r.error(r.child(ha, "version"), "ha.version",
                    "must be a 3scale version from 2.9 to 2.16, e.g. \"2.15\" (quote it)");
        } else {
            out.version = *v;
        }
    }
    if (auto w = r.str(ha, "wildcardDomain", "ha", false)) {
        out.wildcard_domain = *w;
    }
    if (auto t = r.str(ha, "tenantName", "ha", false)) {
        out.tenant_name = *t;
    }
    if (auto n = r.str(ha, "namespace", "ha", false)) {
        out.namespace_name = *n;
    }
    if (auto m = r.str(ha, "mode", "ha", false)) {
        if (*m != "active-active" && *m != "active-passive") {
            r.error(r.child(ha, "mode"), "ha.mode",
                    "must be active-active (independent instances, each with its own databases) "
                    "or active-passive (one standby sharing the active's databases)");
        } else {
            out.mode = *m;
        }
    }
    if (const YamlNode m = r.child(ha, "mirroredSecrets"); m.defined() && !m.null()) {
        out.mirrored =
            read_secret_values(r, m, "ha.mirroredSecrets", base, mirrored_secret_names());
    }
}

void read_split(YamlReader& r, const YamlNode& root, Fleet& fleet) {
    const YamlNode split = r.child(root, "split");
    if (r.is_map(split, "split")) {
        r.only(split, "split", {"policy", "products"});
        fleet.split_source = r.at(split);
        const auto policy_of = [&](const YamlNode& node, const std::string& path) {
            const std::string text = node.is_scalar() ? node.scalar() : "";
            auto p = ratelimit::parse_split_policy(text);
            if (!p) {
                r.error(node, path,
                        "'" + text + "' is not a split policy: use error, min1, coarsen or none");
            }
            return p.value_or(ratelimit::SplitPolicy::kError);
        };
        if (const YamlNode p = r.child(split, "policy"); p.defined()) {
            fleet.split_policy = policy_of(p, "split.policy");
        }
        const YamlNode products = r.child(split, "products");
        if (r.is_map(products, "split.products")) {
            for (const auto& it : products.entries()) {
                fleet.product_split_policies[it.first.scalar()] =
                    policy_of(it.second, "split.products." + it.first.scalar());
            }
        }
    }
}

}  // namespace config
