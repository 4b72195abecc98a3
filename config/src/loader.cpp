// The fleet file and the 3scale-operator CRs it names -> a validated Fleet. yaml-cpp and
// nlohmann::json stay inside this file; their exceptions never leave it.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "config/fleet.hpp"
#include "config/normalize.hpp"

namespace config {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kCapabilities = "capabilities.3scale.net/v1beta1";
constexpr const char* kSplitAnnotation = "tandem.3scale.net/split-policy";

std::string camel_to_snake(const std::string& in) {
    std::string out;
    for (const char ch : in) {
        if (std::isupper(static_cast<unsigned char>(ch)) != 0) {
            out.push_back('_');
            out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
        } else {
            out.push_back(ch);
        }
    }
    return out;
}

// Collects diagnostics for one file and reads typed values out of yaml-cpp nodes.
class Reader {
public:
    Reader(std::string file, Diagnostics& out) : file_(std::move(file)), out_(out) {}

    [[nodiscard]] const std::string& file() const { return file_; }
    [[nodiscard]] Source at(const YAML::Node& node) const {
        return {file_, node.IsDefined() ? node.Mark().line + 1 : 0};
    }
    void error(const YAML::Node& node, const std::string& path, const std::string& message) {
        out_.push_back({Diagnostic::Severity::kError, at(node), path, message});
    }
    void notice(const YAML::Node& node, const std::string& path, const std::string& message) {
        out_.push_back({Diagnostic::Severity::kNotice, at(node), path, message});
    }

    // The value under `key` of a mapping (undefined when absent); reports duplicate keys.
    YAML::Node child(const YAML::Node& map, const std::string& key) {
        YAML::Node found(YAML::NodeType::Undefined);
        if (!map.IsMap()) {
            return found;
        }
        int count = 0;
        for (auto it = map.begin(); it != map.end(); ++it) {
            if (it->first.IsScalar() && it->first.Scalar() == key) {
                if (++count == 2) {
                    error(it->first, key, "duplicate key");
                }
                found.reset(it->second);
            }
        }
        return found;
    }

    // Reports the keys of `map` that are not in `allowed`.
    void only(const YAML::Node& map,
              const std::string& path,
              std::initializer_list<const char*> allowed) {
        if (!map.IsMap()) {
            return;
        }
        for (auto it = map.begin(); it != map.end(); ++it) {
            const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
            if (std::none_of(allowed.begin(), allowed.end(),
                             [&](const char* a) { return key == a; })) {
                std::string known;
                for (const char* a : allowed) {
                    known += (known.empty() ? "" : ", ") + std::string(a);
                }
                error(it->first, join(path, key), "unknown field (known: " + known + ")");
            }
        }
    }

    static std::string join(const std::string& path, const std::string& key) {
        return path.empty() ? key : path + "." + key;
    }

    bool is_map(const YAML::Node& node, const std::string& path) {
        if (node.IsDefined() && !node.IsNull() && !node.IsMap()) {
            error(node, path, "must be a mapping");
            return false;
        }
        return node.IsMap();
    }

    // The value under `key`, or nullopt when it is absent or null ("is required" when it must be
    // there). The typed readers below start from it.
    std::optional<YAML::Node> present(const YAML::Node& map,
                                      const std::string& key,
                                      const std::string& where,
                                      bool required) {
        const YAML::Node node = child(map, key);
        if (!node.IsDefined() || node.IsNull()) {
            if (required) {
                error(node.IsDefined() ? node : map, where, "is required");
            }
            return std::nullopt;
        }
        return node;
    }

    std::optional<std::string> str(const YAML::Node& map,
                                   const std::string& key,
                                   const std::string& path,
                                   bool required) {
        const std::string where = join(path, key);
        const auto found = present(map, key, where, required);
        if (!found) {
            return std::nullopt;
        }
        const YAML::Node& node = *found;
        if (!node.IsScalar()) {
            error(node, where, "must be a string");
            return std::nullopt;
        }
        if (required && node.Scalar().empty()) {
            error(node, where, "must not be empty");
            return std::nullopt;
        }
        return node.Scalar();
    }

    std::optional<std::int64_t> integer(const YAML::Node& map,
                                        const std::string& key,
                                        const std::string& path,
                                        bool required) {
        const std::string where = join(path, key);
        const auto found = present(map, key, where, required);
        if (!found) {
            return std::nullopt;
        }
        const YAML::Node& node = *found;
        std::int64_t value = 0;
        const std::string& s = node.IsScalar() ? node.Scalar() : std::string();
        const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
        if (!node.IsScalar() || ec != std::errc() || ptr != s.data() + s.size() || s.empty()) {
            error(node, where, "must be an integer (got '" + s + "')");
            return std::nullopt;
        }
        return value;
    }

    std::optional<bool> boolean(const YAML::Node& map,
                                const std::string& key,
                                const std::string& path,
                                bool required) {
        const std::string where = join(path, key);
        const auto found = present(map, key, where, required);
        if (!found) {
            return std::nullopt;
        }
        const YAML::Node& node = *found;
        const std::string s = node.IsScalar() ? node.Scalar() : "";
        if (s == "true" || s == "True" || s == "TRUE") {
            return true;
        }
        if (s == "false" || s == "False" || s == "FALSE") {
            return false;
        }
        error(node, where, "must be true or false (got '" + s + "')");
        return std::nullopt;
    }

    // A decimal given as a string ("1.50") or a number (toolbox exports write 0.0).
    std::optional<std::string> decimal(const YAML::Node& map,
                                       const std::string& key,
                                       const std::string& path,
                                       bool required) {
        auto s = str(map, key, path, required);
        if (!s) {
            return std::nullopt;
        }
        auto d = normalize_decimal(*s);
        if (!d) {
            error(child(map, key), join(path, key),
                  "must be a non-negative decimal such as \"10\" or \"0.25\" (got '" + *s + "')");
        }
        return d;
    }

private:
    std::string file_;
    Diagnostics& out_;
};

// Accounts, users, applications and Secrets reference each other by metadata.name across files:
// they are collected first and resolved once every document is read.
struct RawSecret {
    Source source;
    std::map<std::string, std::string> values;
    std::map<std::string, std::string> problems;  // key -> why its value could not be read
};

struct RawAccount {
    Source source;
    std::string org_name;
    std::optional<bool> billing;
    std::optional<bool> charging;
};

struct RawUser {
    Source source;
    std::string username;
    std::string email;
    std::string role;
    bool suspended = false;
    std::string password_secret;
    std::string account;
};

struct RawApp {
    Source source;
    std::string account;
    std::string product;
    std::string plan;
    std::string name;
    std::string description;
    bool suspended = false;
    std::string secret;
};

struct Pending {
    std::map<std::string, RawSecret> secrets;
    std::map<std::string, RawAccount> accounts;
    std::vector<RawUser> users;
    std::vector<RawApp> apps;
    std::map<std::string, std::string> product_names;  // Product metadata.name -> system_name
};

Json to_json(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map: {
            Json obj = Json::object();
            for (auto it = node.begin(); it != node.end(); ++it) {
                obj[it->first.as<std::string>()] = to_json(it->second);
            }
            return obj;
        }
        case YAML::NodeType::Sequence: {
            Json arr = Json::array();
            for (const auto& item : node) {
                arr.push_back(to_json(item));
            }
            return arr;
        }
        case YAML::NodeType::Scalar: {
            const std::string& s = node.Scalar();
            if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") {
                return s;  // quoted: a string
            }
            if (s == "true" || s == "false") {
                return s == "true";
            }
            if (s == "null" || s == "~") {
                return nullptr;
            }
            std::int64_t i = 0;
            if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
                ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
                return i;
            }
            double d = 0;
            if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
                ec == std::errc() && p == s.data() + s.size() && !s.empty()) {
                return d;
            }
            return s;
        }
        default:
            return nullptr;
    }
}

// ------------------------------------------------------------------------- shared CR pieces

void read_metrics(Reader& r,
                  const YAML::Node& spec,
                  const std::string& key,
                  bool methods,
                  std::map<std::string, Metric>& out) {
    const std::string path = "spec." + key;
    const YAML::Node node = r.child(spec, key);
    if (!r.is_map(node, path)) {
        return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string name = it->first.Scalar();
        const std::string where = path + "." + name;
        if (!valid_system_name(name)) {
            r.error(it->first, where,
                    "invalid system name: 3scale accepts letters, digits, '_', '-' and '/', at "
                    "least two characters, no dots");
        }
        if (out.contains(name)) {
            r.error(it->first, where, "defined twice");
        }
        const YAML::Node m = it->second;
        if (!r.is_map(m, where)) {
            continue;
        }
        if (methods) {
            r.only(m, where, {"friendlyName", "description"});
        } else {
            r.only(m, where, {"friendlyName", "unit", "description"});
        }
        Metric metric;
        metric.friendly_name = r.str(m, "friendlyName", where, true).value_or("");
        if (!methods) {
            metric.unit = r.str(m, "unit", where, true).value_or("");
        }
        metric.description = r.str(m, "description", where, false).value_or("");
        metric.source = r.at(it->first);
        out.emplace(name, std::move(metric));
    }
}

