// Cross-references between the CRs: checked and resolved once every document is read.
#include "references.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "config/normalize.hpp"

namespace config {

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
                err(rule.ref_source.line != 0 ? rule.ref_source : owner,
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
                ref_ok(l.metric, l.ref_source.line != 0 ? l.ref_source : l.source,
                       path + ".metricMethodRef");
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
                ref_ok(p.metric, p.ref_source.line != 0 ? p.ref_source : p.source,
                       path + ".metricMethodRef");
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

std::string secret_value(const Pending& pending,
                         const std::string& secret,
                         const std::string& key,
                         const Source& source,
                         const std::string& path,
                         Diagnostics& out) {
    const auto it = pending.secrets.find(secret);
    if (it == pending.secrets.end()) {
        out.push_back({Diagnostic::Severity::kError, source, path,
                       "Secret '" + secret + "' is not among the resources"});
        return {};
    }
    if (auto p = it->second.problems.find(key); p != it->second.problems.end()) {
        out.push_back({Diagnostic::Severity::kError, it->second.source,
                       "Secret " + secret + "." + key, p->second});
        return {};
    }
    const auto v = it->second.values.find(key);
    if (v == it->second.values.end() || v->second.empty()) {
        out.push_back({Diagnostic::Severity::kError, it->second.source, "Secret " + secret,
                       "has no '" + key +
                           "' value (stringData, base64 data, or an annotation "
                           "tandem.3scale.net/env." +
                           key + " / tandem.3scale.net/file." + key + ")"});
        return {};
    }
    return v->second;
}

void resolve_product_secrets(Fleet& fleet, const Pending& pending, Diagnostics& out) {
    for (const auto& ref : pending.product_secrets) {
        const auto product = fleet.desired.products.find(ref.product);
        if (product == fleet.desired.products.end()) {
            continue;  // its definition was refused
        }
        const bool issuer = ref.policy < 0;
        const std::string value =
            secret_value(pending, ref.secret, issuer ? "issuerEndpoint" : "configuration",
                         ref.source, ref.path, out);
        if (value.empty()) {
            continue;
        }
        if (issuer) {
            if (!valid_issuer_endpoint(value)) {
                out.push_back({Diagnostic::Severity::kError, ref.source, ref.path,
                               "the issuerEndpoint of Secret '" + ref.secret +
                                   "' must be an http:// or https:// URL (the value is not "
                                   "shown: it carries client credentials)"});
            }
            product->second.proxy.fields["oidc_issuer_endpoint"] = value;
            continue;
        }
        const auto json = nlohmann::json::parse(value, nullptr, false);
        if (json.is_discarded() || !json.is_object()) {
            out.push_back({Diagnostic::Severity::kError, ref.source, ref.path,
                           "the configuration of Secret '" + ref.secret +
                               "' must be a JSON object (the policy's configuration; the value "
                               "is not shown)"});
            continue;
        }
        product->second.policies.at(static_cast<std::size_t>(ref.policy)).configuration =
            json.dump();
    }
}

void resolve_accounts(Fleet& fleet, const Pending& pending, Diagnostics& out) {
    const auto err = [&](const Source& s, const std::string& path, const std::string& msg) {
        out.push_back({Diagnostic::Severity::kError, s, path, msg});
    };
    // the field's own line when it was written, else the document's
    const auto at = [](const Source& field, const Source& doc) {
        return field.line != 0 ? field : doc;
    };
    const auto secret_value = [&](const std::string& secret, const std::string& key,
                                  const Source& s, const std::string& path) {
        return config::secret_value(pending, secret, key, s, path, out);
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
            err(at(u.account_source, u.source), "spec.developerAccountRef.name",
                "no DeveloperAccount named '" + u.account + "'");
            continue;
        }
        if (auto [it, fresh] = usernames.emplace(u.username, u.source); !fresh) {
            err(at(u.username_source, u.source), "spec.username",
                "username '" + u.username + "' is already used at " + it->second.file + ":" +
                    std::to_string(it->second.line) + " (3scale usernames are unique)");
        }
        if (!u.email.empty() && !std::regex_match(u.email, kEmail)) {
            err(at(u.email_source, u.source), "spec.email",
                "'" + u.email + "' is not an email address");
        }
        const Source password_at = at(u.password_source, u.source);
        const std::string password =
            secret_value(u.password_secret, "password", password_at, "spec.passwordCredentialsRef");
        if (!password.empty() && password.size() < 6) {
            err(password_at, "spec.passwordCredentialsRef",
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
    resolve_applications(fleet, pending, account_key, out);
}

}  // namespace config
