// Credentials tandem decides for the fleet: adopted from an instance, or generated.
#include "sync/credentials.hpp"

#include <algorithm>
#include <cerrno>

#include <sys/random.h>

namespace syncer {

RandomHex system_random_hex() {
    return [](std::size_t digits) -> std::optional<std::string> {
        std::string bytes((digits + 1) / 2, '\0');
        std::size_t filled = 0;
        while (filled < bytes.size()) {
            const ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return std::nullopt;
            }
            filled += static_cast<std::size_t>(n);
        }
        static constexpr char kHex[] = "0123456789abcdef";
        std::string out;
        for (const char c : bytes) {
            const auto b = static_cast<unsigned char>(c);
            out.push_back(kHex[b >> 4U]);
            out.push_back(kHex[b & 0x0fU]);
        }
        out.resize(digits);
        return out;
    };
}

bool needs_decisions(const config::DesiredState& desired) {
    return std::any_of(desired.applications.begin(), desired.applications.end(),
                       [](const auto& e) { return e.second.decide_credentials; });
}

namespace {

// The oldest application of the same account, product and name on the first instance that has
// one, with the keys an ApplicationAuth requires added.
std::optional<CredentialDecision> adopt(const config::Application& want,
                                        const std::vector<InstanceView>& instances) {
    for (const auto& i : instances) {
        if (i.state == nullptr) {
            continue;
        }
        const config::Application* oldest = nullptr;
        Id oldest_id = 0;
        for (const auto& [app_key, have] : i.state->model.applications) {
            const Id id = i.state->applications.at(app_key).id;
            if (have.account == want.account && have.product == want.product &&
                have.name == want.name && !have.credential().empty() &&
                (oldest == nullptr || id < oldest_id)) {
                oldest = &have;
                oldest_id = id;
            }
        }
        if (oldest == nullptr) {
            continue;
        }
        CredentialDecision d{want, i.name};
        d.app.user_key = oldest->user_key;
        d.app.application_id = oldest->application_id;
        d.app.application_keys = oldest->application_keys;
        for (const auto& k : want.application_keys) {
            if (std::find(d.app.application_keys.begin(), d.app.application_keys.end(), k) ==
                d.app.application_keys.end()) {
                d.app.application_keys.push_back(k);
            }
        }
        return d;
    }
    return std::nullopt;
}

}  // namespace

CredentialDecisions decide_credentials(const config::DesiredState& desired,
                                       const std::vector<InstanceView>& instances,
                                       const RandomHex& random) {
    CredentialDecisions out;
    std::string unread;
    for (const auto& i : instances) {
        if (i.state == nullptr) {
            unread += (unread.empty() ? "" : ", ") + i.name;
        }
    }
    for (const auto& [key, want] : desired.applications) {
        if (!want.decide_credentials) {
            continue;
        }
        if (auto adopted = adopt(want, instances)) {
            out.decided[key] = std::move(*adopted);
            continue;
        }
        if (!unread.empty()) {
            out.undecided[key] = "its credentials are decided from every instance, and " + unread +
                                 " could not be read (it may hold the application)";
            continue;
        }
        const auto product = desired.products.find(want.product);
        const bool user_key = product == desired.products.end() ||
                              product->second.backend_version.value_or("1") == "1";
        CredentialDecision d{want, ""};
        std::optional<std::string> first = random(user_key ? 32 : 8);
        if (user_key) {
            d.app.user_key = first.value_or("");
        } else {
            d.app.application_id = first.value_or("");
            if (d.app.application_keys.empty()) {
                auto k = random(32);
                first = k ? first : std::nullopt;
                d.app.application_keys.push_back(k.value_or(""));
            }
        }
        if (!first) {
            out.undecided[key] = "no randomness to generate its credentials (getrandom failed)";
            continue;
        }
        out.decided[key] = std::move(d);
    }
    return out;
}

void apply_decisions(config::DesiredState& desired, const CredentialDecisions& decisions) {
    for (const auto& [key, why] : decisions.undecided) {
        desired.applications.erase(key);
    }
    for (const auto& [key, d] : decisions.decided) {
        desired.applications.erase(key);
        config::Application app = d.app;
        app.credentials_origin =
            d.adopted_from.empty() ? "generated" : "adopted from " + d.adopted_from;
        desired.applications[app.key()] = std::move(app);
    }
}

}  // namespace syncer