void read_mapping_rules(Reader& r, const YAML::Node& spec, std::vector<MappingRule>& out) {
    const YAML::Node rules = r.child(spec, "mappingRules");
    if (!rules.IsDefined() || rules.IsNull()) {
        return;
    }
    if (!rules.IsSequence()) {
        r.error(rules, "spec.mappingRules", "must be a list");
        return;
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const YAML::Node rule = rules[i];
        const std::string where = "spec.mappingRules[" + std::to_string(i) + "]";
        if (!r.is_map(rule, where)) {
            continue;
        }
        r.only(rule, where, {"httpMethod", "pattern", "metricMethodRef", "increment", "last"});
        MappingRule m;
        m.source = r.at(rule);
        m.http_method = r.str(rule, "httpMethod", where, true).value_or("");
        if (m.http_method == "TRACE" || m.http_method == "CONNECT") {
            r.error(r.child(rule, "httpMethod"), where + ".httpMethod",
                    m.http_method +
                        " is accepted by the operator's CRD but 3scale refuses it (422); use one "
                        "of GET POST PUT DELETE PATCH HEAD OPTIONS");
        } else if (!m.http_method.empty() && !porta_http_method(m.http_method)) {
            r.error(r.child(rule, "httpMethod"), where + ".httpMethod",
                    "'" + m.http_method +
                        "' is not an HTTP method 3scale accepts (GET POST PUT DELETE PATCH HEAD "
                        "OPTIONS, upper case)");
        }
        m.pattern = r.str(rule, "pattern", where, true).value_or("");
        if (!m.pattern.empty() && !valid_mapping_pattern(m.pattern)) {
            r.error(r.child(rule, "pattern"), where + ".pattern",
                    "'" + m.pattern +
                        "' is not a valid pattern: it must start with '/', have balanced {vars}, "
                        "no spaces, at most 255 characters");
        }
        m.metric = r.str(rule, "metricMethodRef", where, true).value_or("");
        if (auto inc = r.integer(rule, "increment", where, true)) {
            if (*inc <= 0) {
                r.error(r.child(rule, "increment"), where + ".increment",
                        "must be greater than 0 (3scale refuses 0 and negative deltas)");
            }
            m.delta = *inc;
        }
        m.last = r.boolean(rule, "last", where, false).value_or(false);
        out.push_back(std::move(m));
    }
}

std::optional<MetricRef> read_metric_ref(Reader& r,
                                         const YAML::Node& parent,
                                         const std::string& where) {
    const YAML::Node ref = r.child(parent, "metricMethodRef");
    const std::string path = where + ".metricMethodRef";
    if (!ref.IsDefined() || ref.IsNull()) {
        r.error(parent, path, "is required");
        return std::nullopt;
    }
    if (!r.is_map(ref, path)) {
        return std::nullopt;
    }
    r.only(ref, path, {"systemName", "backend"});
    MetricRef out;
    out.system_name = r.str(ref, "systemName", path, true).value_or("");
    out.backend = r.str(ref, "backend", path, false).value_or("");
    return out;
}

// hits exists on every product and backend (the operator adds it too).
void add_hits(std::map<std::string, Metric>& metrics, const Source& source) {
    if (!metrics.contains("hits")) {
        metrics.emplace("hits", Metric{"Hits", "hit", "Number of API hits", source});
    }
}

// Records `kind system_name` as defined at `source`; false (with an error) when it already was.
bool first_definition(Reader& r,
                      const YAML::Node& doc,
                      std::map<std::string, Source>& seen,
                      const std::string& kind,
                      const std::string& system_name,
                      const Source& source) {
    if (system_name.empty()) {
        return false;
    }
    if (auto it = seen.find(kind + " " + system_name); it != seen.end()) {
        r.error(doc, "spec.systemName",
                kind + " '" + system_name + "' is already defined at " + it->second.file + ":" +
                    std::to_string(it->second.line));
        return false;
    }
    seen.emplace(kind + " " + system_name, source);
    return true;
}

// ------------------------------------------------------------------------------- Product CR

void read_authentication(Reader& r,
                         const YAML::Node& auth,
                         const std::string& path,
                         Product& product) {
    if (!r.is_map(auth, path)) {
        return;
    }
    r.only(auth, path, {"userkey", "appKeyAppID", "oidc"});
    int kinds = 0;
    for (const auto& [key, version] :
         {std::pair{"userkey", "1"}, std::pair{"appKeyAppID", "2"}, std::pair{"oidc", "oidc"}}) {
        const YAML::Node mode = r.child(auth, key);
        if (!mode.IsDefined()) {
            continue;
        }
        ++kinds;
        const std::string where = path + "." + key;
        product.backend_version = version;
        if (!r.is_map(mode, where)) {
            continue;
        }
        r.only(mode, where,
               {"authUserKey", "appID", "appKey", "credentials", "security", "gatewayResponse",
                "issuerType", "issuerEndpoint", "issuerEndpointRef", "authenticationFlow",
                "jwtClaimWithClientID", "jwtClaimWithClientIDType"});
        auto& fields = product.proxy.fields;
        const auto copy = [&](const char* from, const char* to) {
            if (auto v = r.str(mode, from, where, false)) {
                fields[to] = *v;
            }
        };
        copy("authUserKey", "auth_user_key");
        copy("appID", "auth_app_id");
        copy("appKey", "auth_app_key");
        if (auto c = r.str(mode, "credentials", where, false)) {
            if (*c != "headers" && *c != "query" && *c != "authorization") {
                r.error(r.child(mode, "credentials"), where + ".credentials",
                        "must be one of headers, query, authorization");
            }
            fields["credentials_location"] = *c;
        }
        if (std::string(key) == "oidc") {
            if (auto t = r.str(mode, "issuerType", where, true)) {
                if (*t != "keycloak" && *t != "rest") {
                    r.error(r.child(mode, "issuerType"), where + ".issuerType",
                            "must be keycloak or rest");
                }
                fields["oidc_issuer_type"] = *t;
            }
            copy("issuerEndpoint", "oidc_issuer_endpoint");
            copy("jwtClaimWithClientID", "jwt_claim_with_client_id");
            copy("jwtClaimWithClientIDType", "jwt_claim_with_client_id_type");
            if (r.child(mode, "issuerEndpointRef").IsDefined()) {
                r.error(r.child(mode, "issuerEndpointRef"), where + ".issuerEndpointRef",
                        "Secret references are not supported here yet: set issuerEndpoint");
            }
            if (r.child(mode, "authenticationFlow").IsDefined()) {
                r.notice(r.child(mode, "authenticationFlow"), where + ".authenticationFlow",
                         "is not synchronized by tandem yet (left as 3scale has it)");
            }
        }
        const YAML::Node security = r.child(mode, "security");
        if (r.is_map(security, where + ".security")) {
            r.only(security, where + ".security", {"hostHeader", "secretToken"});
            if (auto v = r.str(security, "hostHeader", where + ".security", false)) {
                fields["hostname_rewrite"] = *v;
            }
            if (auto v = r.str(security, "secretToken", where + ".security", false)) {
                fields["secret_token"] = *v;
            }
        }
        const YAML::Node response = r.child(mode, "gatewayResponse");
        const std::string rpath = where + ".gatewayResponse";
        if (r.is_map(response, rpath)) {
            for (auto it = response.begin(); it != response.end(); ++it) {
                const std::string name = it->first.Scalar();
                static const std::set<std::string> kKnown = {"errorStatusAuthFailed",
                                                             "errorHeadersAuthFailed",
                                                             "errorAuthFailed",
                                                             "errorStatusAuthMissing",
                                                             "errorHeadersAuthMissing",
                                                             "errorAuthMissing",
                                                             "errorStatusNoMatch",
                                                             "errorHeadersNoMatch",
                                                             "errorNoMatch",
                                                             "errorStatusLimitsExceeded",
                                                             "errorHeadersLimitsExceeded",
                                                             "errorLimitsExceeded"};
                if (!kKnown.contains(name)) {
                    r.error(it->first, rpath + "." + name, "unknown field");
                    continue;
                }
                if (name.starts_with("errorStatus")) {
                    auto v = r.integer(response, name, rpath, false);
                    if (v && (*v < 200 || *v > 599)) {
                        r.error(it->second, rpath + "." + name, "must be an HTTP status 200..599");
                    }
                    if (v) {
                        fields[camel_to_snake(name)] = std::to_string(*v);
                    }
                } else if (auto v = r.str(response, name, rpath, false)) {
                    fields[camel_to_snake(name)] = *v;
                }
            }
        }
    }
    if (kinds > 1) {
        r.error(auth, path, "set exactly one of userkey, appKeyAppID, oidc");
    }
}

