// ActiveDocs: OpenAPI documents on the developer portal (/admin/api/active_docs[/{id}].json),
// rendered under "api_doc" as porta does. The body must be a JSON object with a "swagger" or
// "openapi" version unless skip_swagger_validations; a system_name is unique in the tenant.
#include "admin_support.hpp"

namespace sim {

namespace {

Json render_doc(const Json& doc) {
    return public_fields(doc);
}

// Validates and copies the writable fields of `p` into `doc`; errors name the field.
void assign(Store& store, const Params& p, Json& doc, Errors& errors) {
    for (const char* key : {"name", "description"}) {
        if (auto v = read_string(p, key, errors)) {
            doc[key] = *v;
        }
    }
    for (const char* key : {"published", "skip_swagger_validations"}) {
        if (auto v = read_bool(p, key, errors)) {
            doc[key] = *v;
        }
    }
    if (const Json* raw = p.get("service_id");
        raw != nullptr && raw->is_string() && raw->get<std::string>().empty()) {
        doc.erase("service_id");  // unbound from its product
    } else if (auto v = read_int(p, "service_id", errors)) {
        if (store.visible_service(*v) == nullptr) {
            errors.add("service_id", "not found");
        } else {
            doc["service_id"] = *v;
        }
    }
    if (auto body = read_string(p, "body", errors)) {
        doc["body"] = *body;
    }
    if (doc.value("name", "").empty()) {
        errors.add("name", "can't be blank");
    }
    const Json parsed = Json::parse(doc.value("body", ""), nullptr, false);
    if (doc.value("body", "").empty()) {
        errors.add("body", "can't be blank");
    } else if (!doc.value("skip_swagger_validations", false) &&
               (!parsed.is_object() ||
                (!parsed.contains("swagger") && !parsed.contains("openapi")))) {
        errors.add("body", "JSON Spec is invalid");
    }
}

}  // namespace

Response AdminApi::list_active_docs(Ctx&) {
    Json items = Json::array();
    for (const auto& [id, doc] : store_.active_docs.items()) {
        items.push_back({{"api_doc", render_doc(doc)}});
    }
    return Response::json(200, Json{{"api_docs", items}});
}

Response AdminApi::create_active_doc(Ctx& c) {
    const Params p(c.params, "api_docs_service");
    Errors errors;
    Json doc = {{"published", false}, {"skip_swagger_validations", false}};
    assign(store_, p, doc, errors);
    std::string system_name = read_string(p, "system_name", errors).value_or("");
    if (system_name.empty()) {
        system_name = parameterize_underscore(doc.value("name", ""));
    }
    if (!valid_system_name(system_name)) {
        errors.add("system_name", "is invalid");
    } else if (!store_.active_docs
                    .where([&](const Json& d) { return d.value("system_name", "") == system_name; })
                    .empty()) {
        errors.add("system_name", "has already been taken");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    const Id id = store_.allocate_id();
    doc["id"] = id;
    doc["system_name"] = system_name;
    doc["created_at"] = now_iso();
    doc["updated_at"] = now_iso();
    const Json& stored = store_.active_docs.insert(std::move(doc));
    return created("api_doc", render_doc(stored), member_location(c, id));
}

Response AdminApi::show_active_doc(Ctx& c) {
    const Json* doc = store_.active_docs.find(c.ids[0]);
    return doc == nullptr ? not_found() : ok("api_doc", render_doc(*doc));
}

Response AdminApi::update_active_doc(Ctx& c) {
    Json* doc = store_.active_docs.find(c.ids[0]);
    if (doc == nullptr) {
        return not_found();
    }
    const Params p(c.params, "api_docs_service");
    Errors errors;
    Json next = *doc;  // system_name is not updatable: ignored
    assign(store_, p, next, errors);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    next["updated_at"] = now_iso();
    *doc = std::move(next);
    return ok("api_doc", render_doc(*doc));
}

Response AdminApi::delete_active_doc(Ctx& c) {
    if (!store_.active_docs.erase(c.ids[0])) {
        return not_found();
    }
    return deleted();
}

}  // namespace sim
