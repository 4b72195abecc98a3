#pragma once

#include <vector>

#include "config/model.hpp"
#include "sync/operation.hpp"
#include "sync/state.hpp"

namespace syncer {

// Pure: no I/O. Desired vs actual state of one instance -> the operations that converge it, in
// dependency order (see the phases below). A Product or Backend CR owns its children: mapping
// rules, metrics, methods, plans, limits, pricing rules and backend usages it does not describe
// are deleted (3scale's default "GET /" of a new product included). options.prune adds whole
// products, backends and accounts no CR describes, and an account's users, applications and keys
// that no CR describes (the operator's users create those at runtime).
class Differ {
public:
    explicit Differ(DiffOptions options) : options_(options) {}

    // Phase A: backends (create/update, metrics/methods, mapping rules).
    std::vector<Operation> backend(const std::string& name,
                                   const config::Backend& desired,
                                   const config::Backend* actual,
                                   const BackendIds* ids) const;
    // Phase B: one product, deploy and promote included; metric/method deletes come after the
    // promote so that 3scale no longer refuses them.
    std::vector<Operation> product(const std::string& name,
                                   const config::Product& desired,
                                   const config::Product* actual,
                                   const ProductIds* ids,
                                   const ProxyConfigStatus* configs,
                                   const std::vector<std::string>& changed_backends) const;
    // Phase C: backend metric/method deletes, after every product is promoted.
    std::vector<Operation> backend_deletes(const std::string& name,
                                           const config::Backend& desired,
                                           const config::Backend& actual,
                                           const BackendIds& ids) const;
    // Phase D: objects with no desired counterpart at all (always reported; deleted with prune).
    std::vector<Operation> unmanaged(const config::DesiredState& desired,
                                     const InstanceState& actual) const;

    // Phase E: one developer account, its users, applications and keys (after the products, whose
    // plans the applications use). `created_in_this_run`: the applications 3scale's signup made
    // on its own are removed as part of converging.
    std::vector<Operation> account(const std::string& key,
                                   const config::DesiredState& desired,
                                   const InstanceState& actual,
                                   bool created_in_this_run = false) const;

    // Phase 0: custom policies in the registry (before the products whose chains use them).
    std::vector<Operation> custom_policies(const config::DesiredState& desired,
                                           const InstanceState& actual) const;
    // Phase F: the ActiveDocs (after the products they document).
    std::vector<Operation> active_docs(const config::DesiredState& desired,
                                       const InstanceState& actual) const;

    // Everything, in order (what `plan` prints and `apply` executes).
    std::vector<Operation> diff(const config::DesiredState& desired,
                                const InstanceState& actual) const;

    // What 3scale creates with a product / backend: the state a new one starts from.
    static config::Product fresh_product(const config::Product& desired);
    static config::Backend fresh_backend(const config::Backend& desired);

private:
    DiffOptions options_;
};

}  // namespace syncer
