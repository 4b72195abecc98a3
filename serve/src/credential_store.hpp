#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sync/credentials.hpp"
#include "sync/state.hpp"

namespace serve {

// The fleet as the instances' passes last read it, for the credentials tandem decides: an
// instance's pass decides with its own fresh state and the others' last ones (an instance never
// read yet blocks generating, as in apply). A credential generated here is kept and reused by
// every instance's pass until an instance holds the application (adoption then rules), so that
// passes running side by side never generate two.
class CredentialStore {
public:
    explicit CredentialStore(std::vector<std::string> instances);

    // `instance` was read: its state as the others' passes will see it.
    void seen(const std::string& instance, const syncer::InstanceState& state);
    syncer::CredentialDecisions decide(const config::DesiredState& desired,
                                       const std::string& instance,
                                       const syncer::InstanceState& mine,
                                       const syncer::RandomHex& random);

private:
    std::mutex mutex_;
    std::vector<std::string> instances_;  // fleet order
    std::map<std::string, std::shared_ptr<const syncer::InstanceState>> states_;
    std::map<std::string, syncer::CredentialDecision> generated_;
};

}  // namespace serve
