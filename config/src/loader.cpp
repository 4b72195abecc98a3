// The fleet file and the 3scale-operator CRs it names -> a validated Fleet: the fleet file's
// sections (fleet_file), every resource document by kind (product_cr, account_cr), then the
// references between them (references). Nothing is contacted.
#include <iostream>
#include <map>

#include "account_cr.hpp"
#include "active_doc_cr.hpp"
#include "config/fleet.hpp"
#include "config/yaml_reader.hpp"
#include "custom_policy_cr.hpp"
#include "fleet_file.hpp"
#include "product_cr.hpp"
#include "references.hpp"
#include "resource_files.hpp"

namespace config {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCapabilities = "capabilities.3scale.net/v1beta1";

// One resource document (a List's items each in turn) by its apiVersion and kind.
void read_document(YamlReader& r,
                   const YamlNode& doc,
                   Fleet& fleet,
                   std::map<std::string, Source>& seen,
                   Pending& pending,
                   const std::filesystem::path& base) {
    if (!doc.defined() || doc.null()) {
        return;  // an empty document (a trailing ---)
    }
    if (!doc.is_map()) {
        r.error(doc, "", "a resource must be a mapping with apiVersion, kind and spec");
        return;
    }
    if (!r.child(doc, "apiVersion").defined() && !r.child(doc, "kind").defined()) {
        // an OpenAPI document, Helm values, ...: not a Kubernetes resource
        r.notice(doc, "", "skipped: not a Kubernetes resource (no apiVersion, no kind)");
        return;
    }
    const std::string api = r.str(doc, "apiVersion", "", true).value_or("");
    const std::string kind = r.str(doc, "kind", "", true).value_or("");
    if (api.empty() || kind.empty()) {
        return;
    }
    if (r.child(doc, "status").defined()) {
        r.notice(r.child(doc, "status"), "status",
                 "ignored (it only means something inside Kubernetes)");
    }
    if (api == kCapabilities && r.child(r.child(doc, "spec"), "providerAccountRef").defined()) {
        r.notice(r.child(r.child(doc, "spec"), "providerAccountRef"), "spec.providerAccountRef",
                 "ignored: tandem applies every CR to every instance of the fleet");
    }
    if (api == "v1" && kind == "List") {
        const YamlNode items = r.child(doc, "items");
        if (!items.is_sequence()) {
            r.error(doc, "items", "a List must have an items list");
            return;
        }
        for (const auto& item : items.items()) {
            read_document(r, item, fleet, seen, pending, base);
        }
        return;
    }
    if (api == "v1" && kind == "Secret") {
        read_secret(r, doc, base, pending);
    } else if (api == kCapabilities && (kind == "DeveloperAccount" || kind == "DeveloperUser" ||
                                        kind == "Application" || kind == "ApplicationAuth")) {
        read_account_kinds(r, doc, kind, pending);
    } else if (api == kCapabilities && kind == "Product") {
        read_product(r, doc, fleet, seen, pending);
    } else if (api == kCapabilities && kind == "Backend") {
        read_backend(r, doc, fleet, seen);
    } else if (api == kCapabilities && kind == "CustomPolicyDefinition") {
        read_custom_policy(r, doc, fleet, seen);
    } else if (api == kCapabilities && kind == "ActiveDoc") {
        read_active_doc(r, doc, base, fleet, seen, pending);
    } else if (api == kCapabilities && kind == "ProxyConfigPromote") {
        r.notice(doc, "kind", "ProxyConfigPromote ignored: tandem apply deploys and promotes");
    } else if (api.starts_with("capabilities.3scale.net/")) {
        // a 3scale CR tandem cannot apply is an error: skipping it would leave it unapplied
        r.error(api == kCapabilities ? r.child(doc, "kind") : r.child(doc, "apiVersion"),
                api == kCapabilities ? "kind" : "apiVersion",
                api + " " + kind + " is not supported (tandem reads " + kCapabilities +
                    " Product, Backend, ActiveDoc, CustomPolicyDefinition, DeveloperAccount, "
                    "DeveloperUser, Application, ApplicationAuth and v1 Secret)");
    } else {
        // the rest of a GitOps directory (Kustomization, ConfigMap, Deployment, APIManager, ...)
        r.notice(doc, "kind",
                 "skipped: " + api + " " + kind +
                     " is not something tandem applies (it reads capabilities.3scale.net CRs "
                     "and v1 Secrets)");
    }
}

}  // namespace

std::expected<Fleet, Diagnostics> load_fleet(const std::filesystem::path& file,
                                             const LoadOptions& options) {
    Diagnostics diags;
    Fleet fleet;
    fleet.file = file;
    fleet.inputs.push_back(file);
    const fs::path base = file.has_parent_path() ? file.parent_path() : fs::path(".");
    auto docs = read_yaml_file(file, diags);
    if (!docs) {
        return std::unexpected(diags);
    }
    YamlReader r(file.string(), diags);
    if (docs->size() != 1 || !(*docs)[0].is_map()) {
        diags.push_back({Diagnostic::Severity::kError,
                         {file.string(), 1},
                         "",
                         "a fleet file is one YAML mapping (apiVersion: tandem/v1, kind: Fleet)"});
        return std::unexpected(diags);
    }
    const YamlNode root = (*docs)[0];
    r.only(root, "",
           {"apiVersion", "kind", "instances", "resources", "split", "ha", "serve", "mirror"});
    const auto api = r.str(root, "apiVersion", "", true);
    const auto kind = r.str(root, "kind", "", true);
    if (api && *api != "tandem/v1") {
        r.error(r.child(root, "apiVersion"), "apiVersion", "must be tandem/v1");
    }
    if (kind && *kind != "Fleet") {
        r.error(r.child(root, "kind"), "kind", "must be Fleet");
    }
    read_instances(r, root, base, fleet, options, diags);
    read_ha(r, root, base, fleet);
    read_split(r, root, fleet);
    read_serve(r, root, base, options.serve, fleet);
    read_mirror(r, root, base, options.serve, fleet);
    std::map<std::string, Source> seen;
    Pending pending;
    const bool read_resources = options.require_resources || !options.resources.empty() ||
                                r.child(root, "resources").defined();
    std::istream& standard_input =
        options.standard_input != nullptr ? *options.standard_input : std::cin;
    for (const auto& input : read_resources ? resource_inputs(r, root, base, options, diags)
                                            : std::vector<ResourceInput>{}) {
        if (!input.is_stdin()) {
            fleet.inputs.push_back(input.path);
        }
        auto resource_docs = read_resource(input, standard_input, diags);
        if (!resource_docs) {
            continue;
        }
        YamlReader rr(input.name(), diags);
        for (const auto& doc : *resource_docs) {
            read_document(rr, doc, fleet, seen, pending, input.base());
        }
    }
    check_references(fleet, diags);
    resolve_product_secrets(fleet, pending, diags);
    resolve_active_docs(fleet, pending, diags);
    check_custom_policies(fleet, diags);
    resolve_accounts(fleet, pending, diags);
    for (const auto& [name, policy] : fleet.product_split_policies) {
        if (!fleet.desired.products.contains(name)) {
            diags.push_back({Diagnostic::Severity::kError, fleet.split_source,
                             "split.products." + name,
                             "no product '" + name + "' in the resources"});
        }
    }
    if (has_errors(diags)) {
        return std::unexpected(diags);
    }
    fleet.notices = std::move(diags);
    return fleet;
}

}  // namespace config