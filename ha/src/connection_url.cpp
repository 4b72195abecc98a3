#include "ha/connection_url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ha {

namespace {

std::optional<int> to_int(std::string_view s, int low, int high) {
    int v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < low || v > high) {
        return std::nullopt;
    }
    return v;
}

bool valid_host(const std::string& h) {
    return !h.empty() && std::all_of(h.begin(), h.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == ':';
    });
}

// host[:port] (IPv6 in brackets) -> host, port.
bool split_host_port(std::string_view text, std::string& host, std::optional<int>& port) {
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) {
            return false;
        }
        host = std::string(text.substr(1, close - 1));
        text.remove_prefix(close + 1);
        if (text.empty()) {
            return true;
        }
        if (text.front() != ':') {
            return false;
        }
        port = to_int(text.substr(1), 1, 65535);
        return port.has_value();
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        host = std::string(text);
        return true;
    }
    host = std::string(text.substr(0, colon));
    port = to_int(text.substr(colon + 1), 1, 65535);
    return port.has_value();
}

}  // namespace

std::string RedisUrl::identity(bool sentinel) const {
    std::string h = host;
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return (sentinel ? "sentinel-group " + h : h + ":" + std::to_string(port)) + "/" +
           std::to_string(db);
}

std::optional<RedisUrl> parse_redis_url(const std::string& text, std::string& error) {
    RedisUrl out;
    std::string_view rest = text;
    if (rest.starts_with("redis://")) {
        out.scheme = "redis";
        rest.remove_prefix(8);
    } else if (rest.starts_with("rediss://")) {
        out.scheme = "rediss";
        rest.remove_prefix(9);
    } else {
        error = "must start with redis:// (or rediss:// with TLS)";
        return std::nullopt;
    }
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        out.has_password = rest.substr(0, at).find(':') != std::string_view::npos;
        rest.remove_prefix(at + 1);
    }
    std::string_view db;
    if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
        db = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
    }
    std::optional<int> port;
    if (!split_host_port(rest, out.host, port) || !valid_host(out.host)) {
        error = "has no valid host[:port] after the credentials";
        return std::nullopt;
    }
    if (port) {
        out.port = *port;
        out.port_given = true;
    }
    if (!db.empty()) {
        const auto n = to_int(db, 0, 1023);
        if (!n) {
            error = "has a database index that is not a number (/0, /1, ...)";
            return std::nullopt;
        }
        out.db = *n;
    }
    return out;
}

std::optional<std::vector<SentinelHost>> parse_sentinel_hosts(const std::string& text,
                                                              std::string& error) {
    std::vector<SentinelHost> out;
    std::string_view rest = text;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') {
            item.remove_prefix(1);
        }
        while (!item.empty() && item.back() == ' ') {
            item.remove_suffix(1);
        }
        if (item.empty()) {
            error = "has an empty element (two commas in a row, or a trailing comma)";
            return std::nullopt;
        }
        if (item.starts_with("redis://")) {
            item.remove_prefix(8);
        } else if (item.starts_with("rediss://")) {
            item.remove_prefix(9);
        } else if (item.find("://") != std::string_view::npos) {
            error = "has an element with a scheme other than redis:// or rediss://";
            return std::nullopt;
        }
        if (const auto at = item.rfind('@'); at != std::string_view::npos) {
            item.remove_prefix(at + 1);
        }
        if (const auto slash = item.find('/'); slash != std::string_view::npos) {
            error = "has an element with a path: list sentinels as host:port only";
            return std::nullopt;
        }
        SentinelHost h;
        std::optional<int> port;
        if (!split_host_port(item, h.host, port) || !valid_host(h.host)) {
            error = "has an element that is not [redis://][:password@]host:port";
            return std::nullopt;
        }
        if (port) {
            h.port = *port;
            h.port_given = true;
        }
        out.push_back(h);
    }
    return out;
}

std::string DatabaseUrl::identity() const {
    std::string h = host;
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return scheme + "://" + h + ":" + std::to_string(port) + "/" + database;
}

std::optional<DatabaseUrl> parse_database_url(const std::string& text, std::string& error) {
    DatabaseUrl out;
    const auto sep = text.find("://");
    if (sep == std::string::npos) {
        error = "must be scheme://user:password@host[:port]/database";
        return std::nullopt;
    }
    out.scheme = text.substr(0, sep);
    std::string_view rest = std::string_view(text).substr(sep + 3);
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const auto creds = rest.substr(0, at);
        const auto colon = creds.find(':');
        out.user = std::string(creds.substr(0, colon));
        if (colon != std::string_view::npos) {
            out.password = std::string(creds.substr(colon + 1));
        }
        rest.remove_prefix(at + 1);
    }
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash + 1 >= rest.size()) {
        error = "names no database (…@host[:port]/database)";
        return std::nullopt;
    }
    out.database = std::string(rest.substr(slash + 1));
    if (const auto q = out.database.find('?'); q != std::string::npos) {
        out.database.resize(q);
    }
    std::optional<int> port;
    if (!split_host_port(rest.substr(0, slash), out.host, port) || !valid_host(out.host)) {
        error = "has no valid host[:port]";
        return std::nullopt;
    }
    if (out.scheme == "mysql2") {
        out.port = port.value_or(3306);
    } else if (out.scheme == "postgresql" || out.scheme == "postgres") {
        out.port = port.value_or(5432);
    } else if (out.scheme == "oracle-enhanced") {
        out.port = port.value_or(1521);
    } else {
        error =
            "has scheme " + out.scheme + "://: use mysql2://, postgresql:// or oracle-enhanced://";
        return std::nullopt;
    }
    return out;
}

}  // namespace ha
