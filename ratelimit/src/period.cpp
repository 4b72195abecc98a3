#include "ratelimit/period.hpp"

#include <cstdio>

namespace ratelimit {

namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::sys_days;
using std::chrono::year_month_day;

constexpr std::array<std::string_view, 7> kNames = {"eternity", "year", "month", "week",
                                                    "day",      "hour", "minute"};

Seconds to_seconds(sys_days d) {
    return std::chrono::time_point_cast<std::chrono::seconds>(d);
}

}  // namespace

std::string_view to_string(Period period) noexcept {
    return kNames.at(static_cast<std::size_t>(period));
}

std::optional<Period> parse_period(std::string_view text) noexcept {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (kNames[i] == text) {
            return kAllPeriods.at(i);
        }
    }
    return std::nullopt;
}

Window window_at(Period period, Seconds now) noexcept {
    switch (period) {
        case Period::kMinute: {
            const Seconds start = floor<minutes>(now);
            return {start, start + minutes(1)};
        }
        case Period::kHour: {
            const Seconds start = floor<hours>(now);
            return {start, start + hours(1)};
        }
        case Period::kDay: {
            const sys_days day = floor<days>(now);
            return {to_seconds(day), to_seconds(day + days(1))};
        }
        case Period::kWeek: {
            const sys_days day = floor<days>(now);
            const std::chrono::weekday wd{day};
            // c_encoding: Sunday = 0 .. Saturday = 6; weeks start on Monday.
            const auto since_monday = days((wd.c_encoding() + 6) % 7);
            const sys_days monday = day - since_monday;
            return {to_seconds(monday), to_seconds(monday + days(7))};
        }
        case Period::kMonth: {
            const year_month_day ymd{floor<days>(now)};
            const auto first = ymd.year() / ymd.month() / std::chrono::day(1);
            const auto next = first + std::chrono::months(1);
            return {to_seconds(sys_days(first)), to_seconds(sys_days(next))};
        }
        case Period::kYear: {
            const year_month_day ymd{floor<days>(now)};
            const auto first = ymd.year() / std::chrono::January / std::chrono::day(1);
            const auto next =
                (ymd.year() + std::chrono::years(1)) / std::chrono::January / std::chrono::day(1);
            return {to_seconds(sys_days(first)), to_seconds(sys_days(next))};
        }
        case Period::kEternity:
            break;
    }
    const sys_days epoch{std::chrono::year(1970) / std::chrono::January / std::chrono::day(1)};
    const sys_days last{std::chrono::year(9999) / std::chrono::December / std::chrono::day(31)};
    return {to_seconds(epoch), to_seconds(last)};
}

std::string to_iso8601(Seconds t) {
    const auto day = std::chrono::floor<days>(t);
    const year_month_day ymd{day};
    const std::chrono::hh_mm_ss hms{t - day};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

std::string to_iso8601(std::chrono::system_clock::time_point t) {
    return to_iso8601(std::chrono::floor<std::chrono::seconds>(t));
}

}  // namespace ratelimit
