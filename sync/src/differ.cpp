// The differ's phases A (backends), C (backend metric deletes) and D (unmanaged objects), and the
// whole diff in order; B (products) and E (accounts) are in product_diff.cpp and account_diff.cpp.
#include "sync/differ.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "owner_diff.hpp"

namespace syncer {

config::Product Differ::fresh_product(const config::Product& desired) {
    config::Product p;
    p.name = desired.name;
    p.description = desired.description;
    p.deployment_option = "hosted";
    p.backend_version = "1";
    p.metrics["hits"] = {"Hits", "hit", "Number of API hits", {}};
    p.mapping_rules.push_back({"GET", "/", "hits", 1, false, {}});
    p.policies.push_back({"apicast", "builtin", true, "{}"});
    return p;
}

config::Backend Differ::fresh_backend(const config::Backend& desired) {
    config::Backend b;
    b.name = desired.name;
    b.description = desired.description;
    b.private_endpoint = desired.private_endpoint;
    b.metrics["hits"] = {"Hits", "hit", "Number of API hits", {}};
    return b;
}

std::vector<Operation> Differ::backend(const std::string& name,
                                       const config::Backend& desired,
                                       const config::Backend* actual,
                                       const BackendIds* ids) const {
    std::vector<Operation> out;
    config::Backend fresh;
    if (actual == nullptr) {
        Operation o = op(Action::kCreate, Kind::kBackend, "", name, name);
        field(o, "system_name", name);
        field(o, "name", desired.name);
        field(o, "description", desired.description);
        field(o, "private_endpoint", desired.private_endpoint);
        o.form.emplace_back("annotations[managed_by]", "tandem");
        out.push_back(std::move(o));
        fresh = fresh_backend(desired);
        actual = &fresh;
        ids = nullptr;
    } else {
        Operation o = op(Action::kUpdate, Kind::kBackend, "", name, name);
        o.id = ids != nullptr ? ids->id : 0;
        if (desired.name != actual->name) {
            field(o, "name", desired.name, actual->name);
        }
        if (desired.description != actual->description) {
            field(o, "description", desired.description, actual->description);
        }
        if (desired.private_endpoint != actual->private_endpoint) {
            field(o, "private_endpoint", desired.private_endpoint, actual->private_endpoint);
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    const Owner owner = backend_owner(name);
    diff_metrics(owner, desired.metrics, actual->metrics, false, out);
    diff_metrics(owner, desired.methods, actual->methods, true, out);
    std::vector<Operation> deletes;
    diff_rules(owner, desired.mapping_rules, actual->mapping_rules,
               ids != nullptr ? &ids->rules : nullptr, out, deletes);
    for (auto& d : deletes) {
        out.push_back(std::move(d));
    }
    return out;
}

std::vector<Operation> Differ::backend_deletes(const std::string& name,
                                               const config::Backend& desired,
                                               const config::Backend& actual,
                                               const BackendIds& ids) const {
    std::vector<Operation> out;
    const Owner owner = backend_owner(name);
    delete_metrics(owner, desired.methods, actual.methods, true, &ids.metrics, out);
    delete_metrics(owner, desired.metrics, actual.metrics, false, &ids.metrics, out);
    return out;
}

std::vector<Operation> Differ::unmanaged(const config::DesiredState& desired,
                                         const InstanceState& actual) const {
    std::vector<Operation> out;
    for (const auto& [name, p] : actual.model.products) {
        if (!desired.products.contains(name)) {
            Operation o = op(Action::kDelete, Kind::kProduct, name, "", name);
            o.unmanaged = true;
            o.id = actual.products.at(name).id;
            o.changes.push_back({"name", "", p.name});
            out.push_back(std::move(o));
        }
    }
    for (const auto& [key, a] : actual.model.accounts) {
        if (!desired.accounts.contains(key) && !desired.accounts.empty() &&
            !options_.developers_mirrored) {
            Operation o = op(Action::kDelete, Kind::kAccount, "", "", key);
            o.unmanaged = true;
            o.account = key;
            o.id = actual.accounts.at(key).id;
            o.changes.push_back({"org_name", "", a.org_name});
            out.insert(out.begin(), std::move(o));  // accounts go before the products they use
        }
    }
    for (const auto& [key, policy] : actual.model.custom_policies) {
        if (!desired.custom_policies.contains(key)) {
            Operation o = op(Action::kDelete, Kind::kCustomPolicy, "", "", key);
            o.unmanaged = true;
            o.id = actual.custom_policies.at(key);
            out.push_back(std::move(o));  // after the products whose chains may use it
        }
    }
    for (const auto& [name, doc] : actual.model.active_docs) {
        if (!desired.active_docs.contains(name)) {
            Operation o = op(Action::kDelete, Kind::kActiveDoc, doc.product, "", name);
            o.unmanaged = true;
            o.id = actual.active_docs.at(name);
            o.changes.push_back({"name", "", doc.name});
            out.insert(out.begin(), std::move(o));  // before the products they document
        }
    }
    for (const auto& [name, bk] : actual.model.backends) {
        if (!desired.backends.contains(name)) {
            Operation o = op(Action::kDelete, Kind::kBackend, "", name, name);
            o.unmanaged = true;
            o.id = actual.backends.at(name).id;
            o.changes.push_back({"name", "", bk.name});
            out.push_back(std::move(o));
        }
    }
    return out;
}

std::vector<Operation> Differ::diff(const config::DesiredState& desired,
                                    const InstanceState& actual) const {
    std::vector<Operation> out = custom_policies(desired, actual);
    std::set<std::string> changed_backends;
    for (const auto& [name, d] : desired.backends) {
        const auto it = actual.model.backends.find(name);
        const auto ids = actual.backends.find(name);
        auto ops = backend(name, d, it == actual.model.backends.end() ? nullptr : &it->second,
                           ids == actual.backends.end() ? nullptr : &ids->second);
        if (!ops.empty()) {
            changed_backends.insert(name);
        }
        out.insert(out.end(), ops.begin(), ops.end());
    }
    for (const auto& [name, d] : desired.products) {
        const auto it = actual.model.products.find(name);
        const auto ids = actual.products.find(name);
        const auto cfg = actual.configs.find(name);
        std::vector<std::string> used_changed;
        for (const auto& [backend, usage] : d.backend_usages) {
            if (changed_backends.contains(backend)) {
                used_changed.push_back(backend);
            }
        }
        auto ops = product(name, d, it == actual.model.products.end() ? nullptr : &it->second,
                           ids == actual.products.end() ? nullptr : &ids->second,
                           cfg == actual.configs.end() ? nullptr : &cfg->second, used_changed);
        out.insert(out.end(), ops.begin(), ops.end());
    }
    for (const auto& [key, a] : desired.accounts) {
        auto ops = account(key, desired, actual);
        out.insert(out.end(), ops.begin(), ops.end());
    }
    auto docs = active_docs(desired, actual);
    out.insert(out.end(), docs.begin(), docs.end());
    for (const auto& [name, d] : desired.backends) {
        const auto it = actual.model.backends.find(name);
        if (it != actual.model.backends.end()) {
            auto ops = backend_deletes(name, d, it->second, actual.backends.at(name));
            out.insert(out.end(), ops.begin(), ops.end());
        }
    }
    auto rest = unmanaged(desired, actual);
    for (auto& o : rest) {
        if (options_.prune) {
            out.push_back(std::move(o));
        }
    }
    return out;
}

}  // namespace syncer
