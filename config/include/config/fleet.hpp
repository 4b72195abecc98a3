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

// A tandem-lb replica `tandem serve` asks for cluster health and sets cluster states on (its
// clusters are named like the instances).
struct BalancerRef {
    std::string url;  // admin listener: scheme://host:port, no trailing slash
    Secret token;     // admin.token; empty: none (a loopback admin listener)
    std::string token_source;
    std::string ca_bundle;
    bool insecure_skip_tls_verify = false;
    Source source;
};

// The `serve:` section: how `tandem serve` keeps the live fleet converged.
struct ServeSettings {
    std::string listen = "127.0.0.1:9902";      // /healthz /readyz /status /metrics
    std::chrono::milliseconds interval{60000};  // a full pass per instance (±10% jitter)
    bool enforce = true;                        // false: mode report (drift only, no write)
    bool prune = false;
    std::chrono::milliseconds max_backoff{300000};   // after failed passes: doubling, at most this
    std::chrono::milliseconds watch_interval{2000};  // how often the files are checked for edits
    std::vector<BalancerRef> balancers;
    // resplit (only with balancers): out after `after` of quorum-seen failure, back in after
    // `restore_after` of health; the balancers are asked every `poll` (each within `timeout`).
    bool resplit = true;
    std::chrono::milliseconds resplit_after{60000};
    std::chrono::milliseconds restore_after{120000};
    std::chrono::milliseconds poll{5000};
    std::chrono::milliseconds balancer_timeout{2000};
    Source source;
};

// The `mirror:` section: what developers create on the portal instance (`source`) — accounts,
// their users, applications and keys no CR describes — converges on every other instance.
struct MirrorSettings {
    bool enabled = false;                       // the section is present
    std::string source;                         // the portal instance
    std::chrono::milliseconds interval{10000};  // a full comparison (±10% jitter)
    bool deletes = false;  // what a complete read of the source lacks is deleted elsewhere
    Secret webhook_token;  // POST /webhooks/3scale/<token> on serve's listener; empty: off
    std::string webhook_token_source;
    // `webhooks.url`: serve's listener as 3scale reaches it; with it, serve sets the source's
    // webhooks (PUT /admin/api/webhooks.json) to <url>/webhooks/3scale/<token>.
    std::string webhooks_url;
    Source source_location;
};

struct Fleet {
    std::filesystem::path file;
    std::vector<Instance> instances;
    // How global limits are split across the instances: the fleet default and per product.
    ratelimit::SplitPolicy split_policy = ratelimit::SplitPolicy::kError;
    std::map<std::string, ratelimit::SplitPolicy> product_split_policies;
    Source split_source;
    DesiredState desired;
    Diagnostics notices;    // ignored fields and other things worth saying
    HaSettings ha;          // the `ha:` section (doctor / render)
    ServeSettings serve;    // the `serve:` section (tandem serve)
    MirrorSettings mirror;  // the `mirror:` section (tandem mirror, tandem serve)
    // The files read (the fleet file, every resource file): what tandem serve watches.
    std::vector<std::filesystem::path> inputs;
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
    // `tandem serve`: the balancers' tokens are read too (other commands only check the shape
    // of the serve: section).
    bool serve = false;
};

// Reads the fleet file, every resource file it names and the token sources, and validates all of
// it. Every problem is reported (file:line, field path, what to do); nothing is contacted.
std::expected<Fleet, Diagnostics> load_fleet(const std::filesystem::path& file,
                                             const LoadOptions& options = {});

}  // namespace config