void read_deployment(Reader& r, const YAML::Node& spec, Product& product) {
    const YAML::Node deployment = r.child(spec, "deployment");
    if (!r.is_map(deployment, "spec.deployment")) {
        return;
    }
    r.only(deployment, "spec.deployment", {"apicastHosted", "apicastSelfManaged"});
    const YAML::Node hosted = r.child(deployment, "apicastHosted");
    const YAML::Node managed = r.child(deployment, "apicastSelfManaged");
    if (hosted.IsDefined() && managed.IsDefined()) {
        r.error(deployment, "spec.deployment",
                "set exactly one of apicastHosted, apicastSelfManaged");
        return;
    }
    if (hosted.IsDefined()) {
        product.deployment_option = "hosted";
        if (r.is_map(hosted, "spec.deployment.apicastHosted")) {
            r.only(hosted, "spec.deployment.apicastHosted", {"authentication"});
            read_authentication(r, r.child(hosted, "authentication"),
                                "spec.deployment.apicastHosted.authentication", product);
        }
    } else if (managed.IsDefined()) {
        product.deployment_option = "self_managed";
        const std::string path = "spec.deployment.apicastSelfManaged";
        if (r.is_map(managed, path)) {
            r.only(managed, path,
                   {"authentication", "stagingPublicBaseURL", "productionPublicBaseURL"});
            for (const auto& [key, field] :
                 {std::pair{"productionPublicBaseURL", "endpoint"},
                  std::pair{"stagingPublicBaseURL", "sandbox_endpoint"}}) {
                if (auto url = r.str(managed, key, path, false)) {
                    auto normalized = normalize_url(*url);
                    if (!normalized ||
                        !(url->starts_with("http://") || url->starts_with("https://"))) {
                        r.error(r.child(managed, key), path + "." + key,
                                "must be an http:// or https:// URL (got '" + *url + "')");
                    } else {
                        product.proxy.fields[field] = *normalized;
                    }
                }
            }
            read_authentication(r, r.child(managed, "authentication"), path + ".authentication",
                                product);
        }
    }
}

Plan read_plan(Reader& r, const YAML::Node& node, const std::string& where) {
    Plan plan;
    r.only(node, where,
           {"name", "appsRequireApproval", "trialPeriod", "setupFee", "costMonth", "published",
            "limits", "pricingRules", "custom", "state"});
    plan.name = r.str(node, "name", where, false).value_or("");
    plan.approval_required = r.boolean(node, "appsRequireApproval", where, false);
    plan.trial_period_days = r.integer(node, "trialPeriod", where, false);
    if (plan.trial_period_days && *plan.trial_period_days < 0) {
        r.error(r.child(node, "trialPeriod"), where + ".trialPeriod", "must not be negative");
    }
    plan.setup_fee = r.decimal(node, "setupFee", where, false);
    plan.cost_per_month = r.decimal(node, "costMonth", where, false);
    if (auto published = r.boolean(node, "published", where, false)) {
        plan.published = *published;
    } else if (auto state = r.str(node, "state", where, false)) {  // toolbox exports
        if (*state != "published" && *state != "hidden") {
            r.error(r.child(node, "state"), where + ".state", "must be published or hidden");
        }
        plan.published = *state == "published";
    }
    const YAML::Node limits = r.child(node, "limits");
    if (limits.IsDefined() && !limits.IsNull() && !limits.IsSequence()) {
        r.error(limits, where + ".limits", "must be a list");
    } else if (limits.IsSequence()) {
        for (std::size_t i = 0; i < limits.size(); ++i) {
            const YAML::Node l = limits[i];
            const std::string lw = where + ".limits[" + std::to_string(i) + "]";
            if (!r.is_map(l, lw)) {
                continue;
            }
            r.only(l, lw, {"period", "value", "metricMethodRef"});
            Limit limit;
            limit.source = r.at(l);
            if (auto p = r.str(l, "period", lw, true)) {
                if (auto period = ratelimit::parse_period(*p)) {
                    limit.period = *period;
                } else {
                    r.error(r.child(l, "period"), lw + ".period",
                            "'" + *p +
                                "' is not a period: use eternity, year, month, week, day, hour or "
                                "minute");
                }
            }
            if (auto v = r.integer(l, "value", lw, true)) {
                if (*v < 0) {
                    r.error(r.child(l, "value"), lw + ".value",
                            "must not be negative: 3scale stores it as 0, which disables the "
                            "metric (write 0 to disable on purpose)");
                }
                limit.value = *v;
            }
            if (auto ref = read_metric_ref(r, l, lw)) {
                limit.metric = *ref;
            }
            plan.limits.push_back(std::move(limit));
        }
    }
    const YAML::Node pricing = r.child(node, "pricingRules");
    if (pricing.IsDefined() && !pricing.IsNull() && !pricing.IsSequence()) {
        r.error(pricing, where + ".pricingRules", "must be a list");
    } else if (pricing.IsSequence()) {
        for (std::size_t i = 0; i < pricing.size(); ++i) {
            const YAML::Node p = pricing[i];
            const std::string pw = where + ".pricingRules[" + std::to_string(i) + "]";
            if (!r.is_map(p, pw)) {
                continue;
            }
            r.only(p, pw, {"from", "to", "pricePerUnit", "metricMethodRef"});
            PricingRule rule;
            rule.source = r.at(p);
            rule.min = r.integer(p, "from", pw, true).value_or(1);
            rule.max = r.integer(p, "to", pw, true);
            rule.cost_per_unit = r.decimal(p, "pricePerUnit", pw, true).value_or("0.0");
            if (rule.min < 1) {
                r.error(r.child(p, "from"), pw + ".from", "must be at least 1");
            }
            if (rule.max && *rule.max < rule.min) {
                r.error(r.child(p, "to"), pw + ".to", "must not be lower than from");
            }
            if (auto ref = read_metric_ref(r, p, pw)) {
                rule.metric = *ref;
            }
            plan.pricing_rules.push_back(std::move(rule));
        }
    }
    return plan;
}

void read_policies(Reader& r, const YAML::Node& spec, Product& product) {
    const YAML::Node policies = r.child(spec, "policies");
    bool has_apicast = false;
    if (policies.IsDefined() && !policies.IsNull() && !policies.IsSequence()) {
        r.error(policies, "spec.policies", "must be a list");
    } else if (policies.IsSequence()) {
        for (std::size_t i = 0; i < policies.size(); ++i) {
            const YAML::Node p = policies[i];
            const std::string where = "spec.policies[" + std::to_string(i) + "]";
            if (!r.is_map(p, where)) {
                continue;
            }
            r.only(p, where, {"name", "version", "enabled", "configuration", "configurationRef"});
            Policy policy;
            policy.name = r.str(p, "name", where, true).value_or("");
            policy.version = r.str(p, "version", where, true).value_or("");
            policy.enabled = r.boolean(p, "enabled", where, true).value_or(true);
            const YAML::Node conf = r.child(p, "configuration");
            Json conf_json = Json::object();
            if (conf.IsDefined() && !conf.IsNull()) {
                if (!conf.IsMap()) {
                    r.error(conf, where + ".configuration", "must be a mapping");
                } else {
                    conf_json = to_json(conf);
                }
            }
            if (r.child(p, "configurationRef").IsDefined() && conf_json.empty()) {
                r.error(r.child(p, "configurationRef"), where + ".configurationRef",
                        "Secret references are not supported here yet: put the configuration "
                        "inline");
            }
            policy.configuration = conf_json.dump();
            has_apicast = has_apicast || policy.name == "apicast";
            product.policies.push_back(std::move(policy));
        }
    }
    if (!has_apicast) {
        // as porta and the operator do: the chain always ends with apicast if it is not in it
        product.policies.push_back({"apicast", "builtin", true, "{}"});
    }
}

