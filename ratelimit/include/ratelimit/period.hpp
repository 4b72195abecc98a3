#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ratelimit {

// The periods a 3scale usage limit can have (porta UsageLimit::PERIODS, apisonator PERIODS),
// longest first.
enum class Period { kEternity, kYear, kMonth, kWeek, kDay, kHour, kMinute };

inline constexpr std::array<Period, 7> kAllPeriods = {
    Period::kEternity, Period::kYear, Period::kMonth, Period::kWeek,
    Period::kDay,      Period::kHour, Period::kMinute};

using Seconds = std::chrono::sys_seconds;

// "eternity", "year", ... exactly as the admin API and the operator CRDs spell them.
std::string_view to_string(Period period) noexcept;
std::optional<Period> parse_period(std::string_view text) noexcept;

// A fixed, calendar-aligned UTC window, [start, end). This is how apisonator counts usage:
// minute/hour/day start at the UTC boundary, weeks on Monday 00:00 UTC, months and years on
// the calendar, eternity from 1970-01-01 to 9999-12-31 (apisonator period/boundary.rb).
struct Window {
    Seconds start;
    Seconds end;
    friend bool operator==(const Window&, const Window&) = default;
};

Window window_at(Period period, Seconds now) noexcept;

// "2026-11-20T10:15:00Z": the UTC instant as the admin API and the reports write it (the
// project's one ISO-8601 helper; a finer time point is written to the second).
std::string to_iso8601(Seconds t);
std::string to_iso8601(std::chrono::system_clock::time_point t);

}  // namespace ratelimit
