#pragma once

#include <optional>
#include <string_view>

namespace lb {

// What an operator (or `tandem serve`) says a cluster may take, as HAProxy's runtime API does:
// ready (its share of new requests), drain (no new requests; those in flight finish) and maint
// (no traffic at all: its idle connections are closed too). Health checks go on in every state.
enum class AdminState { kReady, kDrain, kMaint };

std::string_view admin_state_name(AdminState s);
std::optional<AdminState> parse_admin_state(std::string_view text);

}  // namespace lb