void read_product(Reader& r,
                  const YAML::Node& doc,
                  Fleet& fleet,
                  std::map<std::string, Source>& seen,
                  Pending& pending) {
    const YAML::Node spec = r.child(doc, "spec");
    if (!spec.IsMap()) {
        r.error(spec.IsDefined() ? spec : doc, "spec", "is required and must be a mapping");
        return;
    }
    r.only(spec, "spec",
           {"name", "systemName", "description", "deployment", "mappingRules", "metrics", "methods",
            "backendUsages", "applicationPlans", "policies", "providerAccountRef"});
    Product product;
    product.source = r.at(doc);
    product.name = r.str(spec, "name", "spec", true).value_or("");
    std::string system_name = r.str(spec, "systemName", "spec", false).value_or("");
    if (system_name.empty()) {
        system_name = operator_default_system_name(product.name);
    }
    if (!system_name.empty() && !valid_system_name(system_name)) {
        r.error(r.child(spec, "systemName").IsDefined() ? r.child(spec, "systemName") : spec,
                "spec.systemName",
                "'" + system_name +
                    "' is not a valid 3scale system name: letters, digits, '_', '-' and '/', at "
                    "least two characters, no dots");
    }
    product.description = r.str(spec, "description", "spec", false).value_or("");
    if (r.child(spec, "providerAccountRef").IsDefined()) {
        r.notice(r.child(spec, "providerAccountRef"), "spec.providerAccountRef",
                 "ignored: tandem applies every product to every instance of the fleet");
    }
    const YAML::Node annotations = r.child(r.child(doc, "metadata"), "annotations");
    if (auto policy = r.str(annotations, kSplitAnnotation, "metadata.annotations", false)) {
        product.split_policy = ratelimit::parse_split_policy(*policy);
        if (!product.split_policy) {
            r.error(r.child(annotations, kSplitAnnotation),
                    std::string("metadata.annotations.") + kSplitAnnotation,
                    "'" + *policy + "' is not a split policy: use error, min1, coarsen or none");
        }
    }
    read_deployment(r, spec, product);
    read_metrics(r, spec, "metrics", false, product.metrics);
    read_metrics(r, spec, "methods", true, product.methods);
    read_mapping_rules(r, spec, product.mapping_rules);
    const YAML::Node usages = r.child(spec, "backendUsages");
    if (r.is_map(usages, "spec.backendUsages")) {
        for (auto it = usages.begin(); it != usages.end(); ++it) {
            const std::string where = "spec.backendUsages." + it->first.Scalar();
            if (!r.is_map(it->second, where)) {
                continue;
            }
            r.only(it->second, where, {"path"});
            BackendUsage usage;
            usage.source = r.at(it->first);
            usage.path = r.str(it->second, "path", where, true).value_or("/");
            if (usage.path.empty() || usage.path.front() != '/') {
                r.error(r.child(it->second, "path"), where + ".path", "must start with '/'");
            }
            while (usage.path.size() > 1 && usage.path.back() == '/') {
                usage.path.pop_back();  // porta stores "/v1/" as "/v1"
            }
            product.backend_usages.emplace(it->first.Scalar(), std::move(usage));
        }
    }
    const YAML::Node plans = r.child(spec, "applicationPlans");
    if (r.is_map(plans, "spec.applicationPlans")) {
        for (auto it = plans.begin(); it != plans.end(); ++it) {
            const std::string key = it->first.Scalar();
            const std::string where = "spec.applicationPlans." + key;
            if (!valid_system_name(key)) {
                r.error(it->first, where, "invalid plan system name");
            }
            if (!r.is_map(it->second, where)) {
                continue;
            }
            Plan plan = read_plan(r, it->second, where);
            plan.source = r.at(it->first);
            if (plan.name.empty()) {
                plan.name = key;
            }
            product.plans.emplace(key, std::move(plan));
        }
    }
    read_policies(r, spec, product);
    add_hits(product.metrics, product.source);
    if (!first_definition(r, doc, seen, "product", system_name, product.source)) {
        return;
    }
    if (auto cr = r.str(r.child(doc, "metadata"), "name", "metadata", false)) {
        pending.product_names[*cr] = system_name;
    }
    fleet.desired.products.emplace(system_name, std::move(product));
}

void read_backend(Reader& r,
                  const YAML::Node& doc,
                  Fleet& fleet,
                  std::map<std::string, Source>& seen) {
    const YAML::Node spec = r.child(doc, "spec");
    if (!spec.IsMap()) {
        r.error(spec.IsDefined() ? spec : doc, "spec", "is required and must be a mapping");
        return;
    }
    r.only(spec, "spec",
           {"name", "systemName", "description", "privateBaseURL", "mappingRules", "metrics",
            "methods", "providerAccountRef"});
    Backend backend;
    backend.source = r.at(doc);
    backend.name = r.str(spec, "name", "spec", true).value_or("");
    std::string system_name = r.str(spec, "systemName", "spec", false).value_or("");
    if (system_name.empty()) {
        system_name = operator_default_system_name(backend.name);
    }
    if (!system_name.empty() && !valid_system_name(system_name)) {
        r.error(spec, "spec.systemName", "'" + system_name + "' is not a valid 3scale system name");
    }
    backend.description = r.str(spec, "description", "spec", false).value_or("");
    if (auto url = r.str(spec, "privateBaseURL", "spec", true)) {
        if (auto normalized = normalize_url(*url)) {
            backend.private_endpoint = *normalized;
        } else {
            r.error(r.child(spec, "privateBaseURL"), "spec.privateBaseURL",
                    "must be an http, https, ws or wss URL (got '" + *url + "')");
        }
    }
    if (r.child(spec, "providerAccountRef").IsDefined()) {
        r.notice(r.child(spec, "providerAccountRef"), "spec.providerAccountRef",
                 "ignored: tandem applies every backend to every instance of the fleet");
    }
    read_metrics(r, spec, "metrics", false, backend.metrics);
    read_metrics(r, spec, "methods", true, backend.methods);
    read_mapping_rules(r, spec, backend.mapping_rules);
    add_hits(backend.metrics, backend.source);
    if (!first_definition(r, doc, seen, "backend", system_name, backend.source)) {
        return;
    }
    fleet.desired.backends.emplace(system_name, std::move(backend));
}

std::string ref_name(Reader& r, const YAML::Node& spec, const char* key, const std::string& path) {
    const YAML::Node ref = r.child(spec, key);
    if (!ref.IsDefined() || ref.IsNull()) {
        r.error(spec, path + "." + key, "is required");
        return {};
    }
    if (!r.is_map(ref, path + "." + key)) {
        return {};
    }
    r.only(ref, path + "." + key, {"name", "namespace"});
    return r.str(ref, "name", path + "." + key, true).value_or("");
}

std::string metadata_name(Reader& r, const YAML::Node& doc) {
    const YAML::Node metadata = r.child(doc, "metadata");
    if (!metadata.IsDefined()) {
        r.error(doc, "metadata.name", "is required (other resources reference this one by it)");
        return {};
    }
    return r.str(metadata, "name", "metadata", true).value_or("");
}

std::string read_line_of(const fs::path& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) {
        return {};
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())) != 0) {
        line.pop_back();
    }
    return line;
}

void read_secret(Reader& r, const YAML::Node& doc, const fs::path& base, Pending& pending) {
    const std::string name = metadata_name(r, doc);
    RawSecret secret;
    secret.source = r.at(doc);
    const YAML::Node string_data = r.child(doc, "stringData");
    if (r.is_map(string_data, "stringData")) {
        for (auto it = string_data.begin(); it != string_data.end(); ++it) {
            secret.values[it->first.Scalar()] = it->second.IsScalar() ? it->second.Scalar() : "";
        }
    }
    const YAML::Node data = r.child(doc, "data");
    if (r.is_map(data, "data")) {
        for (auto it = data.begin(); it != data.end(); ++it) {
            const std::string text = it->second.IsScalar() ? it->second.Scalar() : "";
            const auto bytes = YAML::DecodeBase64(text);
            if (bytes.empty() && !text.empty()) {
                r.error(it->second, "data." + it->first.Scalar(), "is not valid base64");
                continue;
            }
            secret.values[it->first.Scalar()] = std::string(bytes.begin(), bytes.end());
        }
    }
    // Values from the environment or a file, so real keys need not sit in git:
    //   tandem.3scale.net/env.UserKey: PETSTORE_ACME_KEY
    //   tandem.3scale.net/file.password: /run/secrets/acme-password
    const YAML::Node annotations = r.child(r.child(doc, "metadata"), "annotations");
    if (annotations.IsMap()) {
        for (auto it = annotations.begin(); it != annotations.end(); ++it) {
            const std::string key = it->first.Scalar();
            const std::string value = it->second.IsScalar() ? it->second.Scalar() : "";
            constexpr std::string_view kEnv = "tandem.3scale.net/env.";
            constexpr std::string_view kFile = "tandem.3scale.net/file.";
            if (key.starts_with(kEnv)) {
                const std::string field = key.substr(kEnv.size());
                const char* env = std::getenv(value.c_str());
                if (env == nullptr || *env == '\0') {
                    secret.problems[field] =
                        "environment variable " + value + " is not set or empty";
                } else {
                    secret.values[field] = env;
                }
            } else if (key.starts_with(kFile)) {
                const std::string field = key.substr(kFile.size());
                fs::path path = value;
                if (path.is_relative()) {
                    path = base / path;
                }
                const std::string line = read_line_of(path);
                if (line.empty()) {
                    secret.problems[field] = "cannot read " + path.string() + " (or it is empty)";
                } else {
                    secret.values[field] = line;
                }
            }
        }
    }
    if (!name.empty()) {
        pending.secrets[name] = std::move(secret);
    }
}

