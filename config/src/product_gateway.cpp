// A Product's gateway: its deployment (APIcast hosted or self-managed, public base URLs), its
// authentication (user key, app id/key, OIDC with its issuer and flows) and its policy chain.
#include "product_gateway.hpp"

#include <cctype>
#include <set>

#include "config/normalize.hpp"

namespace config {

using Json = nlohmann::json;

namespace {

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

// A decimal given as a string ("1.50") or a number (toolbox exports write 0.0).
// oidc: issuerType, issuerEndpoint or issuerEndpointRef (a Secret with `issuerEndpoint`; one of
// the two is required, as the operator has it), authenticationFlow, JWT claim settings. The
// issuer URL carries client credentials: no message shows it.
void read_oidc(YamlReader& r,
               const YamlNode& mode,
               const std::string& where,
               Product& product,
               std::vector<ProductSecretRef>& refs) {
    auto& fields = product.proxy.fields;
    if (auto t = r.str(mode, "issuerType", where, true)) {
        if (*t != "keycloak" && *t != "rest") {
            r.error(r.child(mode, "issuerType"), where + ".issuerType", "must be keycloak or rest");
        }
        fields["oidc_issuer_type"] = *t;
    }
    const YamlNode endpoint = r.child(mode, "issuerEndpoint");
    const YamlNode endpoint_ref = r.child(mode, "issuerEndpointRef");
    if (endpoint.defined() && endpoint_ref.defined()) {
        r.error(endpoint_ref, where + ".issuerEndpointRef",
                "set issuerEndpoint or issuerEndpointRef, not both");
    } else if (!endpoint.defined() && !endpoint_ref.defined()) {
        r.error(mode, where,
                "an OIDC product needs issuerEndpoint or issuerEndpointRef (the operator marks "
                "the product Invalid without one): the URL of the OpenID provider's client, e.g. "
                "https://CLIENT_ID:CLIENT_SECRET@sso.example.com/auth/realms/REALM, best from a "
                "Secret");
    } else if (endpoint.defined()) {
        if (auto v = r.str(mode, "issuerEndpoint", where, true)) {
            if (!valid_issuer_endpoint(*v)) {
                r.error(endpoint, where + ".issuerEndpoint",
                        "must be an http:// or https:// URL (the value is not shown: it carries "
                        "client credentials)");
            }
            fields["oidc_issuer_endpoint"] = *v;
        }
    } else if (r.is_map(endpoint_ref, where + ".issuerEndpointRef")) {
        r.only(endpoint_ref, where + ".issuerEndpointRef", {"name", "namespace"});
        if (auto name = r.str(endpoint_ref, "name", where + ".issuerEndpointRef", true)) {
            refs.push_back(
                {"", *name, -1, r.at_key(mode, "issuerEndpointRef"), where + ".issuerEndpointRef"});
        }
    }
    for (const auto& [from, to] :
         {std::pair{"jwtClaimWithClientID", "jwt_claim_with_client_id"},
          std::pair{"jwtClaimWithClientIDType", "jwt_claim_with_client_id_type"}}) {
        if (auto v = r.str(mode, from, where, false)) {
            fields[to] = *v;
        }
    }
    if (auto t = fields.find("jwt_claim_with_client_id_type");
        t != fields.end() && t->second != "plain" && t->second != "liquid") {
        r.error(r.child(mode, "jwtClaimWithClientIDType"), where + ".jwtClaimWithClientIDType",
                "must be plain or liquid");
    }
    const YamlNode flow = r.child(mode, "authenticationFlow");
    const std::string flow_path = where + ".authenticationFlow";
    if (r.is_map(flow, flow_path)) {
        r.only(flow, flow_path,
               {"standardFlowEnabled", "implicitFlowEnabled", "serviceAccountsEnabled",
                "directAccessGrantsEnabled"});
        for (const char* key : {"standardFlowEnabled", "implicitFlowEnabled",
                                "serviceAccountsEnabled", "directAccessGrantsEnabled"}) {
            if (auto v = r.boolean(flow, key, flow_path, false)) {
                std::string name = camel_to_snake(key);  // standard_flow_enabled, ...
                product.oidc_flows[name] = *v;
            }
        }
    }
}

void read_authentication(YamlReader& r,
                         const YamlNode& auth,
                         const std::string& path,
                         Product& product,
                         std::vector<ProductSecretRef>& refs) {
    if (!r.is_map(auth, path)) {
        return;
    }
    r.only(auth, path, {"userkey", "appKeyAppID", "oidc"});
    int kinds = 0;
    for (const auto& [key, version] :
         {std::pair{"userkey", "1"}, std::pair{"appKeyAppID", "2"}, std::pair{"oidc", "oidc"}}) {
        const YamlNode mode = r.child(auth, key);
        if (!mode.defined()) {
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
            read_oidc(r, mode, where, product, refs);
        }
        const YamlNode security = r.child(mode, "security");
        if (r.is_map(security, where + ".security")) {
            r.only(security, where + ".security", {"hostHeader", "secretToken"});
            if (auto v = r.str(security, "hostHeader", where + ".security", false)) {
                fields["hostname_rewrite"] = *v;
            }
            if (auto v = r.str(security, "secretToken", where + ".security", false)) {
                fields["secret_token"] = *v;
            }
        }
        const YamlNode response = r.child(mode, "gatewayResponse");
        const std::string rpath = where + ".gatewayResponse";
        if (r.is_map(response, rpath)) {
            for (const auto& it : response.entries()) {
                const std::string name = it.first.scalar();
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
                    r.error(it.first, rpath + "." + name, "unknown field");
                    continue;
                }
                if (name.starts_with("errorStatus")) {
                    auto v = r.integer(response, name, rpath, false);
                    if (v && (*v < 200 || *v > 599)) {
                        r.error(it.second, rpath + "." + name, "must be an HTTP status 200..599");
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

}  // namespace

void read_deployment(YamlReader& r,
                     const YamlNode& spec,
                     Product& product,
                     std::vector<ProductSecretRef>& refs) {
    const YamlNode deployment = r.child(spec, "deployment");
    if (!r.is_map(deployment, "spec.deployment")) {
        return;
    }
    r.only(deployment, "spec.deployment", {"apicastHosted", "apicastSelfManaged"});
    const YamlNode hosted = r.child(deployment, "apicastHosted");
    const YamlNode managed = r.child(deployment, "apicastSelfManaged");
    if (hosted.defined() && managed.defined()) {
        r.error(deployment, "spec.deployment",
                "set exactly one of apicastHosted, apicastSelfManaged");
        return;
    }
    if (hosted.defined()) {
        product.deployment_option = "hosted";
        if (r.is_map(hosted, "spec.deployment.apicastHosted")) {
            r.only(hosted, "spec.deployment.apicastHosted", {"authentication"});
            read_authentication(r, r.child(hosted, "authentication"),
                                "spec.deployment.apicastHosted.authentication", product, refs);
        }
    } else if (managed.defined()) {
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
                        const std::string why = url_problem(*url);
                        r.error(r.child(managed, key), path + "." + key,
                                "must be an http:// or https:// URL (got '" + *url + "'" +
                                    (why.empty() ? "" : ": " + why) + ")");
                    } else {
                        product.proxy.fields[field] = *normalized;
                    }
                }
            }
            read_authentication(r, r.child(managed, "authentication"), path + ".authentication",
                                product, refs);
        }
    }
}

void read_policies(YamlReader& r,
                   const YamlNode& spec,
                   Product& product,
                   std::vector<ProductSecretRef>& refs) {
    const YamlNode policies = r.child(spec, "policies");
    bool has_apicast = false;
    if (policies.defined() && !policies.null() && !policies.is_sequence()) {
        r.error(policies, "spec.policies", "must be a list");
    } else if (policies.is_sequence()) {
        for (std::size_t i = 0; i < policies.size(); ++i) {
            const YamlNode p = policies[i];
            const std::string where = "spec.policies[" + std::to_string(i) + "]";
            if (!r.is_map(p, where)) {
                continue;
            }
            r.only(p, where, {"name", "version", "enabled", "configuration", "configurationRef"});
            Policy policy;
            policy.name = r.str(p, "name", where, true).value_or("");
            policy.version = r.str(p, "version", where, true).value_or("");
            policy.enabled = r.boolean(p, "enabled", where, true).value_or(true);
            const YamlNode conf = r.child(p, "configuration");
            Json conf_json = Json::object();
            if (conf.defined() && !conf.null()) {
                if (!conf.is_map()) {
                    r.error(conf, where + ".configuration", "must be a mapping");
                } else {
                    conf_json = to_json(conf);
                }
            }
            if (const YamlNode ref = r.child(p, "configurationRef"); ref.defined()) {
                // the operator's: a Secret whose `configuration` is the policy's JSON
                const std::string ref_path = where + ".configurationRef";
                if (!conf_json.empty()) {
                    r.error(ref, ref_path,
                            "set configuration or configurationRef, not both (which one would "
                            "win is not obvious)");
                } else if (r.is_map(ref, ref_path)) {
                    r.only(ref, ref_path, {"name", "namespace"});
                    if (auto name = r.str(ref, "name", ref_path, true)) {
                        refs.push_back({"", *name, static_cast<int>(product.policies.size()),
                                        r.at_key(p, "configurationRef"), ref_path});
                        policy.secret_configuration = true;
                    }
                }
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

}  // namespace config
