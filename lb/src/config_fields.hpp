#pragma once

// How tandem-lb's file reads its values (sizes, durations, addresses, files...), on the shared
// YAML reader (config/yaml_reader.hpp): each reports a problem at its file:line and leaves `out`
// as it was. Shared by the loader's files (config_loader.cpp, config_edge.cpp).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/yaml_reader.hpp"
#include "lb/config.hpp"

namespace lb {

// "16KiB", "1MiB", "512", "1k" -> bytes.
std::optional<std::uint64_t> parse_size(const std::string& text);

void text(config::YamlReader& r,
          const config::YamlNode& map,
          const std::string& key,
          const std::string& path,
          std::string& out);

template <class T>
void number(config::YamlReader& r,
            const config::YamlNode& map,
            const std::string& key,
            const std::string& path,
            std::uint64_t low,
            std::uint64_t high,
            T& out) {
    if (auto v = r.integer_in(map, key, path, low, high)) {
        out = static_cast<T>(*v);
    }
}

void flag(config::YamlReader& r,
          const config::YamlNode& map,
          const std::string& key,
          const std::string& path,
          bool& out);

// At most a day; a bare number is refused (it used to mean milliseconds here).
void duration(config::YamlReader& r,
              const config::YamlNode& map,
              const std::string& key,
              const std::string& path,
              Millis& out,
              Millis low = Millis(1));

// A size (parse_size) from `low` to `high` bytes.
void size_in(config::YamlReader& r,
             const config::YamlNode& map,
             const std::string& key,
             const std::string& path,
             std::uint64_t low,
             std::uint64_t high,
             std::uint64_t& out);
template <class T>
void size(config::YamlReader& r,
          const config::YamlNode& map,
          const std::string& key,
          const std::string& path,
          std::uint64_t low,
          std::uint64_t high,
          T& out) {
    std::uint64_t v = out;
    size_in(r, map, key, path, low, high, v);
    out = static_cast<T>(v);
}

// "20%" or "20" from `low` to `high`.
void percent(config::YamlReader& r,
             const config::YamlNode& map,
             const std::string& key,
             const std::string& path,
             unsigned low,
             unsigned high,
             unsigned& out);

// A list of non-empty strings (a single string is a list of one).
void strings(config::YamlReader& r,
             const config::YamlNode& map,
             const std::string& key,
             const std::string& path,
             std::vector<std::string>& out);

// "host:port" (or "IP:port" when `must_be_ip`).
void address(config::YamlReader& r,
             const config::YamlNode& map,
             const std::string& key,
             const std::string& path,
             bool must_be_ip,
             HostPort& out);

// A file named at `key`, relative to the configuration file's directory; an error with its line
// when it cannot be read. `what` says what the file should be.
std::optional<std::string> readable_file(config::YamlReader& r,
                                         const config::YamlNode& map,
                                         const std::string& key,
                                         const std::string& path,
                                         const std::filesystem::path& base_dir,
                                         const std::string& what);

}  // namespace lb