void read_account_kinds(Reader& r,
                        const YAML::Node& doc,
                        const std::string& kind,
                        Pending& pending) {
    const std::string name = metadata_name(r, doc);
    const YAML::Node spec = r.child(doc, "spec");
    if (!spec.IsMap()) {
        r.error(spec.IsDefined() ? spec : doc, "spec", "is required and must be a mapping");
        return;
    }
    if (r.child(spec, "providerAccountRef").IsDefined()) {
        r.notice(r.child(spec, "providerAccountRef"), "spec.providerAccountRef",
                 "ignored: tandem applies it to every instance of the fleet");
    }
    if (kind == "DeveloperAccount") {
        r.only(
            spec, "spec",
            {"orgName", "monthlyBillingEnabled", "monthlyChargingEnabled", "providerAccountRef"});
        RawAccount a;
        a.source = r.at(doc);
        a.org_name = r.str(spec, "orgName", "spec", true).value_or("");
        a.billing = r.boolean(spec, "monthlyBillingEnabled", "spec", false);
        a.charging = r.boolean(spec, "monthlyChargingEnabled", "spec", false);
        if (!name.empty()) {
            pending.accounts[name] = a;
        }
    } else if (kind == "DeveloperUser") {
        r.only(spec, "spec",
               {"username", "email", "passwordCredentialsRef", "developerAccountRef", "role",
                "suspended", "providerAccountRef"});
        RawUser u;
        u.source = r.at(doc);
        u.username = r.str(spec, "username", "spec", true).value_or("");
        u.email = r.str(spec, "email", "spec", true).value_or("");
        u.role = r.str(spec, "role", "spec", false).value_or("member");
        if (u.role != "admin" && u.role != "member") {
            r.error(r.child(spec, "role"), "spec.role", "must be admin or member");
        }
        u.suspended = r.boolean(spec, "suspended", "spec", false).value_or(false);
        u.password_secret = ref_name(r, spec, "passwordCredentialsRef", "spec");
        u.account = ref_name(r, spec, "developerAccountRef", "spec");
        pending.users.push_back(u);
    } else {  // Application
        r.only(spec, "spec",
               {"accountCR", "productCR", "applicationPlanName", "name", "description", "suspend",
                "authSecretRef", "providerAccountRef"});
        RawApp a;
        a.source = r.at(doc);
        a.account = ref_name(r, spec, "accountCR", "spec");
        a.product = ref_name(r, spec, "productCR", "spec");
        a.plan = r.str(spec, "applicationPlanName", "spec", true).value_or("");
        a.name = r.str(spec, "name", "spec", true).value_or("");
        a.description = r.str(spec, "description", "spec", true).value_or("");
        a.suspended = r.boolean(spec, "suspend", "spec", false).value_or(false);
        if (!r.child(spec, "authSecretRef").IsDefined()) {
            r.error(spec, "spec.authSecretRef",
                    "is required by tandem: without it every instance would generate different "
                    "keys, and requests would fail wherever the balancer sends them");
        } else {
            a.secret = ref_name(r, spec, "authSecretRef", "spec");
        }
        pending.apps.push_back(a);
    }
}

void read_document(Reader& r,
                   const YAML::Node& doc,
                   Fleet& fleet,
                   std::map<std::string, Source>& seen,
                   Pending& pending,
                   const std::filesystem::path& base) {
    if (!doc.IsDefined() || doc.IsNull()) {
        return;  // an empty document (a trailing ---)
    }
    if (!doc.IsMap()) {
        r.error(doc, "", "a resource must be a mapping with apiVersion, kind and spec");
        return;
    }
    const std::string api = r.str(doc, "apiVersion", "", true).value_or("");
    const std::string kind = r.str(doc, "kind", "", true).value_or("");
    if (api.empty() || kind.empty()) {
        return;
    }
    if (r.child(doc, "status").IsDefined()) {
        r.notice(r.child(doc, "status"), "status",
                 "ignored (it only means something inside Kubernetes)");
    }
    if (api == "v1" && kind == "List") {
        const YAML::Node items = r.child(doc, "items");
        if (!items.IsSequence()) {
            r.error(doc, "items", "a List must have an items list");
            return;
        }
        for (const auto& item : items) {
            read_document(r, item, fleet, seen, pending, base);
        }
        return;
    }
    if (api == "v1" && kind == "Secret") {
        read_secret(r, doc, base, pending);
    } else if (api == kCapabilities &&
               (kind == "DeveloperAccount" || kind == "DeveloperUser" || kind == "Application")) {
        read_account_kinds(r, doc, kind, pending);
    } else if (api == kCapabilities && kind == "Product") {
        read_product(r, doc, fleet, seen, pending);
    } else if (api == kCapabilities && kind == "Backend") {
        read_backend(r, doc, fleet, seen);
    } else if (api == kCapabilities && kind == "ProxyConfigPromote") {
        r.notice(doc, "kind", "ProxyConfigPromote ignored: tandem apply deploys and promotes");
    } else if (api == kCapabilities) {
        r.error(r.child(doc, "kind"), "kind",
                "kind " + kind +
                    " is not supported (tandem reads Product, Backend, DeveloperAccount, "
                    "DeveloperUser, Application and v1 Secret)");
    } else {
        r.error(r.child(doc, "apiVersion"), "apiVersion",
                "unknown resource " + api + "/" + kind + ": expected " + kCapabilities +
                    " Product, Backend, DeveloperAccount, DeveloperUser, Application or a v1 "
                    "Secret");
    }
}

std::optional<std::vector<YAML::Node>> parse_yaml(const fs::path& file, Diagnostics& out) {
    std::ifstream in(file);
    if (!in) {
        out.push_back(
            {Diagnostic::Severity::kError, {file.string(), 0}, "", "cannot read the file"});
        return std::nullopt;
    }
    try {
        return YAML::LoadAll(in);
    } catch (const YAML::Exception& e) {
        out.push_back({Diagnostic::Severity::kError,
                       {file.string(), e.mark.line >= 0 ? e.mark.line + 1 : 0},
                       "",
                       "YAML syntax: " + e.msg});
        return std::nullopt;
    }
}

// ------------------------------------------------------------------------------ HA inputs

