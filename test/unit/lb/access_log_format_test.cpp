// The access log's lines (JSON, common, combined), the redaction of credentials, and the
// request IDs.
#include "lb/access_log_format.hpp"

#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "lb/request_id.hpp"

namespace lb {
namespace {

namespace http = boost::beast::http;

// 2026-12-06T08:00:00.123Z
std::chrono::system_clock::time_point at_123() {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1796544000) +
                                                 std::chrono::milliseconds(123));
}

AccessRecord sample(const RequestHead& head) {
    AccessRecord r;
    r.time = at_123();
    r.client = "192.0.2.7";
    r.method = head.method_string();
    r.target = head.target();
    r.version = head.version();
    r.host = "api.example.com";
    r.status = 200;
    r.bytes_in = 5;
    r.bytes_out = 1234;
    r.seconds = 0.0012346;
    r.upstream_seconds = 0.001;
    r.cluster = "east";
    r.endpoint = "10.0.0.1:80";
    r.retries = 1;
    r.request_id = "5f0c1a9e4b27-0-000000000000002a";
    r.head = &head;
    return r;
}

RequestHead head_with(const std::string& target) {
    RequestHead h;
    h.method(http::verb::get);
    h.target(target);
    h.version(11);
    h.set(http::field::host, "api.example.com");
    h.set(http::field::user_agent, "curl/7.88.1");
    h.set(http::field::referer, "https://portal.example.com/docs?app_key=secret-2&x=1");
    h.set("user_key", "secret-3");
    h.set(http::field::authorization, "Bearer secret-4");
    return h;
}

TEST(AccessLogFormat, JsonCarriesEveryFieldAndParses) {
    const auto head = head_with("/v1/things?user_key=secret-1&page=2");
    AccessLogConfig config;
    config.headers = {"User-Agent", "user_key", "Authorization", "X-Absent"};
    std::string line;
    format_access_line(sample(head), config, line);
    ASSERT_EQ(line.back(), '\n');
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["time"], "2026-12-06T08:00:00.123Z");
    EXPECT_EQ(j["client"], "192.0.2.7");
    EXPECT_EQ(j["method"], "GET");
    EXPECT_EQ(j["path"], "/v1/things?user_key=<redacted>&page=2");
    EXPECT_EQ(j["protocol"], "HTTP/1.1");
    EXPECT_EQ(j["host"], "api.example.com");
    EXPECT_EQ(j["status"], 200);
    EXPECT_EQ(j["bytes_in"], 5);
    EXPECT_EQ(j["bytes_out"], 1234);
    EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.235);  // (rounded to the microsecond)
    EXPECT_DOUBLE_EQ(j["upstream_ms"].get<double>(), 1.0);
    EXPECT_EQ(j["cluster"], "east");
    EXPECT_EQ(j["endpoint"], "10.0.0.1:80");
    EXPECT_EQ(j["retries"], 1);
    EXPECT_EQ(j["request_id"], "5f0c1a9e4b27-0-000000000000002a");
    EXPECT_EQ(j["tls"], "");
    EXPECT_EQ(j["reason"], "");
    EXPECT_EQ(j["headers"]["user-agent"], "curl/7.88.1");
    EXPECT_EQ(j["headers"]["user_key"], "<redacted>");
    EXPECT_EQ(j["headers"]["authorization"], "<redacted>");
    EXPECT_FALSE(j["headers"].contains("x-absent"));
    EXPECT_EQ(line.find("secret"), std::string::npos) << line;
}

