#pragma once

#include <chrono>
#include <expected>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "config/diagnostic.hpp"
#include "config/ha.hpp"
#include "config/model.hpp"
#include "config/secret.hpp"

namespace config {

struct Instance {
    std::string name;
    std::string admin_url;     // normalized: scheme://host:port, no trailing slash
    std::string token_source;  // "env TANDEM_EAST_TOKEN" or "file /run/secrets/east" (for messages)
    Secret token;
    std::int64_t weight = 1;
    std::string ca_bundle;  // file; empty = the system's trust store
    bool insecure_skip_tls_verify = false;
    std::chrono::milliseconds timeout{30000};  // per request
    int concurrency = 8;                       // requests in flight against this instance
    // retries of what is safe to repeat: attempts in all, exponential backoff with full jitter
    int retry_attempts = 5;
    std::chrono::milliseconds retry_base_delay{100};
    std::chrono::milliseconds retry_max_delay{3000};
    Source source;
    InstanceHa ha;  // doctor / render inputs
};

struct Fleet {
    std::filesystem::path file;
    std::vector<Instance> instances;
    // How global limits are split across the instances: the fleet default and per product.
    ratelimit::SplitPolicy split_policy = ratelimit::SplitPolicy::kError;
    std::map<std::string, ratelimit::SplitPolicy> product_split_policies;
    Source split_source;
    DesiredState desired;
    Diagnostics notices;  // ignored fields and other things worth saying
    HaSettings ha;        // the `ha:` section (doctor / render)
};

struct LoadOptions {
    // plan/apply/drift need every admin token; doctor/render never contact an instance.
    bool require_tokens = true;
    // Product/Backend/account resources; doctor/render read them only when listed.
    bool require_resources = true;
    // Replace the fleet file's `resources:` (relative to the working directory; "-" is standard
    // input): `kubectl kustomize overlays/prod | tandem plan -f fleet.yaml --resources -`.
    std::vector<std::string> resources{};
    std::istream* standard_input = nullptr;  // what "-" reads (nullptr: std::cin)
};

// Reads the fleet file, every resource file it names and the token sources, and validates all of
// it. Every problem is reported (file:line, field path, what to do); nothing is contacted.
std::expected<Fleet, Diagnostics> load_fleet(const std::filesystem::path& file,
                                             const LoadOptions& options = {});

}  // namespace config