// A value in the fleet file's `ha:` / `databases:` sections: a literal string, {env: VAR} or
// {file: PATH} (the whole file, without its trailing newline).
std::optional<std::string> read_value(Reader& r,
                                      const YAML::Node& node,
                                      const std::string& where,
                                      const fs::path& base) {
    if (node.IsScalar()) {
        return node.Scalar();
    }
    if (!node.IsMap()) {
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
std::map<std::string, std::map<std::string, std::string>> read_secret_values(
    Reader& r,
    const YAML::Node& node,
    const std::string& where,
    const fs::path& base,
    const std::set<std::string>& allowed_secrets) {
    std::map<std::string, std::map<std::string, std::string>> out;
    if (!r.is_map(node, where)) {
        return out;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string secret = it->first.Scalar();
        const std::string path = where + "." + secret;
        if (!allowed_secrets.contains(secret)) {
            std::string known;
            for (const auto& a : allowed_secrets) {
                known += (known.empty() ? "" : ", ") + a;
            }
            r.error(it->first, path, "not one of the secrets that belong here (" + known + ")");
            continue;
        }
        if (!r.is_map(it->second, path)) {
            continue;
        }
        auto& keys = out[secret];
        for (auto kv = it->second.begin(); kv != it->second.end(); ++kv) {
            if (auto v = read_value(r, kv->second, path + "." + kv->first.Scalar(), base)) {
                keys[kv->first.Scalar()] = *v;
            }
        }
    }
    return out;
}

// Records the line of every node under `node` by JSON pointer.
void record_lines(const YAML::Node& node,
                  const std::string& pointer,
                  std::map<std::string, int>& lines) {
    lines[pointer] = node.Mark().line + 1;
    if (node.IsMap()) {
        for (auto it = node.begin(); it != node.end(); ++it) {
            std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
            std::string escaped;
            for (const char ch : key) {
                escaped += ch == '~'   ? std::string("~0")
                           : ch == '/' ? std::string("~1")
                                       : std::string(1, ch);
            }
            lines[pointer + "/" + escaped] = it->first.Mark().line + 1;
            record_lines(it->second, pointer + "/" + escaped, lines);
        }
    } else if (node.IsSequence()) {
        for (std::size_t i = 0; i < node.size(); ++i) {
            record_lines(node[i], pointer + "/" + std::to_string(i), lines);
        }
    }
}

void read_apimanager_document(Reader& r,
                              const YAML::Node& doc,
                              const fs::path& base,
                              ApiManagerDoc& out,
                              bool& found,
                              Pending& secrets) {
    if (!doc.IsDefined() || doc.IsNull()) {
        return;
    }
    if (!doc.IsMap()) {
        r.error(doc, "", "a document must be a mapping with apiVersion and kind");
        return;
    }
    const std::string api = r.str(doc, "apiVersion", "", true).value_or("");
    const std::string kind = r.str(doc, "kind", "", true).value_or("");
    if (api == "v1" && kind == "List") {
        const YAML::Node items = r.child(doc, "items");
        if (items.IsSequence()) {
            for (const auto& item : items) {
                read_apimanager_document(r, item, base, out, found, secrets);
            }
        }
        return;
    }
    if (api == "v1" && kind == "Secret") {
        read_secret(r, doc, base, secrets);
        return;
    }
    if (kind == "APIManager") {
        if (api != "apps.3scale.net/v1alpha1") {
            r.error(r.child(doc, "apiVersion"), "apiVersion",
                    "an APIManager is apps.3scale.net/v1alpha1 (got " + api + ")");
            return;
        }
        if (found) {
            r.error(doc, "kind",
                    "a second APIManager: an instance has exactly one (first at " +
                        out.source.file + ":" + std::to_string(out.source.line) + ")");
            return;
        }
        found = true;
        out.source = r.at(doc);
        const YAML::Node metadata = r.child(doc, "metadata");
        out.name = r.str(metadata, "name", "metadata", false).value_or("apimanager");
        out.namespace_name = r.str(metadata, "namespace", "metadata", false).value_or("");
        const YAML::Node annotations = r.child(metadata, "annotations");
        if (annotations.IsMap()) {
            for (auto it = annotations.begin(); it != annotations.end(); ++it) {
                out.annotations[it->first.Scalar()] =
                    it->second.IsScalar() ? it->second.Scalar() : "";
            }
        }
        const YAML::Node spec = r.child(doc, "spec");
        if (!spec.IsMap()) {
            r.error(spec.IsDefined() ? spec : doc, "spec",
                    "is required: an APIManager needs at least spec.wildcardDomain");
            return;
        }
        out.spec = to_json(spec);
        record_lines(spec, "/spec", out.lines);
        return;
    }
    r.notice(doc, "kind",
             "ignored: " + api + "/" + kind +
                 " (an APIManager directory is read for the APIManager "
                 "and v1 Secrets)");
}

std::optional<ApiManagerDoc> read_apimanager(Reader& fleet_reader,
                                             const YAML::Node& node,
                                             const std::string& where,
                                             const fs::path& base,
                                             Diagnostics& diags) {
    if (!node.IsScalar() || node.Scalar().empty()) {
        fleet_reader.error(node, where, "must be the path of a YAML file or a directory of them");
        return std::nullopt;
    }
    fs::path path = node.Scalar();
    if (path.is_relative()) {
        path = base / path;
    }
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        for (const auto& entry : fs::directory_iterator(path, ec)) {
            const auto ext = entry.path().extension();
            if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
                files.push_back(entry.path());
            }
        }
        std::sort(files.begin(), files.end());
    } else if (fs::is_regular_file(path, ec)) {
        files.push_back(path);
    } else {
        fleet_reader.error(node, where, "no such file or directory: " + path.string());
        return std::nullopt;
    }
    ApiManagerDoc out;
    out.path = path;
    bool found = false;
    Pending secrets;
    for (const auto& file : files) {
        auto docs = parse_yaml(file, diags);
        if (!docs) {
            continue;
        }
        Reader r(file.string(), diags);
        for (const auto& doc : *docs) {
            try {
                read_apimanager_document(r, doc, file.parent_path(), out, found, secrets);
            } catch (const YAML::Exception& e) {
                diags.push_back(
                    {Diagnostic::Severity::kError, {file.string(), e.mark.line + 1}, "", e.msg});
            }
        }
    }
    if (!found) {
        fleet_reader.error(node, where,
                           "no APIManager (apps.3scale.net/v1alpha1) in " + path.string());
    }
    for (auto& [name, raw] : secrets.secrets) {
        SecretDoc secret;
        secret.name = name;
        secret.source = raw.source;
        secret.values = raw.values;
        for (const auto& [key, problem] : raw.problems) {
            diags.push_back(
                {Diagnostic::Severity::kError, raw.source, "Secret " + name + "." + key, problem});
        }
        out.secrets.emplace(name, std::move(secret));
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

void read_instance_ha(Reader& r,
                      const YAML::Node& node,
                      const std::string& where,
                      const fs::path& base,
                      Instance& instance,
                      Diagnostics& diags) {
    instance.ha.source = r.at(node);
    if (const YAML::Node am = r.child(node, "apimanager"); am.IsDefined() && !am.IsNull()) {
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
    if (const YAML::Node db = r.child(node, "databases"); db.IsDefined() && !db.IsNull()) {
        instance.ha.databases =
            read_secret_values(r, db, where + ".databases", base, database_secret_names());
    }
}

void read_ha(Reader& r, const YAML::Node& root, const fs::path& base, Fleet& fleet) {
    const YAML::Node ha = r.child(root, "ha");
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
    if (const YAML::Node m = r.child(ha, "mirroredSecrets"); m.IsDefined() && !m.IsNull()) {
        out.mirrored =
            read_secret_values(r, m, "ha.mirroredSecrets", base, mirrored_secret_names());
    }
}

// ------------------------------------------------------------------------------ fleet file

std::optional<std::chrono::milliseconds> parse_duration(const std::string& s) {
    std::int64_t n = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || n <= 0) {
        return std::nullopt;
    }
    const std::string unit(p, s.data() + s.size());
    if (unit == "ms") {
        return std::chrono::milliseconds(n);
    }
    if (unit == "s" || unit.empty()) {
        return std::chrono::seconds(n);
    }
    if (unit == "m") {
        return std::chrono::minutes(n);
    }
    return std::nullopt;
}

void read_token(Reader& r,
                const YAML::Node& node,
                const std::string& where,
                const fs::path& base,
                Instance& instance) {
    if (!node.IsDefined() || node.IsNull()) {
        r.error(node.IsDefined() ? node : YAML::Node(), where,
                "is required: {env: VARIABLE} or {file: /path/to/token}");
        return;
    }
    if (!node.IsMap()) {
        r.error(node, where,
                "must be {env: VARIABLE} or {file: PATH}; a token is never written in the fleet "
                "file itself");
        return;
    }
    r.only(node, where, {"env", "file"});
    const auto env = r.str(node, "env", where, false);
    const auto file = r.str(node, "file", where, false);
    if (env.has_value() == file.has_value()) {
        r.error(node, where, "set exactly one of env, file");
        return;
    }
    if (env) {
        instance.token_source = "env " + *env;
        const char* value = std::getenv(env->c_str());
        if (value == nullptr || *value == '\0') {
            r.error(node, where + ".env",
                    "environment variable " + *env + " is not set or empty (it must hold the " +
                        instance.name + " admin access token)");
            return;
        }
        instance.token = Secret(value);
        return;
    }
    fs::path path = *file;
    if (path.is_relative()) {
        path = base / path;
    }
    instance.token_source = "file " + path.string();
    std::ifstream in(path);
    if (!in) {
        r.error(node, where + ".file", "cannot read token file " + path.string());
        return;
    }
    std::string token;
    std::getline(in, token);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())) != 0) {
        token.pop_back();
    }
    if (token.empty()) {
        r.error(node, where + ".file", "token file is empty: " + path.string());
        return;
    }
    instance.token = Secret(token);
}

void read_instances(Reader& r,
                    const YAML::Node& root,
                    const fs::path& base,
                    Fleet& fleet,
                    const LoadOptions& options,
                    Diagnostics& diags) {
    const YAML::Node instances = r.child(root, "instances");
    if (!instances.IsSequence() || instances.size() == 0) {
        r.error(instances.IsDefined() ? instances : root, "instances",
                "is required: a list of 3scale instances (name, adminUrl, token)");
        return;
    }
    std::map<std::string, int> names;
    std::map<std::string, int> urls;
    for (std::size_t i = 0; i < instances.size(); ++i) {
        const YAML::Node node = instances[i];
        const std::string where = "instances[" + std::to_string(i) + "]";
        if (!r.is_map(node, where)) {
            continue;
        }
        r.only(node, where,
               {"name", "adminUrl", "token", "weight", "caBundle", "insecureSkipTlsVerify",
                "timeout", "concurrency", "apimanager", "zones", "role", "databases"});
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
                r.error(r.child(node, "adminUrl"), where + ".adminUrl",
                        "must be an http:// or https:// URL of the tenant's admin portal");
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
        if (auto ca = r.str(node, "caBundle", where, false)) {
            fs::path path = *ca;
            if (path.is_relative()) {
                path = base / path;
            }
            if (!fs::is_regular_file(path)) {
                r.error(r.child(node, "caBundle"), where + ".caBundle",
                        "cannot read CA bundle " + path.string());
            }
            instance.ca_bundle = path.string();
        }
        if (r.boolean(node, "insecureSkipTlsVerify", where, false).value_or(false)) {
            instance.insecure_skip_tls_verify = true;
            r.notice(r.child(node, "insecureSkipTlsVerify"), where + ".insecureSkipTlsVerify",
                     "WARNING: TLS certificates of instance '" + instance.name +
                         "' will NOT be verified; anyone on the path can read its admin token");
        }
        if (auto t = r.str(node, "timeout", where, false)) {
            if (auto d = parse_duration(*t)) {
                instance.timeout = *d;
            } else {
                r.error(r.child(node, "timeout"), where + ".timeout",
                        "must be a duration such as 30s, 500ms or 2m");
            }
        }
        if (auto c = r.integer(node, "concurrency", where, false)) {
            if (*c < 1 || *c > 64) {
                r.error(r.child(node, "concurrency"), where + ".concurrency",
                        "must be an integer 1..64");
            }
            instance.concurrency = static_cast<int>(*c);
        }
        fleet.instances.push_back(std::move(instance));
    }
}

