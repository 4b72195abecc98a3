// The applier's order of work: backends, then products (in parallel, each in order), then
// prune deletions and accounts; a verifying re-read at the end. The writes themselves are in
// operation_calls.cpp.
#include "sync/applier.hpp"

#include <algorithm>
#include <set>

#include "parallel.hpp"

namespace syncer {

Applier::Applier(AdminClient& client,
                 StateReader& reader,
                 const config::DesiredState& desired,
                 InstanceState state,
                 DiffOptions options,
                 int concurrency,
                 Progress progress)
    : client_(client),
      reader_(reader),
      desired_(desired),
      state_(std::move(state)),
      options_(options),
      concurrency_(concurrency),
      progress_(std::move(progress)) {}

void Applier::record(const Operation& op, const ApiError* error) {
    {
        const std::lock_guard lock(mutex_);
        if (error != nullptr) {
            result_.failed.emplace_back(op, *error);
        } else {
            result_.done.push_back(op);
        }
    }
    if (progress_) {
        progress_(op, error);
    }
}

bool Applier::execute(const std::vector<Operation>& ops) {
    for (const auto& op : ops) {
        auto r = execute(op);
        if (!r) {
            record(op, &r.error());
            return false;  // later operations of this object depend on this one
        }
        record(op, nullptr);
    }
    return true;
}

bool Applier::run_backend(const std::string& name, const config::Backend& desired) {
    Differ differ(options_);
    const config::Backend* actual = nullptr;
    const BackendIds* ids = nullptr;
    {
        const std::lock_guard lock(mutex_);
        if (auto it = state_.model.backends.find(name); it != state_.model.backends.end()) {
            actual = &it->second;
            ids = &state_.backends.at(name);
        }
    }
    auto ops = differ.backend(name, desired, actual, ids);
    if (actual == nullptr && !ops.empty()) {
        // create it, then read back what 3scale made (hits) and converge from there
        std::vector<Operation> first(ops.begin(), ops.begin() + 1);
        if (!execute(first)) {
            return true;
        }
        Id id = 0;
        {
            const std::lock_guard lock(mutex_);
            id = state_.backends[name].id;
        }
        auto created = client_.get("/admin/api/backend_apis/" + std::to_string(id) + ".json");
        if (!created) {
            record(ops[1 < ops.size() ? 1 : 0], &created.error());
            return true;
        }
        auto snapshot = reader_.read_backend(unwrap(*created));
        if (!snapshot) {
            record(ops[1 < ops.size() ? 1 : 0], &snapshot.error());
            return true;
        }
        {
            const std::lock_guard lock(mutex_);
            StateReader::insert(state_, std::move(*snapshot));
            actual = &state_.model.backends.at(name);
            ids = &state_.backends.at(name);
        }
        ops = differ.backend(name, desired, actual, ids);
        execute(ops);
        return true;
    }
    execute(ops);
    return !ops.empty();
}

bool Applier::run_product(const std::string& name,
                          const config::Product& desired,
                          const std::vector<std::string>& changed_backends) {
    Differ differ(options_);
    const auto lookup =
        [&]() -> std::tuple<const config::Product*, const ProductIds*, const ProxyConfigStatus*> {
        const std::lock_guard lock(mutex_);
        const auto it = state_.model.products.find(name);
        if (it == state_.model.products.end()) {
            return {nullptr, nullptr, nullptr};
        }
        return {&it->second, &state_.products.at(name), &state_.configs[name]};
    };
    auto [actual, ids, configs] = lookup();
    auto ops = differ.product(name, desired, actual, ids, configs, changed_backends);
    if (actual == nullptr && !ops.empty()) {
        std::vector<Operation> first(ops.begin(), ops.begin() + 1);
        if (!execute(first)) {
            return false;
        }
        Id id = 0;
        std::map<std::string, BackendIds> backends;
        {
            const std::lock_guard lock(mutex_);
            id = state_.products[name].id;
            backends = state_.backends;
        }
        auto fresh = client_.get("/admin/api/services/" + std::to_string(id) + ".json");
        if (!fresh) {
            record(ops[1 < ops.size() ? 1 : 0], &fresh.error());
            return false;
        }
        auto snapshot = reader_.read_product(unwrap(*fresh), backends);
        if (!snapshot) {
            record(ops[1 < ops.size() ? 1 : 0], &snapshot.error());
            return false;
        }
        {
            const std::lock_guard lock(mutex_);
            StateReader::insert(state_, std::move(*snapshot));
        }
        std::tie(actual, ids, configs) = lookup();
        auto rest = differ.product(name, desired, actual, ids, configs, changed_backends);
        // a new product is always deployed and promoted
        if (std::none_of(rest.begin(), rest.end(),
                         [](const Operation& o) { return o.kind == Kind::kProxyConfig; })) {
            Operation deploy;
            deploy.action = Action::kDeploy;
            deploy.kind = Kind::kProxyConfig;
            deploy.product = name;
            deploy.name = "staging";
            Operation promote = deploy;
            promote.action = Action::kPromote;
            promote.name = "production";
            rest.push_back(deploy);
            rest.push_back(promote);
        }
        return execute(rest);
    }
    return execute(ops);
}

void Applier::run_account(const std::string& key) {
    Differ differ(options_);
    std::vector<Operation> ops;
    bool exists = false;
    const auto kept = [this](std::vector<Operation> all) {
        if (keep_) {
            std::erase_if(all, [this](const Operation& o) { return !keep_(o); });
        }
        return all;
    };
    {
        const std::lock_guard lock(mutex_);
        exists = state_.model.accounts.contains(key);
        ops = kept(differ.account(key, desired_, state_));
    }
    if (exists) {
        execute(ops);
        return;
    }
    if (ops.empty() || !execute(std::vector<Operation>(ops.begin(), ops.begin() + 1))) {
        return;
    }
    // read back what signup made (the admin user, and applications with random keys)
    Id id = 0;
    {
        const std::lock_guard lock(mutex_);
        id = state_.accounts[key].id;
    }
    auto account = client_.get("/admin/api/accounts/" + std::to_string(id) + ".json");
    if (!account) {
        record(ops.front(), &account.error());
        return;
    }
    std::vector<Operation> rest;
    {
        const std::lock_guard lock(mutex_);
        InstanceState scratch;
        scratch.products = state_.products;
        if (auto r = reader_.read_account(scratch, unwrap(*account)); !r) {
            rest.clear();
        }
        state_.model.accounts[key] = scratch.model.accounts[key];
        state_.accounts[key] = scratch.accounts[key];
        for (auto& [app_key, app] : scratch.model.applications) {
            state_.model.applications[app_key] = app;
            state_.applications[app_key] = scratch.applications[app_key];
        }
        rest = kept(differ.account(key, desired_, state_, /*created_in_this_run=*/true));
    }
    execute(rest);
}

void Applier::run_all_accounts() {
    std::vector<std::string> accounts;
    for (const auto& [key, a] : desired_.accounts) {
        accounts.push_back(key);
    }
    (void)parallel_for<ApiError>(accounts.size(), concurrency_, [&](std::size_t i) {
        run_account(accounts[i]);
        return std::expected<void, ApiError>{};
    });
}

ApplyResult Applier::run_accounts(Keep keep, const std::vector<Operation>& deletions) {
    keep_ = std::move(keep);
    run_all_accounts();
    for (const auto& op : deletions) {
        execute(std::vector<Operation>{op});
    }
    keep_ = nullptr;
    return std::move(result_);
}

ApplyResult Applier::run() {
    // Phase 0: custom policies, which the products' chains may use
    {
        std::vector<Operation> policies;
        {
            const std::lock_guard lock(mutex_);
            policies = Differ(options_).custom_policies(desired_, state_);
        }
        for (const auto& op : policies) {
            execute(std::vector<Operation>{op});
        }
    }
    // Phase A: backends
    std::vector<std::string> backends;
    for (const auto& [name, b] : desired_.backends) {
        backends.push_back(name);
    }
    std::vector<char> changed(backends.size(), 0);
    (void)parallel_for<ApiError>(backends.size(), concurrency_, [&](std::size_t i) {
        changed[i] = run_backend(backends[i], desired_.backends.at(backends[i])) ? 1 : 0;
        return std::expected<void, ApiError>{};
    });
    std::set<std::string> changed_backends;
    for (std::size_t i = 0; i < backends.size(); ++i) {
        if (changed[i] != 0) {
            changed_backends.insert(backends[i]);
        }
    }
    // Phase B: products, each in order, several at a time
    std::vector<std::string> products;
    for (const auto& [name, p] : desired_.products) {
        products.push_back(name);
    }
    (void)parallel_for<ApiError>(products.size(), concurrency_, [&](std::size_t i) {
        const auto& desired = desired_.products.at(products[i]);
        std::vector<std::string> used;
        for (const auto& [backend, usage] : desired.backend_usages) {
            if (changed_backends.contains(backend)) {
                used.push_back(backend);
            }
        }
        run_product(products[i], desired, used);
        return std::expected<void, ApiError>{};
    });
    // Phase E: developer accounts, users, applications (their plans exist now)
    run_all_accounts();
    // Phase F: ActiveDocs, each on its own (their products exist now)
    {
        std::vector<Operation> docs;
        {
            const std::lock_guard lock(mutex_);
            docs = Differ(options_).active_docs(desired_, state_);
        }
        for (const auto& op : docs) {
            execute(std::vector<Operation>{op});
        }
    }
    // Phase C: backend metrics and methods no CR describes, now that no promoted config uses them.
    Differ differ(options_);
    for (const auto& [name, desired] : desired_.backends) {
        std::vector<Operation> ops;
        {
            const std::lock_guard lock(mutex_);
            const auto it = state_.model.backends.find(name);
            if (it == state_.model.backends.end()) {
                continue;
            }
            ops = differ.backend_deletes(name, desired, it->second, state_.backends.at(name));
        }
        execute(ops);
    }
    // Phase D (prune): whole products, backends and accounts that are not desired.
    if (options_.prune) {
        auto ops = differ.unmanaged(desired_, state_);
        // ActiveDocs, then the products they document, then what those used
        std::stable_partition(ops.begin(), ops.end(), [](const Operation& o) {
            return o.kind == Kind::kActiveDoc || o.kind == Kind::kProduct;
        });
        for (const auto& op : ops) {
            execute(std::vector<Operation>{op});
        }
    }
    // Verify: read the instance again; what still differs is reported (also when nothing could be
    // written: converged means that a drift now would be clean, whatever happened above).
    {
        auto fresh = reader_.read();
        if (!fresh) {
            result_.read_error = fresh.error().to_string();
        } else {
            for (auto& op : Differ(options_).diff(desired_, *fresh)) {
                result_.remaining.push_back(std::move(op));
            }
        }
    }
    return std::move(result_);
}

}  // namespace syncer