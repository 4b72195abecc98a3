#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/model.hpp"
#include "sync/operation.hpp"
#include "sync/state.hpp"

namespace mirror {

// Something the mirror leaves alone, and why (in reports and /status).
struct Skipped {
    std::string what;  // "account dev (Acme)", "application shop/Mine of dev"
    std::string why;
    friend bool operator==(const Skipped&, const Skipped&) = default;
};

// What every other instance should hold: the CRs' developer accounts and applications (so that
// nothing a CR describes is ever taken for a stray), plus everything else the portal instance
// has. Accounts are matched across instances by their admin's username, applications by product
// and credentials (user_key, or application_id), users by username, keys by value.
struct MirroredState {
    config::DesiredState desired;
    std::vector<Skipped> skipped;  // on the source, not mirrored
};

// `source` must be a complete read of the portal instance. A copied user gets a password from
// `password` (3scale never shows one). CRs win: a source object a CR describes (an account or
// user by name; an application by credentials, or by account, product and name) is not taken
// from the source. Pure.
MirroredState mirrored_state(const config::DesiredState& crs,
                             const syncer::InstanceState& source,
                             const std::function<std::string()>& password);

// `state` narrowed to what `target` can hold: an application whose product or plan (by system
// name) the target lacks is skipped there, with why, instead of failing its account every pass.
MirroredState fit_to(const MirroredState& state, const syncer::InstanceState& target);

// Whether `op`, on another instance, touches an object a CR describes: those converge through
// the fleet's own passes (apply, serve), never through the mirror.
bool described_by_crs(const syncer::Operation& op, const config::DesiredState& crs);

// Whether the mirror may execute `op` on another instance: not what a CR describes, and without
// `deletes` no deletion of something only that instance has (a second application of a copied
// account, product and name is such a thing: reported, not deleted).
bool mirror_may(const syncer::Operation& op, const config::DesiredState& crs, bool deletes);

// The accounts on `target` that `desired` does not have (neither a CR's nor the source's): to
// delete with `deletes: true` (a complete read of the source and of the target), else reported.
std::vector<syncer::Operation> stray_accounts(const config::DesiredState& desired,
                                              const syncer::InstanceState& target);

}  // namespace mirror
