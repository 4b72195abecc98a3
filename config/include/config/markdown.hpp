#pragma once

#include <string>
#include <string_view>

namespace config {

// Text made safe for one cell of a Markdown table (the reports tandem writes for pull requests):
// '|' escaped, line breaks folded into spaces.
inline std::string markdown_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        if (ch == '|') {
            out += "\\|";
        } else if (ch == '\n') {
            out += ' ';
        } else {
            out += ch;
        }
    }
    return out;
}

}  // namespace config
