#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ha {

// A Redis address as 3scale's secrets write it: redis://[[user]:password@]host[:port][/db]
// (rediss:// with TLS). With Sentinel the host is the sentinel group (master name).
struct RedisUrl {
    std::string scheme;  // redis | rediss
    bool has_password = false;
    std::string host;  // or the sentinel group
    int port = 6379;
    bool port_given = false;
    int db = 0;
    // host:port/db (group/db with Sentinel): the database a URL names, credentials aside.
    [[nodiscard]] std::string identity(bool sentinel) const;
};

// nullopt with `error` set when malformed.
std::optional<RedisUrl> parse_redis_url(const std::string& text, std::string& error);

// *_SENTINEL_HOSTS: comma-separated [redis://|rediss://][[user]:password@]host[:port]. Elements
// without a port are reported in `missing_port` (the operator then assumes 6379, not 26379).
struct SentinelHost {
    std::string host;
    int port = 26379;
    bool port_given = false;
};
std::optional<std::vector<SentinelHost>> parse_sentinel_hosts(const std::string& text,
                                                              std::string& error);

// A relational database URL: mysql2://, postgresql://, oracle-enhanced:// with
// user:password@host[:port]/database.
struct DatabaseUrl {
    std::string scheme;
    std::string user;
    std::string password;
    std::string host;
    int port = 0;  // 0: the scheme's default
    std::string database;
    [[nodiscard]] std::string identity() const;  // scheme://host:port/database
};
std::optional<DatabaseUrl> parse_database_url(const std::string& text, std::string& error);

}  // namespace ha
