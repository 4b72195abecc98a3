// Phases 0 and F of the differ: the registry's custom policies and the ActiveDocs, documents
// (a policy's manifest, an OpenAPI document) compared as canonical JSON.
#include <algorithm>

#include "owner_diff.hpp"
#include "sync/differ.hpp"

namespace syncer {

namespace {

// A document is not shown (it can be large): its size and whether it differs.
std::string document_summary(const std::string& body) {
    return body.empty() ? "" : "<" + std::to_string(body.size()) + " bytes of JSON>";
}

}  // namespace

std::vector<Operation> Differ::active_docs(const config::DesiredState& desired,
                                           const InstanceState& actual) const {
    std::vector<Operation> out;
    for (const auto& [name, want] : desired.active_docs) {
        const auto it = actual.model.active_docs.find(name);
        if (it == actual.model.active_docs.end()) {
            Operation o = op(Action::kCreate, Kind::kActiveDoc, want.product, "", name);
            field(o, "system_name", name);
            field(o, "name", want.name);
            field(o, "description", want.description);
            field(o, "published", b(want.published));
            field(o, "skip_swagger_validations", b(want.skip_swagger_validations));
            o.changes.push_back({"body", document_summary(want.body), ""});
            o.form.emplace_back("body", want.body);  // sent, summarized
            out.push_back(std::move(o));
            continue;
        }
        const config::ActiveDoc& have = it->second;
        Operation o = op(Action::kUpdate, Kind::kActiveDoc, want.product, "", name);
        o.id = actual.active_docs.at(name);
        if (want.name != have.name) {
            field(o, "name", want.name, have.name);
        }
        if (want.description != have.description) {
            field(o, "description", want.description, have.description);
        }
        if (want.published != have.published) {
            field(o, "published", b(want.published), b(have.published));
        }
        if (want.skip_swagger_validations != have.skip_swagger_validations) {
            field(o, "skip_swagger_validations", b(want.skip_swagger_validations),
                  b(have.skip_swagger_validations));
        }
        if (want.product != have.product) {
            o.changes.push_back({"product", want.product, have.product});  // service_id, resolved
        }
        if (want.body != have.body) {
            o.changes.push_back(
                {"body", document_summary(want.body), document_summary(have.body) + " (differs)"});
            o.form.emplace_back("body", want.body);
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    return out;
}

std::vector<Operation> Differ::custom_policies(const config::DesiredState& desired,
                                               const InstanceState& actual) const {
    std::vector<Operation> out;
    for (const auto& [key, want] : desired.custom_policies) {
        const auto it = actual.model.custom_policies.find(key);
        if (it == actual.model.custom_policies.end()) {
            Operation o = op(Action::kCreate, Kind::kCustomPolicy, "", "", key);
            field(o, "name", want.name);
            field(o, "version", want.version);
            o.changes.push_back({"schema", document_summary(want.schema), ""});
            o.form.emplace_back("schema", want.schema);
            out.push_back(std::move(o));
        } else if (it->second.schema != want.schema) {
            Operation o = op(Action::kUpdate, Kind::kCustomPolicy, "", "", key);
            o.id = actual.custom_policies.at(key);
            o.changes.push_back({"schema", document_summary(want.schema),
                                 document_summary(it->second.schema) + " (differs)"});
            o.form = {{"name", want.name}, {"version", want.version}, {"schema", want.schema}};
            out.push_back(std::move(o));
        }
    }
    return out;
}

}  // namespace syncer
