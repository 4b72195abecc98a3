// Developer accounts, users, applications and the v1 Secrets they take values from.
#include "account_cr.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace config {

namespace fs = std::filesystem;

namespace {

// A Secret value from a file: its whole content, as `kubectl create secret --from-file` takes
// it, without the trailing newline an editor adds.
std::string read_value_of(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return {};
    }
    std::string value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())) != 0) {
        value.pop_back();
    }
    return value;
}

std::string ref_name(YamlReader& r,
                     const YamlNode& spec,
                     const char* key,
                     const std::string& path) {
    const YamlNode ref = r.child(spec, key);
    if (!ref.defined() || ref.null()) {
        r.error(spec, path + "." + key, "is required");
        return {};
    }
    if (!r.is_map(ref, path + "." + key)) {
        return {};
    }
    r.only(ref, path + "." + key, {"name", "namespace"});
    return r.str(ref, "name", path + "." + key, true).value_or("");
}

}  // namespace

std::string metadata_name(YamlReader& r, const YamlNode& doc) {
    const YamlNode metadata = r.child(doc, "metadata");
    if (!metadata.defined()) {
        r.error(doc, "metadata.name", "is required (other resources reference this one by it)");
        return {};
    }
    return r.str(metadata, "name", "metadata", true).value_or("");
}

void read_secret(YamlReader& r, const YamlNode& doc, const fs::path& base, Pending& pending) {
    const std::string name = metadata_name(r, doc);
    RawSecret secret;
    secret.source = r.at(doc);
    const YamlNode string_data = r.child(doc, "stringData");
    if (r.is_map(string_data, "stringData")) {
        for (const auto& it : string_data.entries()) {
            secret.values[it.first.scalar()] = it.second.is_scalar() ? it.second.scalar() : "";
        }
    }
    const YamlNode data = r.child(doc, "data");
    if (r.is_map(data, "data")) {
        for (const auto& it : data.entries()) {
            const std::string text = it.second.is_scalar() ? it.second.scalar() : "";
            auto bytes = decode_base64(text);
            if (!bytes) {
                r.error(it.second, "data." + it.first.scalar(), "is not valid base64");
                continue;
            }
            secret.values[it.first.scalar()] = std::move(*bytes);
        }
    }
    // Values from the environment or a file, so real keys need not sit in git:
    //   tandem.3scale.net/env.UserKey: PETSTORE_ACME_KEY
    //   tandem.3scale.net/file.password: /run/secrets/acme-password
    const YamlNode annotations = r.child(r.child(doc, "metadata"), "annotations");
    if (annotations.is_map()) {
        for (const auto& it : annotations.entries()) {
            const std::string key = it.first.scalar();
            const std::string value = it.second.is_scalar() ? it.second.scalar() : "";
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
                std::string content = read_value_of(path);
                if (content.empty()) {
                    secret.problems[field] = "cannot read " + path.string() + " (or it is empty)";
                } else {
                    secret.values[field] = std::move(content);
                }
            }
        }
    }
    if (!name.empty()) {
        pending.secrets[name] = std::move(secret);
    }
}

void read_account_kinds(YamlReader& r,
                        const YamlNode& doc,
                        const std::string& kind,
                        Pending& pending) {
    const std::string name = metadata_name(r, doc);
    const YamlNode spec = r.spec(doc);
    if (!spec.defined()) {
        return;
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
        u.username_source = r.at_key(spec, "username");
        u.email_source = r.at_key(spec, "email");
        u.password_source = r.at_key(spec, "passwordCredentialsRef");
        u.account_source = r.at_key(spec, "developerAccountRef");
        u.password_secret = ref_name(r, spec, "passwordCredentialsRef", "spec");
        u.account = ref_name(r, spec, "developerAccountRef", "spec");
        pending.users.push_back(u);
    } else if (kind == "ApplicationAuth") {
        r.only(spec, "spec",
               {"applicationCRName", "authSecretRef", "generateSecret", "providerAccountRef"});
        RawAppAuth a;
        a.source = r.at(doc);
        a.application = r.str(spec, "applicationCRName", "spec", true).value_or("");
        a.application_source = r.at_key(spec, "applicationCRName");
        a.secret = ref_name(r, spec, "authSecretRef", "spec");
        a.secret_source = r.at_key(spec, "authSecretRef");
        a.generate = r.boolean(spec, "generateSecret", "spec", false).value_or(false);
        pending.app_auths.push_back(a);
    } else {  // Application
        r.only(spec, "spec",
               {"accountCR", "productCR", "applicationPlanName", "name", "description", "suspend",
                "authSecretRef", "providerAccountRef"});
        RawApp a;
        a.cr_name = name;
        a.source = r.at(doc);
        a.account = ref_name(r, spec, "accountCR", "spec");
        a.product = ref_name(r, spec, "productCR", "spec");
        a.plan = r.str(spec, "applicationPlanName", "spec", true).value_or("");
        a.name = r.str(spec, "name", "spec", true).value_or("");
        a.description = r.str(spec, "description", "spec", true).value_or("");
        a.suspended = r.boolean(spec, "suspend", "spec", false).value_or(false);
        a.account_source = r.at_key(spec, "accountCR");
        a.product_source = r.at_key(spec, "productCR");
        a.plan_source = r.at_key(spec, "applicationPlanName");
        a.secret_source = r.at_key(spec, "authSecretRef");
        a.name_source = r.at_key(spec, "name");
        if (r.child(spec, "authSecretRef").defined()) {
            a.secret = ref_name(r, spec, "authSecretRef", "spec");
        }
        pending.apps.push_back(a);
    }
}

}  // namespace config
