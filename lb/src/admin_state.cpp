#include "lb/admin_state.hpp"

namespace lb {

std::string_view admin_state_name(AdminState s) {
    switch (s) {
        case AdminState::kReady:
            return "ready";
        case AdminState::kDrain:
            return "drain";
        case AdminState::kMaint:
            return "maint";
    }
    return "ready";
}

std::optional<AdminState> parse_admin_state(std::string_view text) {
    for (const auto s : {AdminState::kReady, AdminState::kDrain, AdminState::kMaint}) {
        if (text == admin_state_name(s)) {
            return s;
        }
    }
    return std::nullopt;
}

}  // namespace lb
