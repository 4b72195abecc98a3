#include "credential_store.hpp"

namespace serve {

CredentialStore::CredentialStore(std::vector<std::string> instances)
    : instances_(std::move(instances)) {}

void CredentialStore::seen(const std::string& instance, const syncer::InstanceState& state) {
    auto copy = std::make_shared<const syncer::InstanceState>(state);
    const std::lock_guard lock(mutex_);
    states_[instance] = std::move(copy);
}

syncer::CredentialDecisions CredentialStore::decide(const config::DesiredState& desired,
                                                    const std::string& instance,
                                                    const syncer::InstanceState& mine,
                                                    const syncer::RandomHex& random) {
    const std::lock_guard lock(mutex_);
    std::vector<syncer::InstanceView> views;
    for (const auto& name : instances_) {
        const auto it = states_.find(name);
        views.push_back({name, name == instance      ? &mine
                               : it != states_.end() ? it->second.get()
                                                     : nullptr});
    }
    auto decisions = syncer::decide_credentials(desired, views, random);
    for (auto& [key, d] : decisions.decided) {
        if (!d.adopted_from.empty()) {
            generated_.erase(key);  // an instance has it: the instances are the store again
            continue;
        }
        if (const auto it = generated_.find(key); it != generated_.end()) {
            d = it->second;
        } else {
            generated_[key] = d;
        }
    }
    return decisions;
}

}  // namespace serve
