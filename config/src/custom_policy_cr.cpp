// CustomPolicyDefinition CRs: custom APIcast policies for every instance's policy registry.
#include "custom_policy_cr.hpp"

namespace config {

void read_custom_policy(YamlReader& r,
                        const YamlNode& doc,
                        Fleet& fleet,
                        std::map<std::string, Source>& seen) {
    const YamlNode spec = r.spec(doc);
    if (!spec.defined()) {
        return;
    }
    r.only(spec, "spec", {"name", "version", "schema", "providerAccountRef"});
    CustomPolicy policy;
    policy.source = r.at(doc);
    policy.name = r.str(spec, "name", "spec", true).value_or("");
    policy.version = r.str(spec, "version", "spec", true).value_or("");
    if (policy.version == "builtin") {
        r.error(r.child(spec, "version"), "spec.version",
                "'builtin' is APIcast's own policies' version: a custom policy needs its own");
    }
    const YamlNode schema = r.child(spec, "schema");
    if (!schema.defined()) {
        r.error(spec, "spec.schema", "is required: the policy's APIcast manifest");
    } else if (r.is_map(schema, "spec.schema")) {
        nlohmann::json manifest = to_json(schema);
        for (const char* key : {"name", "version", "summary", "configuration"}) {
            if (!manifest.contains(key)) {
                r.error(schema, std::string("spec.schema.") + key,
                        "is required in an APIcast policy manifest");
            }
        }
        if (manifest.contains("version") && manifest["version"] != policy.version) {
            r.error(r.child(schema, "version"), "spec.schema.version",
                    "must be the CR's version (" + policy.version + ")");
        }
        policy.schema = manifest.dump();
    }
    if (policy.name.empty() || policy.version.empty()) {
        return;
    }
    const std::string key = policy.name + "@" + policy.version;
    if (auto [it, fresh] = seen.emplace("custom policy " + key, policy.source); !fresh) {
        r.error(doc, "spec",
                "custom policy " + key + " is also defined at " + it->second.file + ":" +
                    std::to_string(it->second.line));
        return;
    }
    fleet.desired.custom_policies.emplace(key, std::move(policy));
}

void check_custom_policies(Fleet& fleet, Diagnostics& out) {
    for (const auto& [name, product] : fleet.desired.products) {
        for (std::size_t i = 0; i < product.policies.size(); ++i) {
            const auto& p = product.policies[i];
            if (p.version != "builtin" &&
                !fleet.desired.custom_policies.contains(p.name + "@" + p.version)) {
                out.push_back({Diagnostic::Severity::kNotice, product.source,
                               "spec.policies[" + std::to_string(i) + "]",
                               "policy " + p.name + " " + p.version +
                                   " is not builtin and no CustomPolicyDefinition describes it: "
                                   "it must already be in every instance's policy registry"});
            }
        }
    }
}

}  // namespace config
