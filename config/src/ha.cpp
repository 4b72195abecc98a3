#include "config/ha.hpp"

#include <charconv>

namespace config {

int ApiManagerDoc::line_of(std::string pointer) const {
    for (;;) {
        if (auto it = lines.find(pointer); it != lines.end()) {
            return it->second;
        }
        const auto slash = pointer.rfind('/');
        if (slash == std::string::npos || slash == 0) {
            return source.line;
        }
        pointer.resize(slash);
    }
}

int minor_version(const std::string& version) {
    if (!version.starts_with("2.")) {
        return 0;
    }
    int minor = 0;
    const char* begin = version.data() + 2;
    const char* end = version.data() + version.size();
    const auto [p, ec] = std::from_chars(begin, end, minor);
    if (ec != std::errc() || (p != end && *p != '.')) {
        return 0;
    }
    return minor;
}

}  // namespace config
