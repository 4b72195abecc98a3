#include "ratelimit/period.hpp"

#include <gtest/gtest.h>

namespace ratelimit {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_days;

Seconds at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
    const sys_days day{std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d)};
    return std::chrono::time_point_cast<seconds>(day) + hours(hh) + minutes(mm) + seconds(ss);
}

TEST(Period, ParsesTheSevenPeriodsAndNothingElse) {
    for (const auto p : kAllPeriods) {
        EXPECT_EQ(parse_period(to_string(p)), p);
    }
    EXPECT_FALSE(parse_period("second"));  // exists inside apisonator, not for limits
    EXPECT_FALSE(parse_period("Minute"));
    EXPECT_FALSE(parse_period(""));
}

TEST(Period, MinuteWindowIsAlignedToTheUtcMinute) {
    EXPECT_EQ(window_at(Period::kMinute, at(2026, 11, 20, 10, 15, 59)),
              (Window{at(2026, 11, 20, 10, 15), at(2026, 11, 20, 10, 16)}));
    EXPECT_EQ(window_at(Period::kMinute, at(2026, 11, 20, 10, 16, 0)).start,
              at(2026, 11, 20, 10, 16));
}

TEST(Period, HourAndDayRollOverAtUtcBoundaries) {
    EXPECT_EQ(window_at(Period::kHour, at(2026, 11, 20, 23, 59, 59)),
              (Window{at(2026, 11, 20, 23), at(2026, 11, 21)}));
    EXPECT_EQ(window_at(Period::kDay, at(2026, 12, 31, 23, 59, 59)),
              (Window{at(2026, 12, 31), at(2027, 1, 1)}));
}

TEST(Period, WeeksStartOnMonday) {
    // 2026-11-20 is a Friday; 2026-11-16 a Monday; 2026-11-22 a Sunday.
    EXPECT_EQ(window_at(Period::kWeek, at(2026, 11, 20, 12)),
              (Window{at(2026, 11, 16), at(2026, 11, 23)}));
    EXPECT_EQ(window_at(Period::kWeek, at(2026, 11, 22, 23, 59, 59)).start, at(2026, 11, 16));
    EXPECT_EQ(window_at(Period::kWeek, at(2026, 11, 23)).start, at(2026, 11, 23));
    // a week spanning a year boundary
    EXPECT_EQ(window_at(Period::kWeek, at(2027, 1, 1)).start, at(2026, 12, 28));
}

TEST(Period, MonthsAndYearsAreCalendarAligned) {
    EXPECT_EQ(window_at(Period::kMonth, at(2028, 2, 29, 23, 59, 59)),
              (Window{at(2028, 2, 1), at(2028, 3, 1)}));
    EXPECT_EQ(window_at(Period::kMonth, at(2026, 12, 15)),
              (Window{at(2026, 12, 1), at(2027, 1, 1)}));
    EXPECT_EQ(window_at(Period::kYear, at(2026, 7, 4)), (Window{at(2026, 1, 1), at(2027, 1, 1)}));
}

TEST(Period, EternityNeverRollsOver) {
    const Window w = window_at(Period::kEternity, at(2026, 11, 20));
    EXPECT_EQ(w.start, at(1970, 1, 1));
    EXPECT_EQ(w.end, at(9999, 12, 31));
    EXPECT_EQ(window_at(Period::kEternity, at(2099, 1, 1)), w);
}

}  // namespace
}  // namespace ratelimit

namespace ratelimit {
namespace {

TEST(Period, Iso8601) {
    EXPECT_EQ(to_iso8601(Seconds(std::chrono::seconds(1790000040))), "2026-09-21T14:14:00Z");
    EXPECT_EQ(to_iso8601(Seconds(std::chrono::seconds(0))), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace ratelimit
