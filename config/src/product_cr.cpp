// Product and Backend CRs (capabilities.3scale.net/v1beta1) -> the desired state's products and
// backends: metrics, methods, mapping rules, application plans with limits and pricing rules,
// the policy chain and the deployment's authentication settings.
#include "product_cr.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "config/normalize.hpp"
#include "product_gateway.hpp"

namespace config {

using Json = nlohmann::json;

namespace {

constexpr const char* kSplitAnnotation = "tandem.3scale.net/split-policy";

std::optional<std::string> decimal(YamlReader& r,
                                   const YamlNode& map,
                                   const std::string& key,
                                   const std::string& path,
                                   bool required) {
    auto s = r.str(map, key, path, required);
    if (!s) {
        return std::nullopt;
    }
    auto d = normalize_decimal(*s);
    if (!d) {
        r.error(r.child(map, key), YamlReader::join(path, key),
                "must be a non-negative decimal such as \"10\" or \"0.25\" (got '" + *s + "')");
    }
    return d;
}

// ---- pieces of both kinds -----------------------------------------------------------------------

void read_metrics(YamlReader& r,
                  const YamlNode& spec,
                  const std::string& key,
                  bool methods,
                  std::map<std::string, Metric>& out) {
    const std::string path = "spec." + key;
    const YamlNode node = r.child(spec, key);
    if (!r.is_map(node, path)) {
        return;
    }
    for (const auto& it : node.entries()) {
        const std::string name = it.first.scalar();
        const std::string where = path + "." + name;
        if (!valid_system_name(name)) {
            r.error(it.first, where,
                    "invalid system name: 3scale accepts letters, digits, '_', '-' and '/', at "
                    "least two characters, no dots");
        }
        if (out.contains(name)) {
            r.error(it.first, where, "defined twice");
        }
        const YamlNode m = it.second;
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
        metric.source = r.at(it.first);
        out.emplace(name, std::move(metric));
    }
}

void read_mapping_rules(YamlReader& r, const YamlNode& spec, std::vector<MappingRule>& out) {
    const YamlNode rules = r.child(spec, "mappingRules");
    if (!rules.defined() || rules.null()) {
        return;
    }
    if (!rules.is_sequence()) {
        r.error(rules, "spec.mappingRules", "must be a list");
        return;
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const YamlNode rule = rules[i];
        const std::string where = "spec.mappingRules[" + std::to_string(i) + "]";
        if (!r.is_map(rule, where)) {
            continue;
        }
        r.only(rule, where, {"httpMethod", "pattern", "metricMethodRef", "increment", "last"});
        MappingRule m;
        m.source = r.at(rule);
        m.ref_source = r.at_key(rule, "metricMethodRef");
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

std::optional<MetricRef> read_metric_ref(YamlReader& r,
                                         const YamlNode& parent,
                                         const std::string& where) {
    const YamlNode ref = r.child(parent, "metricMethodRef");
    const std::string path = where + ".metricMethodRef";
    if (!ref.defined() || ref.null()) {
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
bool first_definition(YamlReader& r,
                      const YamlNode& doc,
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

// ---- Product ------------------------------------------------------------------------------------

Plan read_plan(YamlReader& r, const YamlNode& node, const std::string& where) {
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
    plan.setup_fee = decimal(r, node, "setupFee", where, false);
    plan.cost_per_month = decimal(r, node, "costMonth", where, false);
    if (auto published = r.boolean(node, "published", where, false)) {
        plan.published = *published;
    } else if (auto state = r.str(node, "state", where, false)) {  // toolbox exports
        if (*state != "published" && *state != "hidden") {
            r.error(r.child(node, "state"), where + ".state", "must be published or hidden");
        }
        plan.published = *state == "published";
    }
    const YamlNode limits = r.child(node, "limits");
    if (limits.defined() && !limits.null() && !limits.is_sequence()) {
        r.error(limits, where + ".limits", "must be a list");
    } else if (limits.is_sequence()) {
        for (std::size_t i = 0; i < limits.size(); ++i) {
            const YamlNode l = limits[i];
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
            limit.ref_source = r.at_key(l, "metricMethodRef");
            if (auto ref = read_metric_ref(r, l, lw)) {
                limit.metric = *ref;
            }
            plan.limits.push_back(std::move(limit));
        }
    }
    const YamlNode pricing = r.child(node, "pricingRules");
    if (pricing.defined() && !pricing.null() && !pricing.is_sequence()) {
        r.error(pricing, where + ".pricingRules", "must be a list");
    } else if (pricing.is_sequence()) {
        for (std::size_t i = 0; i < pricing.size(); ++i) {
            const YamlNode p = pricing[i];
            const std::string pw = where + ".pricingRules[" + std::to_string(i) + "]";
            if (!r.is_map(p, pw)) {
                continue;
            }
            r.only(p, pw, {"from", "to", "pricePerUnit", "metricMethodRef"});
            PricingRule rule;
            rule.source = r.at(p);
            rule.min = r.integer(p, "from", pw, true).value_or(1);
            rule.max = r.integer(p, "to", pw, true);
            rule.cost_per_unit = decimal(r, p, "pricePerUnit", pw, true).value_or("0.0");
            if (rule.min < 1) {
                r.error(r.child(p, "from"), pw + ".from", "must be at least 1");
            }
            if (rule.max && *rule.max < rule.min) {
                r.error(r.child(p, "to"), pw + ".to", "must not be lower than from");
            }
            rule.ref_source = r.at_key(p, "metricMethodRef");
            if (auto ref = read_metric_ref(r, p, pw)) {
                rule.metric = *ref;
            }
            plan.pricing_rules.push_back(std::move(rule));
        }
    }
    return plan;
}

}  // namespace

void read_product(YamlReader& r,
                  const YamlNode& doc,
                  Fleet& fleet,
                  std::map<std::string, Source>& seen,
                  Pending& pending) {
    const YamlNode spec = r.spec(doc);
    if (!spec.defined()) {
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
        r.error(r.child(spec, "systemName").defined() ? r.child(spec, "systemName") : spec,
                "spec.systemName",
                "'" + system_name +
                    "' is not a valid 3scale system name: letters, digits, '_', '-' and '/', at "
                    "least two characters, no dots");
    }
    product.description = r.str(spec, "description", "spec", false).value_or("");
    const YamlNode annotations = r.child(r.child(doc, "metadata"), "annotations");
    if (auto policy = r.str(annotations, kSplitAnnotation, "metadata.annotations", false)) {
        product.split_policy = ratelimit::parse_split_policy(*policy);
        if (!product.split_policy) {
            r.error(r.child(annotations, kSplitAnnotation),
                    std::string("metadata.annotations.") + kSplitAnnotation,
                    "'" + *policy + "' is not a split policy: use error, min1, coarsen or none");
        }
    }
    std::vector<ProductSecretRef> refs;
    read_deployment(r, spec, product, refs);
    read_metrics(r, spec, "metrics", false, product.metrics);
    read_metrics(r, spec, "methods", true, product.methods);
    read_mapping_rules(r, spec, product.mapping_rules);
    const YamlNode usages = r.child(spec, "backendUsages");
    if (r.is_map(usages, "spec.backendUsages")) {
        for (const auto& it : usages.entries()) {
            const std::string where = "spec.backendUsages." + it.first.scalar();
            if (!r.is_map(it.second, where)) {
                continue;
            }
            r.only(it.second, where, {"path"});
            BackendUsage usage;
            usage.source = r.at(it.first);
            usage.path = r.str(it.second, "path", where, true).value_or("/");
            if (usage.path.empty() || usage.path.front() != '/') {
                r.error(r.child(it.second, "path"), where + ".path", "must start with '/'");
            }
            while (usage.path.size() > 1 && usage.path.back() == '/') {
                usage.path.pop_back();  // porta stores "/v1/" as "/v1"
            }
            product.backend_usages.emplace(it.first.scalar(), std::move(usage));
        }
    }
    const YamlNode plans = r.child(spec, "applicationPlans");
    if (r.is_map(plans, "spec.applicationPlans")) {
        for (const auto& it : plans.entries()) {
            const std::string key = it.first.scalar();
            const std::string where = "spec.applicationPlans." + key;
            if (!valid_system_name(key)) {
                r.error(it.first, where, "invalid plan system name");
            }
            if (!r.is_map(it.second, where)) {
                continue;
            }
            Plan plan = read_plan(r, it.second, where);
            plan.source = r.at(it.first);
            if (plan.name.empty()) {
                plan.name = key;
            }
            product.plans.emplace(key, std::move(plan));
        }
    }
    read_policies(r, spec, product, refs);
    add_hits(product.metrics, product.source);
    if (!first_definition(r, doc, seen, "product", system_name, product.source)) {
        return;
    }
    if (auto cr = r.str(r.child(doc, "metadata"), "name", "metadata", false)) {
        pending.product_names[*cr] = system_name;
    }
    for (auto& ref : refs) {
        ref.product = system_name;
        pending.product_secrets.push_back(std::move(ref));
    }
    fleet.desired.products.emplace(system_name, std::move(product));
}

// ---- Backend ------------------------------------------------------------------------------------

void read_backend(YamlReader& r,
                  const YamlNode& doc,
                  Fleet& fleet,
                  std::map<std::string, Source>& seen) {
    const YamlNode spec = r.spec(doc);
    if (!spec.defined()) {
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
                    "must be an http, https, ws or wss URL (got '" + *url +
                        "': " + url_problem(*url) + ")");
        }
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

}  // namespace config
