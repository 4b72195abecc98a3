#pragma once

#include <string_view>

namespace lb {

enum class LogLevel { kInfo, kWarn, kError };

// One line on stderr ("2026-11-21T10:00:00.123Z warn cluster east endpoint 10.0.0.1:80 down: ...")
// written with a single write(2), so lines from several threads never interleave.
void log_line(LogLevel level, std::string_view message);

}  // namespace lb