std::vector<fs::path> resource_files(Reader& r, const YAML::Node& root, const fs::path& base) {
    std::vector<fs::path> files;
    const YAML::Node resources = r.child(root, "resources");
    if (!resources.IsSequence() || resources.size() == 0) {
        r.error(resources.IsDefined() ? resources : root, "resources",
                "is required: a list of files or directories with Product and Backend CRs");
        return files;
    }
    for (std::size_t i = 0; i < resources.size(); ++i) {
        const YAML::Node node = resources[i];
        const std::string where = "resources[" + std::to_string(i) + "]";
        if (!node.IsScalar()) {
            r.error(node, where, "must be a path");
            continue;
        }
        fs::path path = node.Scalar();
        if (path.is_relative()) {
            path = base / path;
        }
        std::error_code ec;
        if (fs::is_directory(path, ec)) {
            std::vector<fs::path> found;
            for (const auto& entry : fs::recursive_directory_iterator(path, ec)) {
                const auto ext = entry.path().extension();
                if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
                    found.push_back(entry.path());
                }
            }
            std::sort(found.begin(), found.end());
            if (found.empty()) {
                r.error(node, where, "directory " + path.string() + " has no .yaml/.yml files");
            }
            files.insert(files.end(), found.begin(), found.end());
        } else if (fs::is_regular_file(path, ec)) {
            files.push_back(path);
        } else {
            r.error(node, where, "no such file or directory: " + path.string());
        }
    }
    return files;
}

// ------------------------------------------------------------------- cross-reference checks

