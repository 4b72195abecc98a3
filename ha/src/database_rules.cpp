// tandem doctor's database rules: which databases are external as the operator of this version
// decides, and the connection Secrets of the external ones (required keys, URL forms, Redis
// Sentinel).
#include <optional>
#include <set>

#include "ha/connection_url.hpp"
#include "instance_check.hpp"

namespace ha {

namespace {

// Which databases are external, as the operator of this version decides.
struct External {
    bool backend_redis = false;
    bool system_redis = false;
    bool system_database = false;
    bool zync_database = false;
};

External external(const InstanceCheck& check) {
    External e;
    const Json* ec = at(check.am.spec, "/externalComponents");
    if (check.minor >= 12 && ec != nullptr) {
        e.backend_redis = truthy(at(check.am.spec, "/externalComponents/backend/redis"));
        e.system_redis = truthy(at(check.am.spec, "/externalComponents/system/redis"));
        e.system_database = truthy(at(check.am.spec, "/externalComponents/system/database"));
        e.zync_database = truthy(at(check.am.spec, "/externalComponents/zync/database"));
        return e;
    }
    const bool ha = truthy(at(check.am.spec, "/highAvailability/enabled"));
    e.backend_redis = e.system_redis = e.system_database = ha;
    e.zync_database = ha && check.minor >= 10 &&
                      truthy(at(check.am.spec, "/highAvailability/externalZyncDatabaseEnabled"));
    return e;
}

const config::SecretDoc* secret(const InstanceCheck& check, const std::string& name) {
    auto it = check.am.secrets.find(name);
    return it == check.am.secrets.end() ? nullptr : &it->second;
}

// A required key: present and non-empty; returns its value.
const std::string* required_key(InstanceCheck& check,
                                const std::string& name,
                                const std::string& key,
                                const std::string& purpose) {
    const auto* s = secret(check, name);
    if (s == nullptr) {
        return nullptr;
    }
    auto it = s->values.find(key);
    if (it == s->values.end() || it->second.empty()) {
        check.add(Severity::kError, "database-secrets", "Secret " + name, key,
                  std::string(it == s->values.end() ? "missing" : "empty") + ": " + purpose,
                  "set " + key + " in Secret " + name, s->source);
        return nullptr;
    }
    return &it->second;
}

const std::string* optional_key(const InstanceCheck& check,
                                const std::string& name,
                                const std::string& key) {
    const auto* s = secret(check, name);
    if (s == nullptr) {
        return nullptr;
    }
    auto it = s->values.find(key);
    return it == s->values.end() || it->second.empty() ? nullptr : &it->second;
}

std::optional<RedisUrl> redis(InstanceCheck& check,
                              const std::string& name,
                              const std::string& url_key,
                              const std::string& sentinel_prefix,
                              bool& sentinel) {
    const auto* s = secret(check, name);
    const std::string* url = required_key(check, name, url_key, "the Redis address");
    sentinel = false;
    if (url == nullptr) {
        return std::nullopt;
    }
    std::string error;
    auto parsed = parse_redis_url(*url, error);
    if (!parsed) {
        check.add(Severity::kError, "redis-url", "Secret " + name, url_key,
                  "is not a Redis URL: it " + error +
                      " (redis://[:password@]host[:port][/db], or with Sentinel "
                      "redis://[:password@]group[/db])",
                  "fix " + url_key + " in Secret " + name, s->source);
        return std::nullopt;
    }
    if (const std::string* hosts = optional_key(check, name, sentinel_prefix + "SENTINEL_HOSTS")) {
        sentinel = true;
        auto list = parse_sentinel_hosts(*hosts, error);
        if (!list) {
            check.add(Severity::kError, "redis-url", "Secret " + name,
                      sentinel_prefix + "SENTINEL_HOSTS",
                      "is not a sentinel list: it " + error +
                          " (comma-separated [redis://][:password@]host:port)",
                      "fix it in Secret " + name, s->source);
        } else {
            for (const auto& h : *list) {
                if (!h.port_given) {
                    check.add(Severity::kWarning, "redis-url", "Secret " + name,
                              sentinel_prefix + "SENTINEL_HOSTS",
                              "sentinel " + h.host +
                                  " has no port: the operator assumes 6379, not Sentinel's 26379",
                              "write " + h.host + ":26379 (or the port your sentinels listen on)",
                              s->source);
                }
            }
            if (list->size() < 3) {
                check.add(Severity::kWarning, "redis-url", "Secret " + name,
                          sentinel_prefix + "SENTINEL_HOSTS",
                          "lists " + std::to_string(list->size()) +
                              " sentinel(s): a quorum that survives one failure needs 3",
                          "list every sentinel (at least 3)", s->source);
            }
        }
        if (parsed->port_given) {
            check.add(Severity::kWarning, "redis-url", "Secret " + name, url_key,
                      "with Sentinel the host of the URL is the sentinel group (master name); a "
                      "port there is ignored",
                      "write redis://[:password@]<group>[/db]", s->source);
        }
    }
    if (const std::string* role = optional_key(check, name, sentinel_prefix + "SENTINEL_ROLE")) {
        if (*role != "master" && *role != "slave") {
            check.add(Severity::kError, "redis-url", "Secret " + name,
                      sentinel_prefix + "SENTINEL_ROLE", "must be master or slave (or empty)",
                      "set it to master", s->source);
        }
    }
    if (check.minor >= 16) {
        const bool tls = name == "backend-redis"
                             ? truthy(at(check.am.spec, url_key == "REDIS_QUEUES_URL"
                                                            ? "/backend/queuesRedisTLSEnabled"
                                                            : "/backend/backendRedisTLSEnabled"))
                             : truthy(at(check.am.spec, "/system/systemRedisTLSEnabled"));
        if (!sentinel && tls != (parsed->scheme == "rediss")) {
            check.add(Severity::kError, "redis-url", "Secret " + name, url_key,
                      tls ? "TLS is enabled for this Redis but the URL is redis://"
                          : "the URL is rediss:// but TLS is not enabled for this Redis",
                      tls ? "use rediss://" : "use redis:// or enable TLS in the APIManager",
                      s->source);
        }
    }
    return parsed;
}

}  // namespace

void check_external_databases(InstanceCheck& check) {
    const External e = external(check);
    const bool modern = check.minor >= 12;
    if (modern && at(check.am.spec, "/externalComponents") == nullptr &&
        at(check.am.spec, "/highAvailability") != nullptr) {
        check.add(Severity::kInfo, "external-databases", check.object, "spec.highAvailability",
                  "deprecated since 2.12; the operator migrates it to externalComponents",
                  "write spec.externalComponents instead", check.where("/highAvailability"));
    }
    struct Db {
        bool external;
        const char* what;
        const char* field_modern;
        const char* field_legacy;
    };
    const Db dbs[] = {
        {e.backend_redis, "backend Redis", "spec.externalComponents.backend.redis",
         "spec.highAvailability.enabled"},
        {e.system_redis, "system Redis", "spec.externalComponents.system.redis",
         "spec.highAvailability.enabled"},
        {e.system_database, "system database", "spec.externalComponents.system.database",
         "spec.highAvailability.enabled"},
        {e.zync_database, "zync database", "spec.externalComponents.zync.database",
         "spec.highAvailability.externalZyncDatabaseEnabled"},
    };
    for (const auto& db : dbs) {
        if (db.external) {
            continue;
        }
        const bool is_zync = std::string(db.what) == "zync database";
        if (is_zync && !check.zync_enabled()) {
            continue;
        }
        if (is_zync && check.minor == 9) {
            check.add(Severity::kWarning, "external-databases", check.object,
                      "spec.highAvailability",
                      "3scale 2.9 cannot run zync's database outside the cluster: it is a single "
                      "pod",
                      "upgrade to 2.10+ and set highAvailability.externalZyncDatabaseEnabled",
                      check.where("/highAvailability"));
            continue;
        }
        const std::string field = modern ? db.field_modern : db.field_legacy;
        check.add(Severity::kError, "external-databases", check.object, field,
                  std::string("the ") + db.what + " runs inside the cluster as a single pod " +
                      "(no replication, lost with its node)" +
                      (check.minor >= 16 && !is_zync ? "; 3scale 2.16 refuses internal ones" : ""),
                  "use an external, highly available " + std::string(db.what) + " and set " +
                      field + ": true (with its connection Secret)",
                  check.where(modern ? "/externalComponents" : "/highAvailability"));
    }
}

void check_database_secrets(InstanceCheck& check) {
    const External e = external(check);
    const auto need = [&](bool is_external, const char* name) {
        if (!is_external) {
            return false;
        }
        if (secret(check, name) == nullptr) {
            check.add(Severity::kError, "database-secrets", std::string("Secret ") + name, "",
                      std::string("missing: the ") + name +
                          " database is external, so the operator needs this Secret (without it "
                          "nothing is deployed)",
                      std::string("create Secret ") + name + " next to the APIManager",
                      check.am.source);
            return false;
        }
        return true;
    };
    std::optional<RedisUrl> storage;
    std::optional<RedisUrl> queues;
    std::optional<RedisUrl> system;
    bool storage_sentinel = false;
    bool queues_sentinel = false;
    bool system_sentinel = false;
    if (need(e.backend_redis, "backend-redis")) {
        storage =
            redis(check, "backend-redis", "REDIS_STORAGE_URL", "REDIS_STORAGE_", storage_sentinel);
        queues =
            redis(check, "backend-redis", "REDIS_QUEUES_URL", "REDIS_QUEUES_", queues_sentinel);
        if (storage && queues &&
            storage->identity(storage_sentinel) == queues->identity(queues_sentinel)) {
            check.add(Severity::kError, "redis-url", "Secret backend-redis", "REDIS_QUEUES_URL",
                      "storage and queues are the same Redis database (" +
                          storage->identity(storage_sentinel) +
                          "): backend's job queues would mix with its counters",
                      "use another database index for the queues (e.g. /1)",
                      secret(check, "backend-redis")->source);
        }
    }
    if (need(e.system_redis, "system-redis")) {
        system = redis(check, "system-redis", "URL", "", system_sentinel);
        if (check.minor <= 11) {
            if (required_key(check, "system-redis", "MESSAGE_BUS_URL",
                             "required by 3scale 2.9-2.11 when system Redis is external")) {
                const std::string* bus = optional_key(check, "system-redis", "MESSAGE_BUS_URL");
                std::string error;
                auto bus_url = parse_redis_url(*bus, error);
                const std::string ns = optional_key(check, "system-redis", "NAMESPACE")
                                           ? *optional_key(check, "system-redis", "NAMESPACE")
                                           : "";
                const std::string bus_ns =
                    optional_key(check, "system-redis", "MESSAGE_BUS_NAMESPACE")
                        ? *optional_key(check, "system-redis", "MESSAGE_BUS_NAMESPACE")
                        : "";
                if (bus_url && system && bus_url->identity(false) == system->identity(false) &&
                    ns == bus_ns) {
                    check.add(Severity::kError, "redis-url", "Secret system-redis",
                              "MESSAGE_BUS_NAMESPACE",
                              "the message bus shares system Redis's database and namespace: "
                              "sidekiq keys and bus messages would collide",
                              "give the message bus another database or a distinct "
                              "MESSAGE_BUS_NAMESPACE",
                              secret(check, "system-redis")->source);
                }
            }
        }
    }
    const auto server = [](const RedisUrl& u, bool sentinel) {
        return sentinel ? "sentinel-group " + u.host : u.host + ":" + std::to_string(u.port);
    };
    if (system) {
        for (const auto& [u, sentinel, key] :
             {std::tuple{storage, storage_sentinel, "REDIS_STORAGE_URL"},
              std::tuple{queues, queues_sentinel, "REDIS_QUEUES_URL"}}) {
            if (u && server(*u, sentinel) == server(*system, system_sentinel)) {
                check.add(Severity::kError, "redis-url", "Secret system-redis", "URL",
                          std::string("system Redis is the same server as backend's ") + key +
                              " (" + server(*system, system_sentinel) +
                              "): 3scale requires separate Redis instances for backend and system",
                          "point system-redis URL at its own Redis",
                          secret(check, "system-redis")->source);
                break;
            }
        }
    }
    if (need(e.system_database, "system-database")) {
        if (const std::string* url =
                required_key(check, "system-database", "URL", "system's database URL")) {
            std::string error;
            if (!parse_database_url(*url, error)) {
                check.add(Severity::kError, "database-url", "Secret system-database", "URL",
                          "is not a database URL: it " + error,
                          "write mysql2://, postgresql:// or oracle-enhanced:// "
                          "user:password@host[:port]/database",
                          secret(check, "system-database")->source);
            }
        }
    }
    if (check.zync_enabled() && need(e.zync_database, "zync")) {
        const std::string* url = required_key(check, "zync", "DATABASE_URL", "zync's database URL");
        const std::string* password =
            required_key(check, "zync", "ZYNC_DATABASE_PASSWORD", "zync's database password");
        if (url != nullptr) {
            std::string error;
            auto parsed = parse_database_url(*url, error);
            if (!parsed || (parsed->scheme != "postgresql" && parsed->scheme != "postgres")) {
                check.add(Severity::kError, "database-url", "Secret zync", "DATABASE_URL",
                          "must be postgresql://user:password@host:port/zync_production" +
                              (parsed ? std::string() : " (it " + error + ")"),
                          "fix DATABASE_URL in Secret zync", secret(check, "zync")->source);
            } else if (password != nullptr && parsed->password != *password) {
                check.add(Severity::kError, "database-url", "Secret zync", "ZYNC_DATABASE_PASSWORD",
                          "differs from the password inside DATABASE_URL: zync would fail to "
                          "connect",
                          "make ZYNC_DATABASE_PASSWORD the password in DATABASE_URL",
                          secret(check, "zync")->source);
            }
        }
    }
}

void check_tenant(InstanceCheck& check) {
    const std::string tenant = value_or(at(check.am.spec, "/tenantName"), "3scale");
    if (const std::string* seeded = optional_key(check, "system-seed", "TENANT_NAME");
        seeded != nullptr && *seeded != tenant) {
        check.add(Severity::kWarning, "tenant-name", "Secret system-seed", "TENANT_NAME",
                  "differs from spec.tenantName (" + tenant +
                      "): hostnames derived from one "
                      "will not match the other",
                  "make them equal", secret(check, "system-seed")->source);
    }
}

}  // namespace ha
