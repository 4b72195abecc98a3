// tandem doctor and tandem render as real processes: exit codes, formats, files, and no secret
// value in any output.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "support/child_process.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using support::ChildProcess;

constexpr const char* kCanary = "CANARY-7f3e-never-print-me";

struct Run {
    int code = -1;
    std::string out;
};

Run tandem(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), TANDEM_PATH);
    ChildProcess p(args, std::move(env), true);
    Run r;
    r.out = p.read_all(60s);
    r.code = p.wait(30s).value_or(-1);
    return r;
}

std::string corpus(const std::string& c) {
    return std::string(TANDEM_TESTDATA_DIR) + "/ha/" + c + "/fleet.yaml";
}

TEST(DoctorCli, ExitCodesFormatsAndNoSecretValues) {
    // No admin token variables are set: doctor never contacts an instance.
    auto clean = tandem({"doctor", "-f", corpus("good")});
    EXPECT_EQ(clean.code, 0) << clean.out;
    EXPECT_NE(clean.out.find("summary: 0 errors"), std::string::npos) << clean.out;
    for (const char* format : {"text", "json", "markdown"}) {
        auto r = tandem({"doctor", "-f", corpus("mirrored-secret-differs"), "--output", format});
        EXPECT_EQ(r.code, 2) << r.out;
        EXPECT_NE(r.out.find("ADMIN_PASSWORD"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find(kCanary), std::string::npos) << r.out;
        if (std::string(format) == "json") {
            const auto doc = nlohmann::json::parse(r.out);
            EXPECT_EQ(doc["report"], "doctor");
            EXPECT_EQ(doc["summary"]["errors"], 2);
            EXPECT_EQ(doc["findings"][0]["rule"], "mirrored-secrets");
        }
    }
    auto broken = tandem({"doctor", "-f", corpus("shared-database")});
    EXPECT_EQ(broken.code, 2);
    EXPECT_NE(broken.out.find("east and west point at the same database"), std::string::npos)
        << broken.out;
    EXPECT_EQ(broken.out.find(kCanary), std::string::npos);
    auto missing = tandem({"doctor", "-f", "/nonexistent/fleet.yaml"});
    EXPECT_EQ(missing.code, 1);
}

TEST(RenderCli, WritesWhatDoctorAcceptsAndNothingOnBadInput) {
    const fs::path dir =
        fs::temp_directory_path() / ("tandem-render-e2e-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "fleet.yaml")
        << "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.16\"\n  wildcardDomain: "
           "apps.example.com\ninstances:\n";
    for (const std::string n : {"east", "west"}) {
        std::ofstream(dir / "fleet.yaml", std::ios::app)
            << "  - name: " << n << "\n    adminUrl: https://" << n
            << ".example.com\n    zones: 3\n"
            << "    databases:\n      backend-redis:\n        REDIS_STORAGE_URL: redis://b." << n
            << ":6379/0\n        REDIS_QUEUES_URL: redis://b." << n << ":6379/1\n"
            << "      system-redis: {URL: 'redis://s." << n << ":6379/1'}\n"
            << "      system-database: {URL: {env: DB_" << n << "}}\n"
            << "      zync: {DATABASE_URL: 'postgresql://z:zp@z." << n
            << ":5432/zync_production', ZYNC_DATABASE_PASSWORD: zp}\n";
    }
    const std::map<std::string, std::string> env{
        {"DB_east", std::string("postgresql://system:") + kCanary + "@pg.east/system"},
        {"DB_west", std::string("postgresql://system:") + kCanary + "@pg.west/system"}};
    auto r = tandem(
        {"render", "-f", (dir / "fleet.yaml").string(), "--out", (dir / "out").string()}, env);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.find(kCanary), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("east/secrets.yaml  (0600)"), std::string::npos) << r.out;
    struct stat st {};
    ASSERT_EQ(::stat((dir / "out" / "west" / "secrets.yaml").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    std::ofstream(dir / "out" / "fleet.yaml")
        << "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.16\"\n  wildcardDomain: "
           "apps.example.com\ninstances:\n  - {name: east, adminUrl: 'https://east.example.com', "
           "apimanager: east/, zones: 3}\n  - {name: west, adminUrl: 'https://west.example.com', "
           "apimanager: west/, zones: 3}\n";
    auto doctor = tandem({"doctor", "-f", (dir / "out" / "fleet.yaml").string()});
    EXPECT_EQ(doctor.code, 0) << doctor.out;
    EXPECT_EQ(doctor.out.find(kCanary), std::string::npos);

    // Bad input: every problem reported, nothing written.
    auto bad = tandem({"render", "-f", (dir / "fleet.yaml").string(), "--out",
                       (dir / "out-bad").string()});  // DB_east / DB_west not set
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.out.find("environment variable DB_east is not set"), std::string::npos)
        << bad.out;
    EXPECT_NE(bad.out.find("environment variable DB_west is not set"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir / "out-bad"));
    fs::remove_all(dir);
}

}  // namespace