void check_references(Fleet& fleet, Diagnostics& out) {
    const auto err = [&](const Source& s, const std::string& path, const std::string& msg) {
        out.push_back({Diagnostic::Severity::kError, s, path, msg});
    };
    const auto check_owner = [&](const std::map<std::string, Metric>& metrics,
                                 const std::map<std::string, Metric>& methods,
                                 const std::vector<MappingRule>& rules, const Source& owner,
                                 const std::string& kind) {
        for (const auto& [name, m] : methods) {
            if (metrics.contains(name)) {
                err(m.source, "spec.methods." + name,
                    "'" + name +
                        "' is both a metric and a method: system names are unique "
                        "across metrics and methods");
            }
        }
        std::set<std::string> friendly;
        for (const auto* set : {&metrics, &methods}) {
            for (const auto& [name, m] : *set) {
                if (!friendly.insert(m.friendly_name).second) {
                    err(m.source, "spec." + name + ".friendlyName",
                        "friendly name '" + m.friendly_name + "' is used twice in this " + kind +
                            " (3scale requires unique friendly names)");
                }
            }
        }
        for (std::size_t i = 0; i < rules.size(); ++i) {
            const auto& rule = rules[i];
            if (!rule.metric.empty() && !metrics.contains(rule.metric) &&
                !methods.contains(rule.metric)) {
                err(rule.source.line ? rule.source : owner,
                    "spec.mappingRules[" + std::to_string(i) + "].metricMethodRef",
                    "'" + rule.metric + "' is not a metric or method of this " + kind);
            }
        }
    };
    for (auto& [name, backend] : fleet.desired.backends) {
        check_owner(backend.metrics, backend.methods, backend.mapping_rules, backend.source,
                    "backend");
    }
    for (auto& [name, product] : fleet.desired.products) {
        check_owner(product.metrics, product.methods, product.mapping_rules, product.source,
                    "product");
        std::map<std::string, std::string> paths;
        for (const auto& [backend, usage] : product.backend_usages) {
            if (!fleet.desired.backends.contains(backend)) {
                err(usage.source, "spec.backendUsages." + backend,
                    "backend '" + backend +
                        "' is not defined: add its Backend CR to the fleet's resources");
            }
            std::string lower = usage.path;
            std::transform(lower.begin(), lower.end(), lower.begin(),
                           [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            if (auto [it, fresh] = paths.emplace(lower, backend); !fresh) {
                err(usage.source, "spec.backendUsages." + backend + ".path",
                    "path '" + usage.path + "' is also used by backend '" + it->second + "'");
            }
        }
        const auto ref_ok = [&](const MetricRef& ref, const Source& s, const std::string& path) {
            if (ref.system_name.empty()) {
                return;
            }
            if (ref.backend.empty()) {
                if (!product.metrics.contains(ref.system_name) &&
                    !product.methods.contains(ref.system_name)) {
                    err(s, path,
                        "'" + ref.system_name + "' is not a metric or method of product '" + name +
                            "' (for a backend's, set metricMethodRef.backend)");
                }
                return;
            }
            if (!product.backend_usages.contains(ref.backend)) {
                err(s, path,
                    "backend '" + ref.backend + "' is not in this product's backendUsages");
                return;
            }
            const auto b = fleet.desired.backends.find(ref.backend);
            if (b != fleet.desired.backends.end() && !b->second.metrics.contains(ref.system_name) &&
                !b->second.methods.contains(ref.system_name)) {
                err(s, path,
                    "'" + ref.system_name + "' is not a metric or method of backend '" +
                        ref.backend + "'");
            }
        };
        for (const auto& [plan_name, plan] : product.plans) {
            const std::string base = "spec.applicationPlans." + plan_name;
            std::set<std::pair<MetricRef, ratelimit::Period>> periods;
            for (std::size_t i = 0; i < plan.limits.size(); ++i) {
                const auto& l = plan.limits[i];
                const std::string path = base + ".limits[" + std::to_string(i) + "]";
                ref_ok(l.metric, l.source, path + ".metricMethodRef");
                if (!periods.insert({l.metric, l.period}).second) {
                    err(l.source, path,
                        "a second " + std::string(ratelimit::to_string(l.period)) + " limit on '" +
                            l.metric.to_string() +
                            "': 3scale keeps one limit per metric and period");
                }
            }
            for (std::size_t i = 0; i < plan.pricing_rules.size(); ++i) {
                const auto& p = plan.pricing_rules[i];
                const std::string path = base + ".pricingRules[" + std::to_string(i) + "]";
                ref_ok(p.metric, p.source, path + ".metricMethodRef");
                for (std::size_t j = 0; j < i; ++j) {
                    const auto& q = plan.pricing_rules[j];
                    const auto hi_p = p.max.value_or(INT64_MAX);
                    const auto hi_q = q.max.value_or(INT64_MAX);
                    if (q.metric == p.metric && p.min <= hi_q && q.min <= hi_p) {
                        err(p.source, path,
                            "overlaps pricingRules[" + std::to_string(j) + "] of the same metric");
                    }
                }
            }
        }
    }
}

// Accounts are keyed by their admin's username, applications by product and credential; every
// reference and every secret value is checked here.
void resolve_accounts(Fleet& fleet, const Pending& pending, Diagnostics& out) {
    const auto err = [&](const Source& s, const std::string& path, const std::string& msg) {
        out.push_back({Diagnostic::Severity::kError, s, path, msg});
    };
    const auto secret_value = [&](const std::string& secret, const std::string& key,
                                  const Source& s, const std::string& path) -> std::string {
        const auto it = pending.secrets.find(secret);
        if (it == pending.secrets.end()) {
            err(s, path, "Secret '" + secret + "' is not among the resources");
            return {};
        }
        if (auto p = it->second.problems.find(key); p != it->second.problems.end()) {
            err(it->second.source, "Secret " + secret + "." + key, p->second);
            return {};
        }
        const auto v = it->second.values.find(key);
        if (v == it->second.values.end() || v->second.empty()) {
            err(it->second.source, "Secret " + secret,
                "has no '" + key +
                    "' value (stringData, base64 data, or an annotation "
                    "tandem.3scale.net/env." +
                    key + " / tandem.3scale.net/file." + key + ")");
            return {};
        }
        return v->second;
    };
    std::map<std::string, std::string> account_key;  // CR name -> admin username
    for (const auto& [cr, raw] : pending.accounts) {
        std::string admin;
        for (const auto& u : pending.users) {
            if (u.account == cr && u.role == "admin" && (admin.empty() || u.username < admin)) {
                admin = u.username;
            }
        }
        if (admin.empty()) {
            err(raw.source, "DeveloperAccount " + cr,
                "needs a DeveloperUser with role admin: its username identifies the account on "
                "every instance (accounts have no other natural key in 3scale)");
            continue;
        }
        account_key[cr] = admin;
        Account a;
        a.org_name = raw.org_name;
        a.monthly_billing_enabled = raw.billing;
        a.monthly_charging_enabled = raw.charging;
        a.source = raw.source;
        fleet.desired.accounts[admin] = a;
    }
    static const std::regex kEmail(R"(^[^@\s]+@[^@\s]+\.[^@\s]+$)");
    std::map<std::string, Source> usernames;
    for (const auto& u : pending.users) {
        if (!pending.accounts.contains(u.account)) {
            err(u.source, "spec.developerAccountRef.name",
                "no DeveloperAccount named '" + u.account + "'");
            continue;
        }
        if (auto [it, fresh] = usernames.emplace(u.username, u.source); !fresh) {
            err(u.source, "spec.username",
                "username '" + u.username + "' is already used at " + it->second.file + ":" +
                    std::to_string(it->second.line) + " (3scale usernames are unique)");
        }
        if (!u.email.empty() && !std::regex_match(u.email, kEmail)) {
            err(u.source, "spec.email", "'" + u.email + "' is not an email address");
        }
        const std::string password =
            secret_value(u.password_secret, "password", u.source, "spec.passwordCredentialsRef");
        if (!password.empty() && password.size() < 6) {
            err(u.source, "spec.passwordCredentialsRef",
                "the password must have at least 6 characters");
        }
        const auto key = account_key.find(u.account);
        if (key == account_key.end()) {
            continue;
        }
        User user;
        user.email = u.email;
        user.role = u.role;
        user.suspended = u.suspended;
        user.password = password;
        user.source = u.source;
        fleet.desired.accounts[key->second].users[u.username] = user;
    }
    static const std::regex kUserKey(R"(^[\w\-.+=]{1,256}$)");
    const auto printable = [](const std::string& v, std::size_t lo, std::size_t hi) {
        return v.size() >= lo && v.size() <= hi &&
               std::all_of(v.begin(), v.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
    };
    std::map<std::string, Source> credentials;
    for (const auto& a : pending.apps) {
        const auto acc = account_key.find(a.account);
        if (!pending.accounts.contains(a.account)) {
            err(a.source, "spec.accountCR.name", "no DeveloperAccount named '" + a.account + "'");
        }
        std::string product = a.product;
        if (auto it = pending.product_names.find(a.product); it != pending.product_names.end()) {
            product = it->second;
        }
        const auto p = fleet.desired.products.find(product);
        if (p == fleet.desired.products.end()) {
            err(a.source, "spec.productCR.name", "no Product named '" + a.product + "'");
            continue;
        }
        if (!a.plan.empty() && !p->second.plans.contains(a.plan)) {
            err(a.source, "spec.applicationPlanName",
                "product '" + product + "' has no application plan '" + a.plan + "'");
        }
        Application app;
        app.account = acc == account_key.end() ? "" : acc->second;
        app.product = product;
        app.plan = a.plan;
        app.name = a.name;
        app.description = a.description;
        app.suspended = a.suspended;
        app.source = a.source;
        if (a.secret.empty()) {
            continue;
        }
        if (p->second.backend_version.value_or("1") == "1") {
            app.user_key = secret_value(a.secret, "UserKey", a.source, "spec.authSecretRef");
            if (!app.user_key.empty() && !std::regex_match(app.user_key, kUserKey)) {
                err(a.source, "spec.authSecretRef",
                    "the UserKey of Secret '" + a.secret +
                        "' is not a valid 3scale user_key (letters, digits, - _ . + =, at most "
                        "256)");
            }
        } else {
            app.application_id =
                secret_value(a.secret, "ApplicationID", a.source, "spec.authSecretRef");
            const std::string key =
                secret_value(a.secret, "ApplicationKey", a.source, "spec.authSecretRef");
            if (!app.application_id.empty() && !printable(app.application_id, 4, 255)) {
                err(a.source, "spec.authSecretRef",
                    "the ApplicationID of Secret '" + a.secret +
                        "' must be 4..255 printable characters");
            }
            if (!key.empty()) {
                if (!printable(key, 5, 255)) {
                    err(a.source, "spec.authSecretRef",
                        "the ApplicationKey of Secret '" + a.secret +
                            "' must be 5..255 printable characters");
                }
                app.application_keys.push_back(key);
            }
        }
        if (app.credential().empty() || app.account.empty()) {
            continue;
        }
        // 3scale keeps user_key and application_id unique across the tenant
        if (auto [it, fresh] = credentials.emplace(app.credential(), a.source); !fresh) {
            err(a.source, "spec.authSecretRef",
                "the same credentials as the Application at " + it->second.file + ":" +
                    std::to_string(it->second.line) + " (3scale requires them unique)");
            continue;
        }
        fleet.desired.applications[product + "/" + app.credential()] = app;
    }
}

}  // namespace

std::expected<Fleet, Diagnostics> load_fleet(const std::filesystem::path& file,
                                             const LoadOptions& options) {
    Diagnostics diags;
    Fleet fleet;
    fleet.file = file;
    const fs::path base = file.has_parent_path() ? file.parent_path() : fs::path(".");
    auto docs = parse_yaml(file, diags);
    if (!docs) {
        return std::unexpected(diags);
    }
    Reader r(file.string(), diags);
    if (docs->size() != 1 || !(*docs)[0].IsMap()) {
        diags.push_back({Diagnostic::Severity::kError,
                         {file.string(), 1},
                         "",
                         "a fleet file is one YAML mapping (apiVersion: tandem/v1, kind: Fleet)"});
        return std::unexpected(diags);
    }
    const YAML::Node root = (*docs)[0];
    r.only(root, "", {"apiVersion", "kind", "instances", "resources", "split", "ha"});
    const auto api = r.str(root, "apiVersion", "", true);
    const auto kind = r.str(root, "kind", "", true);
    if (api && *api != "tandem/v1") {
        r.error(r.child(root, "apiVersion"), "apiVersion", "must be tandem/v1");
    }
    if (kind && *kind != "Fleet") {
        r.error(r.child(root, "kind"), "kind", "must be Fleet");
    }
    read_instances(r, root, base, fleet, options, diags);
    read_ha(r, root, base, fleet);
    const YAML::Node split = r.child(root, "split");
    if (r.is_map(split, "split")) {
        r.only(split, "split", {"policy", "products"});
        fleet.split_source = r.at(split);
        const auto policy_of = [&](const YAML::Node& node, const std::string& path) {
            const std::string text = node.IsScalar() ? node.Scalar() : "";
            auto p = ratelimit::parse_split_policy(text);
            if (!p) {
                r.error(node, path,
                        "'" + text + "' is not a split policy: use error, min1, coarsen or none");
            }
            return p.value_or(ratelimit::SplitPolicy::kError);
        };
        if (const YAML::Node p = r.child(split, "policy"); p.IsDefined()) {
            fleet.split_policy = policy_of(p, "split.policy");
        }
        const YAML::Node products = r.child(split, "products");
        if (r.is_map(products, "split.products")) {
            for (auto it = products.begin(); it != products.end(); ++it) {
                fleet.product_split_policies[it->first.Scalar()] =
                    policy_of(it->second, "split.products." + it->first.Scalar());
            }
        }
    }
    std::map<std::string, Source> seen;
    Pending pending;
    const bool read_resources = options.require_resources || r.child(root, "resources").IsDefined();
    for (const auto& resource :
         read_resources ? resource_files(r, root, base) : std::vector<fs::path>{}) {
        auto resource_docs = parse_yaml(resource, diags);
        if (!resource_docs) {
            continue;
        }
        Reader rr(resource.string(), diags);
        for (const auto& doc : *resource_docs) {
            try {
                read_document(rr, doc, fleet, seen, pending, resource.parent_path());
            } catch (const YAML::Exception& e) {
                diags.push_back({Diagnostic::Severity::kError,
                                 {resource.string(), e.mark.line + 1},
                                 "",
                                 e.msg});
            }
        }
    }
    check_references(fleet, diags);
    resolve_accounts(fleet, pending, diags);
    for (const auto& [name, policy] : fleet.product_split_policies) {
        if (!fleet.desired.products.contains(name)) {
            diags.push_back({Diagnostic::Severity::kError, fleet.split_source,
                             "split.products." + name,
                             "no product '" + name + "' in the resources"});
        }
    }
    if (has_errors(diags)) {
        return std::unexpected(diags);
    }
    fleet.notices = std::move(diags);
    return fleet;
}

}  // namespace config
