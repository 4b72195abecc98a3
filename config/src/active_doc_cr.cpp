// ActiveDoc CRs: OpenAPI documents on the developer portal, compared as canonical JSON.
#include "active_doc_cr.hpp"

#include <fstream>
#include <iterator>

#include "config/normalize.hpp"

namespace config {

namespace fs = std::filesystem;

void read_active_doc(YamlReader& r,
                     const YamlNode& doc,
                     const fs::path& base,
                     Fleet& fleet,
                     std::map<std::string, Source>& seen,
                     Pending& pending) {
    const YamlNode spec = r.spec(doc);
    if (!spec.defined()) {
        return;
    }
    r.only(spec, "spec",
           {"name", "systemName", "description", "activeDocOpenAPIRef", "productSystemName",
            "published", "skipSwaggerValidations", "providerAccountRef"});
    ActiveDoc out;
    out.source = r.at(doc);
    out.name = r.str(spec, "name", "spec", true).value_or("");
    std::string system_name = r.str(spec, "systemName", "spec", false).value_or("");
    if (system_name.empty()) {
        system_name = operator_default_system_name(out.name);  // sent: the same everywhere
    }
    if (!system_name.empty() && !valid_system_name(system_name)) {
        r.error(r.child(spec, "systemName").defined() ? r.child(spec, "systemName") : spec,
                "spec.systemName", "'" + system_name + "' is not a valid 3scale system name");
    }
    out.description = r.str(spec, "description", "spec", false).value_or("");
    out.product = r.str(spec, "productSystemName", "spec", false).value_or("");
    out.published = r.boolean(spec, "published", "spec", false).value_or(false);
    out.skip_swagger_validations =
        r.boolean(spec, "skipSwaggerValidations", "spec", false).value_or(false);
    const YamlNode ref = r.child(spec, "activeDocOpenAPIRef");
    const std::string path = "spec.activeDocOpenAPIRef";
    if (!ref.defined()) {
        r.error(spec, path, "is required: secretRef (a Secret holding the document) or url");
    } else if (r.mapping(ref, path, {"secretRef", "url"})) {
        const YamlNode secret = r.child(ref, "secretRef");
        const auto url = r.str(ref, "url", path, false);
        if (secret.defined() == url.has_value()) {
            r.error(ref, path, "set exactly one of secretRef and url");
        } else if (secret.defined()) {
            if (r.mapping(secret, path + ".secretRef", {"name", "namespace"})) {
                if (auto name = r.str(secret, "name", path + ".secretRef", true)) {
                    pending.active_docs.push_back(
                        {system_name, *name, r.at_key(ref, "secretRef"), path + ".secretRef"});
                }
            }
        } else if (url->starts_with("file:")) {
            // file:openapi/pets.yaml (relative to this file) or file:///abs/pets.yaml
            fs::path file = url->starts_with("file://") ? url->substr(7) : url->substr(5);
            if (file.is_relative()) {
                file = base / file;
            }
            std::ifstream in(file, std::ios::binary);
            const std::string text((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
            if (!in || text.empty()) {
                r.error(r.child(ref, "url"), path + ".url", "cannot read " + file.string());
            } else if (auto body = canonical_document(text)) {
                out.body = std::move(*body);
            } else {
                r.error(r.child(ref, "url"), path + ".url", file.string() + ": " + body.error());
            }
        } else if (url->starts_with("https://") || url->starts_with("http://")) {
            if (!normalize_url(*url)) {
                r.error(r.child(ref, "url"), path + ".url",
                        "must be an http(s) URL: " + url_problem(*url));
            }
            out.url = *url;
        } else {
            r.error(r.child(ref, "url"), path + ".url",
                    "must be an https:// or http:// URL, or file:PATH (relative to this file)");
        }
    }
    if (system_name.empty()) {
        return;
    }
    if (auto [it, fresh] = seen.emplace("activedoc " + system_name, out.source); !fresh) {
        r.error(doc, "spec.systemName",
                "ActiveDoc '" + system_name + "' is also defined at " + it->second.file + ":" +
                    std::to_string(it->second.line));
        return;
    }
    fleet.desired.active_docs.emplace(system_name, std::move(out));
}

void resolve_active_docs(Fleet& fleet, const Pending& pending, Diagnostics& out) {
    for (const auto& ref : pending.active_docs) {
        auto doc = fleet.desired.active_docs.find(ref.active_doc);
        if (doc == fleet.desired.active_docs.end()) {
            continue;
        }
        const auto secret = pending.secrets.find(ref.secret);
        if (secret == pending.secrets.end()) {
            out.push_back({Diagnostic::Severity::kError, ref.source, ref.path,
                           "Secret '" + ref.secret + "' is not among the resources"});
            continue;
        }
        // the operator's: the Secret holds the document, under whatever key
        if (secret->second.values.size() + secret->second.problems.size() != 1) {
            out.push_back({Diagnostic::Severity::kError, secret->second.source,
                           "Secret " + ref.secret,
                           "must hold exactly one value, the OpenAPI document (ActiveDoc '" +
                               ref.active_doc + "')"});
            continue;
        }
        if (!secret->second.problems.empty()) {
            out.push_back({Diagnostic::Severity::kError, secret->second.source,
                           "Secret " + ref.secret, secret->second.problems.begin()->second});
            continue;
        }
        if (auto body = canonical_document(secret->second.values.begin()->second)) {
            doc->second.body = std::move(*body);
        } else {
            out.push_back({Diagnostic::Severity::kError, secret->second.source,
                           "Secret " + ref.secret, body.error()});
        }
    }
    for (const auto& [name, doc] : fleet.desired.active_docs) {
        if (!doc.product.empty() && !fleet.desired.products.contains(doc.product)) {
            out.push_back(
                {Diagnostic::Severity::kError, doc.source, "spec.productSystemName",
                 "no Product with system name '" + doc.product + "' among the resources"});
        }
    }
}

}  // namespace config
