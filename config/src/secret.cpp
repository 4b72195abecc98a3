// Secrets in tandem's files: {env: VARIABLE} or {file: PATH}, never the value itself.
#include "config/secret.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>

namespace config {

std::optional<SecretSource> read_secret_source(YamlReader& r,
                                               const YamlNode& node,
                                               const std::string& where,
                                               const std::filesystem::path& base,
                                               const std::string& what,
                                               bool resolve) {
    if (!node.defined() || node.null()) {
        r.error(node.defined() ? node : YamlNode(), where,
                "is required: {env: VARIABLE} or {file: /path/to/token}");
        return std::nullopt;
    }
    if (!node.is_map()) {
        r.error(node, where,
                "must be {env: VARIABLE} or {file: PATH}; a token is never written in " +
                    std::filesystem::path(r.file()).filename().string() + " itself");
        return std::nullopt;
    }
    r.only(node, where, {"env", "file"});
    const auto env = r.str(node, "env", where, false);
    const auto file = r.str(node, "file", where, false);
    if (env.has_value() == file.has_value()) {
        r.error(node, where, "set exactly one of env, file");
        return std::nullopt;
    }
    if (!resolve) {
        return SecretSource{Secret(), env ? "env " + *env : "file " + *file};
    }
    if (env) {
        const char* value = std::getenv(env->c_str());
        if (value == nullptr || *value == '\0') {
            r.error(node, where + ".env",
                    "environment variable " + *env + " is not set or empty (it must hold " + what +
                        ")");
            return std::nullopt;
        }
        return SecretSource{Secret(value), "env " + *env};
    }
    std::filesystem::path path = *file;
    if (path.is_relative()) {
        path = base / path;
    }
    std::ifstream in(path);
    if (!in) {
        r.error(node, where + ".file",
                "cannot read token file " + path.string() + " (it must hold " + what + ")");
        return std::nullopt;
    }
    std::string token;
    std::getline(in, token);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())) != 0) {
        token.pop_back();
    }
    if (token.empty()) {
        r.error(node, where + ".file", "token file is empty: " + path.string());
        return std::nullopt;
    }
    return SecretSource{Secret(std::move(token)), "file " + path.string()};
}

bool secret_equals(std::string_view presented, const Secret& expected) {
    const std::string& want = expected.reveal();
    unsigned char diff = presented.size() == want.size() ? 0 : 1;
    const std::size_t n = want.size();
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
        diff |= static_cast<unsigned char>(p ^ static_cast<unsigned char>(want[i]));
    }
    return diff == 0;
}

}  // namespace config
