// tandem doctor over the corpus in test/testdata/ha (generate.py): every case's findings must be
// exactly its `expected` lines, and no output format may ever contain a secret value.
#include "ha/doctor.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "config/fleet.hpp"
#include "ha/connection_url.hpp"

namespace {

namespace fs = std::filesystem;
constexpr const char* kCanary = "CANARY-7f3e-never-print-me";

std::string severity(ha::Severity s) {
    return s == ha::Severity::kError ? "error" : s == ha::Severity::kWarning ? "warning" : "info";
}

std::string underscores(std::string s) {
    std::replace(s.begin(), s.end(), ' ', '_');
    return s.empty() ? "-" : s;
}

std::vector<std::string> cases() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(std::string(TANDEM_TESTDATA_DIR) + "/ha")) {
        if (e.is_directory()) {
            out.push_back(e.path().filename().string());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

class Corpus : public ::testing::TestWithParam<std::string> {};

TEST_P(Corpus, FindingsAreExactlyTheExpectedOnes) {
    const fs::path dir = fs::path(TANDEM_TESTDATA_DIR) / "ha" / GetParam();
    auto fleet = config::load_fleet(dir / "fleet.yaml",
                                    {.require_tokens = false, .require_resources = false});
    ASSERT_TRUE(fleet.has_value()) << fleet.error().front().to_string();
    const auto report = ha::doctor(*fleet);
    std::multiset<std::string> got;
    for (const auto& f : report.findings) {
        got.insert(severity(f.severity) + " " + f.rule + " " + underscores(f.instance) + " " +
                   underscores(f.object) + " " + underscores(f.field));
        EXPECT_FALSE(f.message.empty());
        EXPECT_FALSE(f.fix.empty()) << f.rule << " " << f.field;
        EXPECT_FALSE(f.source.file.empty()) << f.rule << " " << f.field;
    }
    std::multiset<std::string> expected;
    std::ifstream in(dir / "expected");
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            expected.insert(line);
        }
    }
    EXPECT_EQ(got, expected) << ha::format_text(report);
    const bool errors = std::any_of(expected.begin(), expected.end(),
                                    [](const std::string& l) { return l.starts_with("error"); });
    EXPECT_EQ(report.exit_code(), errors ? 2 : 0);
    for (const auto& out :
         {ha::format_text(report), ha::format_json(report, "2026-11-21T00:00:00Z"),
          ha::format_markdown(report)}) {
        EXPECT_EQ(out.find(kCanary), std::string::npos) << "a secret value leaked:\n" << out;
        EXPECT_EQ(out.find("internal-pw-1"), std::string::npos);
        EXPECT_EQ(out.find("zync-east-pw"), std::string::npos);
    }
}

INSTANTIATE_TEST_SUITE_P(Ha, Corpus, ::testing::ValuesIn(cases()), [](const auto& param_info) {
    std::string n = param_info.param;
    std::replace_if(
        n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
        '_');
    return n;
});

TEST(Doctor, FindingsSayWhereAndAnInstanceWithoutApimanagerIsNotChecked) {
    const fs::path dir = fs::path(TANDEM_TESTDATA_DIR) / "ha" / "replicas-unset";
    auto fleet = config::load_fleet(dir / "fleet.yaml",
                                    {.require_tokens = false, .require_resources = false});
    ASSERT_TRUE(fleet.has_value());
    auto report = ha::doctor(*fleet);
    ASSERT_EQ(report.findings.size(), 1u);
    EXPECT_EQ(fs::path(report.findings[0].source.file).filename(), "apimanager.yaml");
    EXPECT_GT(report.findings[0].source.line, 1);
    EXPECT_NE(report.findings[0].fix.find("replicas: 3"), std::string::npos);
    fleet->instances[1].ha.apimanager.reset();
    report = ha::doctor(*fleet);
    EXPECT_EQ(report.exit_code(), 1);
    EXPECT_NE(ha::format_text(report).find("west: NOT CHECKED"), std::string::npos);
}

TEST(ConnectionUrls, RedisForms) {
    std::string error;
    auto u = ha::parse_redis_url("redis://:pw@backend-redis:6380/1", error);
    ASSERT_TRUE(u);
    EXPECT_TRUE(u->has_password);
    EXPECT_EQ(u->host, "backend-redis");
    EXPECT_EQ(u->port, 6380);
    EXPECT_EQ(u->db, 1);
    EXPECT_EQ(u->identity(false), "backend-redis:6380/1");
    u = ha::parse_redis_url("rediss://mymaster/5", error);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->identity(true), "sentinel-group mymaster/5");
    EXPECT_FALSE(ha::parse_redis_url("http://x:6379/0", error));
    EXPECT_FALSE(ha::parse_redis_url("redis://host:6379/zero", error));
    EXPECT_FALSE(ha::parse_redis_url("redis://:pw@/0", error));
    auto hosts = ha::parse_sentinel_hosts(
        ":sentinelpwd@123.45.67.9:2711, redis://other-sentinel:2722,s3", error);
    ASSERT_TRUE(hosts);
    ASSERT_EQ(hosts->size(), 3u);
    EXPECT_EQ((*hosts)[0].port, 2711);
    EXPECT_FALSE((*hosts)[2].port_given);
    EXPECT_FALSE(ha::parse_sentinel_hosts("a:1,,b:2", error));
    EXPECT_FALSE(ha::parse_sentinel_hosts("http://a:1", error));
}

TEST(ConnectionUrls, DatabaseForms) {
    std::string error;
    auto d = ha::parse_database_url("mysql2://root:pw@system-mysql/system", error);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->port, 3306);
    EXPECT_EQ(d->identity(), "mysql2://system-mysql:3306/system");
    d = ha::parse_database_url("postgresql://zync:pw@pg:5433/zync_production", error);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->password, "pw");
    EXPECT_EQ(d->port, 5433);
    EXPECT_FALSE(ha::parse_database_url("mongodb://h/db", error));
    EXPECT_FALSE(ha::parse_database_url("postgresql://u:p@h", error));
}

}  // namespace
