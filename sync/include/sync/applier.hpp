#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "config/model.hpp"
#include "sync/admin_client.hpp"
#include "sync/differ.hpp"
#include "sync/state_reader.hpp"

namespace syncer {

struct ApplyResult {
    std::vector<Operation> done;
    std::vector<std::pair<Operation, ApiError>> failed;
    std::vector<Operation> remaining;  // after a verifying re-read: what still differs
    std::string read_error;            // the verifying re-read failed
    [[nodiscard]] bool converged() const {
        return failed.empty() && remaining.empty() && read_error.empty();
    }
};

// Executes the operations that converge one instance: backends, then products (in parallel, each
// in order), then prune deletions. A create or delete whose outcome is unknown is resolved by
// re-reading, never by repeating it blindly. One failure stops only the object it belongs to.
class Applier {
public:
    using Progress = std::function<void(const Operation&, const ApiError*)>;

    Applier(AdminClient& client,
            StateReader& reader,
            const config::DesiredState& desired,
            InstanceState state,
            DiffOptions options,
            int concurrency,
            Progress progress = {});

    ApplyResult run();

    // Phase E alone, for the mirror: every account of the desired state, each operation first
    // passed through `keep` (what a CR describes is left to the CR's own passes), then
    // `deletions` (whole accounts), each on its own. No verifying re-read: the next comparison
    // is one.
    using Keep = std::function<bool(const Operation&)>;
    ApplyResult run_accounts(Keep keep, const std::vector<Operation>& deletions);

private:
    bool run_backend(const std::string& name, const config::Backend& desired);
    bool run_product(const std::string& name,
                     const config::Product& desired,
                     const std::vector<std::string>& changed_backends);
    bool execute(const std::vector<Operation>& ops);
    ApiResult<void> execute(const Operation& op);
    ApiResult<void> execute_account_op(const Operation& op);
    void run_account(const std::string& key);
    void run_all_accounts();  // Phase E: every account of the desired state, in parallel
    ApiResult<Id> create(const Operation& op, const std::string& path, const Form& form);
    ApiResult<void> remove(const std::string& path);
    // The existing object at `path`: deleted for a delete, else updated with `form`.
    ApiResult<void> update_or_remove(const Operation& op,
                                     const std::string& path,
                                     const Form& form,
                                     const std::string& method = "PUT");
    std::optional<Id> locate(const Operation& op);
    ApiResult<Id> metric_id(const Operation& op, const config::MetricRef& ref);
    std::string owner_path(const Operation& op);
    void record(const Operation& op, const ApiError* error);

    AdminClient& client_;
    StateReader& reader_;
    const config::DesiredState& desired_;
    InstanceState state_;
    DiffOptions options_;
    int concurrency_;
    Progress progress_;
    Keep keep_;         // run_accounts: the operations it may execute (unset: all)
    std::mutex mutex_;  // guards state_ maps and result_
    ApplyResult result_;
};

}  // namespace syncer
