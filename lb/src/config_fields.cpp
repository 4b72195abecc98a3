#include "config_fields.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>

#include <boost/asio/ip/address.hpp>

namespace lb {

using config::parse_unsigned;
using config::YamlNode;
using config::YamlReader;

std::optional<std::uint64_t> parse_size(const std::string& text) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    const auto number = parse_unsigned(std::string_view(text).substr(0, digits));
    if (!number) {
        return std::nullopt;
    }
    std::string unit = text.substr(digits);
    std::transform(unit.begin(), unit.end(), unit.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "b") {
        factor = 1;
    } else if (unit == "k" || unit == "kb" || unit == "kib") {
        factor = 1024;
    } else if (unit == "m" || unit == "mb" || unit == "mib") {
        factor = 1024 * 1024;
    } else if (unit == "g" || unit == "gb" || unit == "gib") {
        factor = 1024ULL * 1024 * 1024;
    } else {
        return std::nullopt;
    }
    if (*number > UINT64_MAX / factor) {
        return std::nullopt;
    }
    return *number * factor;
}

void text(YamlReader& r,
          const YamlNode& map,
          const std::string& key,
          const std::string& path,
          std::string& out) {
    if (auto s = r.scalar(map, key, path)) {
        if (s->first.empty()) {
            r.error(s->second, YamlReader::join(path, key), "must not be empty");
        } else {
            out = s->first;
        }
    }
}

void flag(YamlReader& r,
          const YamlNode& map,
          const std::string& key,
          const std::string& path,
          bool& out) {
    if (auto b = r.boolean(map, key, path, false)) {
        out = *b;
    }
}

void duration(YamlReader& r,
              const YamlNode& map,
              const std::string& key,
              const std::string& path,
              Millis& out,
              Millis low) {
    if (auto d = r.duration(map, key, path, low, std::chrono::hours(24), "ms")) {
        out = *d;
    }
}

void size_in(YamlReader& r,
             const YamlNode& map,
             const std::string& key,
             const std::string& path,
             std::uint64_t low,
             std::uint64_t high,
             std::uint64_t& out) {
    if (auto s = r.scalar(map, key, path)) {
        const auto v = parse_size(s->first);
        if (!v || *v < low || *v > high) {
            r.error(s->second, YamlReader::join(path, key),
                    "must be a size such as 16KiB or 1MiB, from " + std::to_string(low) + " to " +
                        std::to_string(high) + " bytes (got '" + s->first + "')");
        } else {
            out = *v;
        }
    }
}

void percent(YamlReader& r,
             const YamlNode& map,
             const std::string& key,
             const std::string& path,
             unsigned low,
             unsigned high,
             unsigned& out) {
    if (auto s = r.scalar(map, key, path)) {
        std::string v = s->first;
        if (!v.empty() && v.back() == '%') {
            v.pop_back();
        }
        const auto pct = parse_unsigned(v);
        if (!pct || *pct < low || *pct > high) {
            r.error(s->second, YamlReader::join(path, key),
                    "must be a percentage from " + std::to_string(low) + "% to " +
                        std::to_string(high) + "% (got '" + s->first + "')");
        } else {
            out = static_cast<unsigned>(*pct);
        }
    }
}

void strings(YamlReader& r,
             const YamlNode& map,
             const std::string& key,
             const std::string& path,
             std::vector<std::string>& out) {
    const YamlNode node = r.child(map, key);
    if (!node.defined() || node.null()) {
        return;
    }
    const std::string where = YamlReader::join(path, key);
    const auto items = node.is_sequence() ? node.items() : std::vector<YamlNode>{node};
    std::vector<std::string> values;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_scalar() || items[i].scalar().empty()) {
            r.error(items[i], where + "[" + std::to_string(i) + "]", "must be a non-empty string");
            return;
        }
        values.push_back(items[i].scalar());
    }
    out = std::move(values);
}

void address(YamlReader& r,
             const YamlNode& map,
             const std::string& key,
             const std::string& path,
             bool must_be_ip,
             HostPort& out) {
    if (auto s = r.scalar(map, key, path)) {
        auto hp = parse_host_port(s->first);
        boost::system::error_code ec;
        if (hp && must_be_ip) {
            (void)boost::asio::ip::make_address(hp->host, ec);
        }
        if (!hp || ec) {
            r.error(s->second, YamlReader::join(path, key),
                    std::string("must be ") + (must_be_ip ? "IP:port" : "host:port") + ", e.g. " +
                        (must_be_ip ? "127.0.0.1:9901 or [::1]:9901"
                                    : "router.east.example.com:80 or 10.0.2.15:80") +
                        " (got '" + s->first + "')");
        } else {
            out = *hp;
        }
    }
}

std::optional<std::string> readable_file(YamlReader& r,
                                         const YamlNode& map,
                                         const std::string& key,
                                         const std::string& path,
                                         const std::filesystem::path& base_dir,
                                         const std::string& what) {
    auto s = r.scalar(map, key, path);
    if (!s) {
        return std::nullopt;
    }
    std::filesystem::path file(s->first);
    if (file.is_relative()) {
        file = base_dir / file;
    }
    std::ifstream probe(file);
    if (s->first.empty() || !probe) {
        r.error(s->second, path + "." + key,
                "cannot read '" + file.string() + "' (" + what +
                    "; relative paths are from the configuration file)");
        return std::nullopt;
    }
    return file.string();
}

}  // namespace lb
