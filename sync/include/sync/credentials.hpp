#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/model.hpp"
#include "sync/state.hpp"

namespace syncer {

// The credentials of applications whose CR leaves them to tandem (no authSecretRef, or an
// ApplicationAuth without values), decided once for the fleet, with the instances as the store
// (no local state file):
//  - adopted from the first instance, in the fleet file's order, that has an application of the
//    same account, product and name (its oldest there, by id), application keys included (plus
//    the key an ApplicationAuth requires);
//  - else generated with a CSPRNG in 3scale's formats (user_key: 32 hex digits; application_id:
//    8, application key: 32) — only when every instance of the run was read, since one that was
//    not may hold the application;
//  - else left undecided this run (the application is neither created nor changed anywhere).
// Never regenerated: once an instance has the application, its credentials are the fleet's, and
// apply converges the other instances to them (drift shows where they differ).

struct InstanceView {
    std::string name;
    const InstanceState* state = nullptr;  // nullptr: could not be read
};

// `digits` random hexadecimal digits; nullopt when no randomness is available.
using RandomHex = std::function<std::optional<std::string>(std::size_t digits)>;
RandomHex system_random_hex();  // getrandom(2)

struct CredentialDecision {
    config::Application app;   // with its credentials
    std::string adopted_from;  // the instance, or "" when generated
};

struct CredentialDecisions {
    std::map<std::string, CredentialDecision> decided;  // by the undecided key (Application::key)
    std::map<std::string, std::string> undecided;       // key -> why, for the report
    [[nodiscard]] bool empty() const { return decided.empty() && undecided.empty(); }
};

// Pure: no I/O but `random`.
CredentialDecisions decide_credentials(const config::DesiredState& desired,
                                       const std::vector<InstanceView>& instances,
                                       const RandomHex& random);

// Decided applications under their credential key; undecided ones left out.
void apply_decisions(config::DesiredState& desired, const CredentialDecisions& decisions);

// Whether some application waits for tandem to decide its credentials.
bool needs_decisions(const config::DesiredState& desired);

}  // namespace syncer
