#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "config/yaml_reader.hpp"

namespace config {

// A secret value (an admin token). It has no operator<< and no to_string: the only way out is
// reveal(), so it cannot end up in a log line or an error message by accident.
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    [[nodiscard]] const std::string& reveal() const { return value_; }
    [[nodiscard]] bool empty() const { return value_.empty(); }

private:
    std::string value_;
};

// A secret and where it came from ("env TANDEM_EAST_TOKEN", "file /run/secrets/east"), the
// latter for messages.
struct SecretSource {
    Secret value;
    std::string source;
};

// `{env: VARIABLE}` or `{file: PATH}` (relative to `base`): the one way a token is written in
// tandem's files, never its value. `what` says what it must hold, for the errors ("the east
// admin access token"). Every problem is a Diagnostic at the field; nullopt then. Without
// `resolve` only the shape is checked (the value stays empty): a command that will not use it.
std::optional<SecretSource> read_secret_source(YamlReader& r,
                                               const YamlNode& node,
                                               const std::string& where,
                                               const std::filesystem::path& base,
                                               const std::string& what,
                                               bool resolve = true);

// Compares a presented credential with the expected one in time that depends only on their
// lengths (no early exit on the first differing byte).
bool secret_equals(std::string_view presented, const Secret& expected);

}  // namespace config