TEST(AccessLogFormat, CredentialsAreRedactedHoweverTheyAreSpelled) {
    const std::vector<std::string> names{"user_key", "app_id", "app_key", "access_token"};
    const auto redacted = [&](const std::string& target) {
        std::string out;
        append_redacted_target(target, names, out);
        return out;
    };
    EXPECT_EQ(redacted("/a?user_key=s1"), "/a?user_key=<redacted>");
    EXPECT_EQ(redacted("/a?x=1&APP_ID=s2&app_key=s3&y"),
              "/a?x=1&APP_ID=<redacted>&app_key=<redacted>&y");
    EXPECT_EQ(redacted("/a?user%5Fkey=s4"), "/a?user%5Fkey=<redacted>");  // %-encoded name
    EXPECT_EQ(redacted("/a?access_token=s5&"), "/a?access_token=<redacted>&");
    EXPECT_EQ(redacted("/a?user_key"), "/a?user_key");        // (no value to hide)
    EXPECT_EQ(redacted("/a/user_key=s6"), "/a/user_key=s6");  // a path, not a query
    EXPECT_EQ(redacted("/no-query"), "/no-query");
    EXPECT_EQ(redacted("/a?user_keyx=1&xuser_key=2"), "/a?user_keyx=1&xuser_key=2");
}

TEST(AccessLogFormat, JsonEscapesWhatAClientSent) {
    RequestHead h = head_with("/q");
    h.set(http::field::user_agent, "evil\"\\agent\x01\xff");
    AccessLogConfig config;
    config.headers = {"user-agent"};
    std::string line;
    format_access_line(sample(h), config, line);
    const auto j = nlohmann::json::parse(line);  // throws if the line were not JSON
    EXPECT_EQ(j["headers"]["user-agent"], "evil\"\\agent\x01\xc3\xbf");  // \u00ff read back
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

TEST(AccessLogFormat, CommonAndCombined) {
    const auto head = head_with("/v1?app_id=secret-1");
    AccessLogConfig config;
    config.format = AccessLogConfig::Format::kCommon;
    std::string line;
    format_access_line(sample(head), config, line);
    EXPECT_EQ(line,
              "192.0.2.7 - - [06/Dec/2026:08:00:00 +0000] \"GET /v1?app_id=<redacted> HTTP/1.1\" "
              "200 1234\n");
    config.format = AccessLogConfig::Format::kCombined;
    line.clear();
    format_access_line(sample(head), config, line);
    EXPECT_EQ(line,
              "192.0.2.7 - - [06/Dec/2026:08:00:00 +0000] \"GET /v1?app_id=<redacted> HTTP/1.1\" "
              "200 1234 \"https://portal.example.com/docs?app_key=<redacted>&x=1\" "
              "\"curl/7.88.1\"\n");
    // A request refused before its request line was read.
    AccessRecord refused;
    refused.time = at_123();
    refused.client = "192.0.2.7";
    refused.status = 400;
    line.clear();
    format_access_line(refused, config, line);
    EXPECT_EQ(line, "192.0.2.7 - - [06/Dec/2026:08:00:00 +0000] \"-\" 400 - \"-\" \"-\"\n");
}

TEST(RequestId, UniqueWellFormedAndCheap) {
    RequestIdGenerator a(0x5f0c1a9e4b27, 0);
    RequestIdGenerator b(0x5f0c1a9e4b27, 1);
    RequestIdGenerator::Buffer buf;
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        seen.emplace(a.next(buf));
        seen.emplace(b.next(buf));
    }
    EXPECT_EQ(seen.size(), 2000U);
    EXPECT_EQ(std::string(a.next(buf)), "5f0c1a9e4b27-0-00000000000003e9");
    EXPECT_TRUE(well_formed_request_id(std::string(a.next(buf))));
    EXPECT_EQ(RequestIdGenerator::process_prefix(), RequestIdGenerator::process_prefix());
    EXPECT_TRUE(well_formed_request_id("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
    EXPECT_TRUE(well_formed_request_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    EXPECT_FALSE(well_formed_request_id(""));
    EXPECT_FALSE(well_formed_request_id(std::string(129, 'a')));
    EXPECT_FALSE(well_formed_request_id("has space"));
    EXPECT_FALSE(well_formed_request_id("quote\""));
    EXPECT_FALSE(well_formed_request_id("new\nline"));
}

}  // namespace
}  // namespace lb
