#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "config/fleet.hpp"
#include "mirror/mirrored_state.hpp"
#include "sync/engine.hpp"
#include "sync/report.hpp"

namespace mirror {

struct MirrorOptions {
    bool write = true;                        // false: compare only
    bool deletes = false;                     // mirror.deletes
    const std::atomic<bool>* stop = nullptr;  // true: no further write is sent (shutdown)
};

// One instance the source is copied to.
struct TargetResult {
    syncer::InstanceReport report;  // what differed (operations), what was applied, or its error
    std::vector<syncer::Operation> strays;  // neither on the source nor in the CRs; left in place
    std::vector<Skipped> skipped;           // source objects this instance cannot hold
};

struct MirrorResult {
    std::string source;
    bool complete = false;     // the source was read whole: only then was anything compared
    std::string source_error;  // why not
    std::size_t accounts = 0;  // on the source, mirrored (those a CR describes excluded)
    std::size_t users = 0;
    std::size_t applications = 0;
    std::vector<Skipped> skipped;  // on the source, not mirrored
    std::vector<TargetResult> targets;
    std::chrono::milliseconds source_read{0};
    std::chrono::milliseconds duration{0};
    // The source was read whole, every target was read, and nothing differs any more (or, when
    // comparing only, nothing differs).
    [[nodiscard]] bool converged() const;
    [[nodiscard]] std::size_t failed() const;  // operations that failed, on every target
};

// A new user's password: 32 random characters (3scale never shows a password, so a copied
// user gets one nobody knows; a password reset gives them theirs).
using Password = std::function<std::string()>;
Password random_password();

// One comparison: read the source (fleet.mirror.source) whole — every page of every list; any
// failure and nothing else happens — then, on every other instance in parallel, read it whole
// and converge it to the source (accounts, users, applications, keys no CR describes; with
// `deletes`, also delete what neither the source nor a CR has). An instance that cannot be read
// is skipped this time.
MirrorResult run_mirror(const config::Fleet& fleet,
                        const MirrorOptions& options,
                        const syncer::ApplyProgress& progress = {},
                        const syncer::HttpClientFactory& factory = syncer::curl_client_factory(),
                        const Password& password = random_password());

// `tandem mirror`'s report: per instance what was (or would be) done, skipped and left; JSON
// without any credential or password.
std::string mirror_text(const MirrorResult& result, bool write);
std::string mirror_json(const MirrorResult& result, bool write);

}  // namespace mirror
