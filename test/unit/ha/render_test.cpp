// tandem render: what it writes passes tandem doctor, mirrored values are identical everywhere
// and kept between renders, secrets are 0600, and bad input writes nothing.
#include "ha/render.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "config/fleet.hpp"
#include "config/yaml_writer.hpp"
#include "ha/doctor.hpp"

namespace {

namespace fs = std::filesystem;

struct TempDir {
    TempDir() {
        path = fs::temp_directory_path() /
               ("tandem-render-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    fs::path path;
    static inline int counter = 0;
};

std::string databases(const std::string& n, int indent) {
    const std::string pad(static_cast<std::size_t>(indent), ' ');
    return pad + "databases:\n" + pad + "  backend-redis:\n" + pad +
           "    REDIS_STORAGE_URL: redis://backend-redis." + n + ".example.com:6379/0\n" + pad +
           "    REDIS_QUEUES_URL: redis://backend-redis." + n + ".example.com:6379/1\n" + pad +
           "  system-redis:\n" + pad + "    URL: redis://system-redis." + n +
           ".example.com:6379/1\n" + pad + "  system-database:\n" + pad +
           "    URL: {env: TANDEM_TEST_" + n + "_DB}\n" + pad + "  zync:\n" + pad +
           "    DATABASE_URL: postgresql://zync:zpw-" + n + "@pg." + n +
           ".example.com:5432/zync_production\n" + pad + "    ZYNC_DATABASE_PASSWORD: zpw-" + n +
           "\n";
}

config::Fleet load(const fs::path& file) {
    auto fleet = config::load_fleet(file, {.require_tokens = false, .require_resources = false});
    if (!fleet) {
        ADD_FAILURE() << fleet.error().front().to_string();
        return {};
    }
    return *fleet;
}

std::string mode_of(const fs::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    char buf[8];
    std::snprintf(buf, sizeof buf, "%03o", st.st_mode & 0777);
    return buf;
}

void write(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
}

class Render : public ::testing::Test {
protected:
    void SetUp() override {
        ::setenv("TANDEM_TEST_east_DB", "mysql2://system:dbpw-east@mysql.east.example.com/system",
                 1);
        ::setenv("TANDEM_TEST_west_DB", "mysql2://system:dbpw-west@mysql.west.example.com/system",
                 1);
    }
    TempDir dir;
};

TEST_F(Render, ActiveActiveOutputPassesDoctorAndMirrorsOneSetOfValues) {
    write(dir.path / "fleet.yaml",
          "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.15\"\n  wildcardDomain: "
          "apps.example.com\n  mirroredSecrets:\n    system-seed:\n      ADMIN_PASSWORD: "
          "chosen-by-us\ninstances:\n  - name: east\n    adminUrl: https://east.example.com\n    "
          "zones: 3\n" +
              databases("east", 4) +
              "  - name: west\n    adminUrl: https://west.example.com\n    zones: 3\n" +
              databases("west", 4));
    const auto fleet = load(dir.path / "fleet.yaml");
    auto files = ha::render(fleet, {}, ha::csprng());
    ASSERT_TRUE(files.has_value()) << files.error().front().to_string();
    const fs::path out = dir.path / "out";
    ASSERT_TRUE(ha::write_rendered(out, *files));
    EXPECT_EQ(mode_of(out / "east" / "secrets.yaml"), "600");
    EXPECT_EQ(mode_of(out / "mirrored-secrets.yaml"), "600");
    EXPECT_EQ(mode_of(out / "east" / "apimanager.yaml"), "644");
    EXPECT_FALSE(fs::exists(out / "failover.md"));

    config::Diagnostics diags;
    const auto east = config::load_secrets_file(out / "east" / "secrets.yaml", diags);
    const auto west = config::load_secrets_file(out / "west" / "secrets.yaml", diags);
    ASSERT_TRUE(east && west);
    for (const char* s : {"backend-internal-api", "system-app", "system-events-hook",
                          "system-master-apicast", "system-seed"}) {
        EXPECT_EQ(east->at(s), west->at(s)) << s;
    }
    EXPECT_EQ(east->at("system-seed").at("ADMIN_PASSWORD"), "chosen-by-us");
    EXPECT_EQ(east->at("system-app").at("SECRET_KEY_BASE").size(), 128u);
    EXPECT_NE(east->at("system-database").at("URL"), west->at("system-database").at("URL"));

    // The rendered CRs and Secrets pass tandem doctor, in a fleet that points at them.
    write(out / "fleet.yaml",
          "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.15\"\n  wildcardDomain: "
          "apps.example.com\ninstances:\n  - name: east\n    adminUrl: https://east.example.com\n"
          "    apimanager: east/\n    zones: 3\n  - name: west\n    adminUrl: "
          "https://west.example.com\n    apimanager: west/\n    zones: 3\n");
    const auto report = ha::doctor(load(out / "fleet.yaml"));
    EXPECT_TRUE(report.findings.empty()) << ha::format_text(report);
    EXPECT_EQ(report.exit_code(), 0);

    // A second render reuses the generated values.
    const auto previous = config::load_secrets_file(out / "mirrored-secrets.yaml", diags);
    ASSERT_TRUE(previous);
    auto again = ha::render(fleet, *previous, ha::csprng());
    ASSERT_TRUE(again.has_value());
    ASSERT_TRUE(ha::write_rendered(dir.path / "out2", *again));
    const auto east2 =
        config::load_secrets_file(dir.path / "out2" / "east" / "secrets.yaml", diags);
    ASSERT_TRUE(east2);
    EXPECT_EQ(east2->at("system-seed"), east->at("system-seed"));
    EXPECT_EQ(east2->at("backend-internal-api"), east->at("backend-internal-api"));
}

TEST_F(Render, ActivePassiveGetsTheStandbyPatchAndTheChecklist) {
    write(dir.path / "fleet.yaml",
          "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.13\"\n  wildcardDomain: "
          "apps.example.com\n  mode: active-passive\ninstances:\n  - name: east\n    adminUrl: "
          "https://east.example.com\n    zones: 2\n" +
              databases("east", 4) +
              "  - name: dr\n    adminUrl: https://dr.example.com\n    role: standby\n");
    const auto fleet = load(dir.path / "fleet.yaml");
    auto files = ha::render(fleet, {}, ha::csprng());
    ASSERT_TRUE(files.has_value()) << files.error().front().to_string();
    const fs::path out = dir.path / "out";
    ASSERT_TRUE(ha::write_rendered(out, *files));
    ASSERT_TRUE(fs::exists(out / "dr" / "patches" / "standby.yaml"));
    ASSERT_TRUE(fs::exists(out / "failover.md"));
    std::ifstream patch(out / "dr" / "patches" / "standby.yaml");
    const std::string text((std::istreambuf_iterator<char>(patch)), {});
    EXPECT_NE(text.find("cronSpec:\n      replicas: 0"), std::string::npos) << text;
    std::ifstream checklist(out / "failover.md");
    const std::string steps((std::istreambuf_iterator<char>(checklist)), {});
    EXPECT_NE(steps.find("zync:resync:domains"), std::string::npos);
    EXPECT_NE(steps.find("dc/system-app"), std::string::npos);  // 2.13: DeploymentConfigs
    config::Diagnostics diags;
    const auto dr = config::load_secrets_file(out / "dr" / "secrets.yaml", diags);
    const auto east = config::load_secrets_file(out / "east" / "secrets.yaml", diags);
    ASSERT_TRUE(dr && east);
    EXPECT_EQ(dr->at("system-database"), east->at("system-database"));  // shared databases
    std::ifstream am(out / "east" / "apimanager.yaml");
    const std::string cr((std::istreambuf_iterator<char>(am)), {});
    EXPECT_NE(cr.find("externalComponents"), std::string::npos);

    write(out / "fleet.yaml",
          "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.13\"\n  wildcardDomain: "
          "apps.example.com\n  mode: active-passive\ninstances:\n  - name: east\n    adminUrl: "
          "https://east.example.com\n    apimanager: east/\n    zones: 2\n  - name: dr\n    "
          "adminUrl: https://dr.example.com\n    apimanager: dr/\n    role: standby\n");
    const auto report = ha::doctor(load(out / "fleet.yaml"));
    EXPECT_EQ(report.count(ha::Severity::kError) + report.count(ha::Severity::kWarning), 0u)
        << ha::format_text(report);
}

TEST_F(Render, LegacyVersionsUseHighAvailability) {
    write(dir.path / "fleet.yaml",
          "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.10\"\n  wildcardDomain: "
          "apps.example.com\ninstances:\n  - name: east\n    adminUrl: https://east.example.com\n" +
              databases("east", 4));
    auto files = ha::render(load(dir.path / "fleet.yaml"), {}, ha::csprng());
    ASSERT_TRUE(files.has_value());
    const auto cr = std::find_if(files->begin(), files->end(), [](const ha::RenderedFile& f) {
        return f.path.filename() == "apimanager.yaml";
    });
    ASSERT_NE(cr, files->end());
    EXPECT_NE(cr->content.find("highAvailability"), std::string::npos);
    EXPECT_NE(cr->content.find("externalZyncDatabaseEnabled: true"), std::string::npos);
    EXPECT_EQ(cr->content.find("externalComponents"), std::string::npos);
    EXPECT_NE(cr->content.find("replicas: 2"), std::string::npos);
}

TEST_F(Render, MissingInputsAreAllReportedAndNothingIsProduced) {
    write(dir.path / "fleet.yaml",
          "apiVersion: tandem/v1\nkind: Fleet\nha:\n  version: \"2.15\"\ninstances:\n  - name: "
          "east\n    adminUrl: https://east.example.com\n    databases:\n      system-redis:\n    "
          "    URL: redis://r:6379/1\n");
    auto files = ha::render(load(dir.path / "fleet.yaml"), {}, ha::csprng());
    ASSERT_FALSE(files.has_value());
    std::string all;
    for (const auto& d : files.error()) {
        all += d.to_string() + "\n";
    }
    EXPECT_NE(all.find("ha.wildcardDomain: is required"), std::string::npos) << all;
    EXPECT_NE(all.find("instances.east.databases.backend-redis.REDIS_STORAGE_URL"),
              std::string::npos);
    EXPECT_NE(all.find("instances.east.databases.zync.ZYNC_DATABASE_PASSWORD"), std::string::npos);
    EXPECT_EQ(all.find("system-redis.URL"), std::string::npos);
}

TEST(RenderRandom, CsprngGivesAlphanumericStringsThatDiffer) {
    const auto random = ha::csprng();
    const auto a = random(64).value_or("");
    const auto b = random(64).value_or("");
    EXPECT_EQ(a.size(), 64u);
    EXPECT_NE(a, b);
    EXPECT_TRUE(std::all_of(a.begin(), a.end(), [](unsigned char c) { return std::isalnum(c); }));
}

}  // namespace
