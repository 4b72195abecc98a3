// Application and ApplicationAuth CRs -> desired applications: identity, plan, and where the
// credentials come from (a Secret, or tandem decides them for the fleet).
#include <algorithm>
#include <regex>
#include <set>
#include <tuple>

#include "references.hpp"

namespace config {

namespace {

bool printable(const std::string& v, std::size_t lo, std::size_t hi) {
    return v.size() >= lo && v.size() <= hi &&
           std::all_of(v.begin(), v.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
}

bool valid_user_key(const std::string& v) {
    static const std::regex kUserKey(R"(^[\w\-.+=]{1,256}$)");
    return std::regex_match(v, kUserKey);
}

std::string bad_user_key(const std::string& secret) {
    return "the UserKey of Secret '" + secret +
           "' is not a valid 3scale user_key (letters, digits, - _ . + =, at most 256)";
}

std::string where(const Source& s) {
    return s.file + ":" + std::to_string(s.line);
}

// The credentials an authSecretRef Secret gives: all of them (user_key, or application_id and a
// key).
void from_secret(
    const Pending& pending, const RawApp& a, bool user_key, Application& app, Diagnostics& out) {
    const Source at = a.secret_source.line != 0 ? a.secret_source : a.source;
    const auto err = [&](const std::string& msg) {
        out.push_back({Diagnostic::Severity::kError, at, "spec.authSecretRef", msg});
    };
    if (user_key) {
        app.user_key = secret_value(pending, a.secret, "UserKey", at, "spec.authSecretRef", out);
        if (!app.user_key.empty() && !valid_user_key(app.user_key)) {
            err(bad_user_key(a.secret));
        }
        return;
    }
    app.application_id =
        secret_value(pending, a.secret, "ApplicationID", at, "spec.authSecretRef", out);
    const std::string key =
        secret_value(pending, a.secret, "ApplicationKey", at, "spec.authSecretRef", out);
    if (!app.application_id.empty() && !printable(app.application_id, 4, 255)) {
        err("the ApplicationID of Secret '" + a.secret + "' must be 4..255 printable characters");
    }
    if (!key.empty()) {
        if (!printable(key, 5, 255)) {
            err("the ApplicationKey of Secret '" + a.secret +
                "' must be 5..255 printable characters");
        }
        app.application_keys.push_back(key);
    }
}

// The key an ApplicationAuth gives (the operator's shape: UserKey, or one ApplicationKey added
// to those the application has); without a value and with generateSecret, tandem decides.
void from_auth(const Pending& pending,
               const RawAppAuth& auth,
               bool user_key,
               Application& app,
               Diagnostics& out) {
    app.decide_credentials = true;
    const std::string field = user_key ? "UserKey" : "ApplicationKey";
    const auto secret = pending.secrets.find(auth.secret);
    const bool has_value =
        secret != pending.secrets.end() &&
        (secret->second.values.contains(field) || secret->second.problems.contains(field));
    if (!has_value && auth.generate) {
        return;  // generateSecret: tandem decides (it cannot write the Secret back)
    }
    const Source at = auth.secret_source.line != 0 ? auth.secret_source : auth.source;
    const std::string value =
        secret_value(pending, auth.secret, field, at, "spec.authSecretRef", out);
    if (value.empty()) {
        return;
    }
    if (user_key) {
        if (!valid_user_key(value)) {
            out.push_back({Diagnostic::Severity::kError, at, "spec.authSecretRef",
                           bad_user_key(auth.secret)});
        }
        app.user_key = value;
        app.decide_credentials = false;
    } else {
        if (!printable(value, 5, 255)) {
            out.push_back({Diagnostic::Severity::kError, at, "spec.authSecretRef",
                           "the ApplicationKey of Secret '" + auth.secret +
                               "' must be 5..255 printable characters"});
        }
        app.application_keys.push_back(value);
    }
}

}  // namespace

void resolve_applications(Fleet& fleet,
                          const Pending& pending,
                          const std::map<std::string, std::string>& account_key,
                          Diagnostics& out) {
    const auto err = [&](const Source& s, const std::string& path, const std::string& msg) {
        out.push_back({Diagnostic::Severity::kError, s, path, msg});
    };
    const auto at = [](const Source& field, const Source& doc) {
        return field.line != 0 ? field : doc;
    };
    // ApplicationAuths by the Application CR they name
    std::map<std::string, const RawAppAuth*> auths;
    std::set<std::string> app_names;
    for (const auto& a : pending.apps) {
        app_names.insert(a.cr_name);
    }
    for (const auto& auth : pending.app_auths) {
        if (!app_names.contains(auth.application)) {
            err(at(auth.application_source, auth.source), "spec.applicationCRName",
                "no Application named '" + auth.application + "'");
        } else if (auto [it, fresh] = auths.emplace(auth.application, &auth); !fresh) {
            err(at(auth.application_source, auth.source), "spec.applicationCRName",
                "Application '" + auth.application + "' already has an ApplicationAuth at " +
                    where(it->second->source));
        }
    }
    std::map<std::string, Source> credentials;
    std::map<std::tuple<std::string, std::string, std::string>, Source> identities;
    for (const auto& a : pending.apps) {
        const auto acc = account_key.find(a.account);
        if (!pending.accounts.contains(a.account)) {
            err(at(a.account_source, a.source), "spec.accountCR.name",
                "no DeveloperAccount named '" + a.account + "'");
        }
        std::string product = a.product;
        if (auto it = pending.product_names.find(a.product); it != pending.product_names.end()) {
            product = it->second;
        }
        const auto p = fleet.desired.products.find(product);
        if (p == fleet.desired.products.end()) {
            err(at(a.product_source, a.source), "spec.productCR.name",
                "no Product named '" + a.product + "'");
            continue;
        }
        if (!a.plan.empty() && !p->second.plans.contains(a.plan)) {
            err(at(a.plan_source, a.source), "spec.applicationPlanName",
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
        const bool user_key = p->second.backend_version.value_or("1") == "1";
        const auto auth = auths.find(a.cr_name);
        if (!a.secret.empty() && auth != auths.end()) {
            err(at(auth->second->application_source, auth->second->source),
                "spec.applicationCRName",
                "Application '" + a.cr_name + "' takes its keys from its authSecretRef '" +
                    a.secret + "' already: use one of the two");
        } else if (!a.secret.empty()) {
            from_secret(pending, a, user_key, app, out);
        } else if (auth != auths.end()) {
            from_auth(pending, *auth->second, user_key, app, out);
        } else {
            app.decide_credentials = true;  // adopted from the instances, else generated
        }
        if (app.account.empty() || (!app.decide_credentials && app.credential().empty())) {
            continue;
        }
        // tandem tells an Application CR's application apart by account, product and name
        if (auto [it, fresh] =
                identities.emplace(std::tuple{app.account, product, app.name}, a.source);
            !fresh) {
            err(at(a.name_source, a.source), "spec.name",
                "another Application of the same account on product '" + product +
                    "' is also named '" + app.name + "' (at " + where(it->second) +
                    "): tandem identifies an application by its account, product and name");
            continue;
        }
        // 3scale keeps user_key and application_id unique across the tenant
        if (!app.credential().empty()) {
            if (auto [it, fresh] = credentials.emplace(app.credential(), a.source); !fresh) {
                err(at(a.secret_source, a.source), "spec.authSecretRef",
                    "the same credentials as the Application at " + where(it->second) +
                        " (3scale requires them unique)");
                continue;
            }
        }
        fleet.desired.applications[app.key()] = app;
    }
}

}  // namespace config
