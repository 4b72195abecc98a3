// The tenant's policy registry: custom APIcast policies (/admin/api/registry/policies[/{id}].json).
// A product's chain may use a policy whose version is not builtin only when it is registered
// here. The schema is stored and rendered as an object; name and version are unique together.
#include "admin_support.hpp"

namespace sim {

namespace {

void assign(const Params& p, Json& policy, Errors& errors) {
    for (const char* key : {"name", "version"}) {
        if (auto v = read_string(p, key, errors)) {
            policy[key] = *v;
        }
    }
    if (const Json* raw = p.get("schema"); raw != nullptr) {
        const Json schema = raw->is_string() ? parse_json(raw->get<std::string>()) : *raw;
        if (!schema.is_object()) {
            errors.add("schema", "must be a JSON object");
        } else {
            policy["schema"] = schema;
        }
    }
    for (const char* key : {"name", "version"}) {
        if (policy.value(key, "").empty()) {
            errors.add(key, "can't be blank");
        }
    }
    if (!policy.contains("schema")) {
        errors.add("schema", "can't be blank");
    }
}

}  // namespace

bool AdminApi::registered_policy(const std::string& name, const std::string& version) const {
    return !store_.registry_policies
                .where([&](const Json& p) {
                    return p.value("name", "") == name && p.value("version", "") == version;
                })
                .empty();
}

Response AdminApi::list_registry(Ctx&) {
    Json items = Json::array();
    for (const auto& [id, p] : store_.registry_policies.items()) {
        items.push_back({{"policy", public_fields(p)}});
    }
    return Response::json(200, Json{{"policies", items}});
}

Response AdminApi::create_registry_policy(Ctx& c) {
    const Params p(c.params, "policy");
    Errors errors;
    Json policy = Json::object();
    assign(p, policy, errors);
    if (errors.empty() && registered_policy(policy["name"], policy["version"])) {
        errors.add("version", "has already been taken");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    const Id id = store_.allocate_id();
    policy["id"] = id;
    const Json& stored = store_.registry_policies.insert(std::move(policy));
    return created("policy", public_fields(stored), member_location(c, id));
}

Response AdminApi::show_registry_policy(Ctx& c) {
    const Json* p = store_.registry_policies.find(c.ids[0]);
    return p == nullptr ? not_found() : ok("policy", public_fields(*p));
}

Response AdminApi::update_registry_policy(Ctx& c) {
    Json* policy = store_.registry_policies.find(c.ids[0]);
    if (policy == nullptr) {
        return not_found();
    }
    const Params p(c.params, "policy");
    Errors errors;
    Json next = *policy;
    assign(p, next, errors);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    *policy = std::move(next);
    return ok("policy", public_fields(*policy));
}

Response AdminApi::delete_registry_policy(Ctx& c) {
    return store_.registry_policies.erase(c.ids[0]) ? deleted() : not_found();
}

}  // namespace sim
