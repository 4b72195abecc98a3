#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/diagnostic.hpp"

namespace config {

class Secret;

// A v1 Secret found next to an instance's APIManager CR (values decoded from data/stringData,
// or taken from the environment or a file through tandem.3scale.net/env.KEY and /file.KEY
// annotations). Values are never printed.
struct SecretDoc {
    std::string name;
    Source source;
    std::map<std::string, std::string> values;
    std::map<std::string, int> lines;  // key -> line
};

// An instance's APIManager CR as written (YAML turned into JSON), with the line of every node so
// findings can say where.
struct ApiManagerDoc {
    std::filesystem::path path;  // the file or directory the fleet names
    Source source;               // the APIManager document itself
    std::string name;
    std::string namespace_name;
    std::map<std::string, std::string> annotations;
    nlohmann::json spec = nlohmann::json::object();
    std::map<std::string, int> lines;  // JSON pointer under the CR ("/spec/apicast/...") -> line
    std::map<std::string, SecretDoc> secrets;  // by metadata.name

    // The line of `pointer`, or of its closest ancestor that has one.
    [[nodiscard]] int line_of(std::string pointer) const;
};

// The fleet's `ha:` section: what every instance's APIManager must agree on, and what
// `tandem render` produces.
struct HaSettings {
    bool present = false;
    std::string version = "2.15";  // 3scale version the APIManager CRs target (2.9 .. 2.16)
    std::string wildcard_domain;
    std::string tenant_name = "3scale";
    std::string namespace_name = "3scale";
    std::string mode = "active-active";  // or active-passive (shared databases, one standby)
    // Values for the mirrored secrets (secret -> key -> value); what is missing is generated.
    std::map<std::string, std::map<std::string, std::string>> mirrored;
    Source source;
};

// Per instance.
struct InstanceHa {
    std::optional<ApiManagerDoc> apimanager;  // from `apimanager:` (nullopt when not given)
    int zones = 0;                            // availability zones its nodes span (0: unknown)
    std::string role = "active";              // active | standby (active-passive only)
    // Connection secrets of this instance's own databases, for `tandem render`:
    // secret name (backend-redis, system-redis, system-database, zync) -> key -> value.
    std::map<std::string, std::map<std::string, std::string>> databases;
    Source source;
};

// "2.15" -> 15 (the minor version); 0 when malformed.
int minor_version(const std::string& version);

}  // namespace config
