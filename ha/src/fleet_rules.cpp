// tandem doctor's rules across the instances of a fleet: one wildcard domain, mirrored Secrets
// with the same values everywhere, and databases that are not shared in active-active.
#include <map>
#include <set>

#include "ha/connection_url.hpp"
#include "instance_check.hpp"

namespace ha {

namespace {

std::string list_names(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
    }
    return out;
}

void check_wildcard_domains(const config::Fleet& fleet,
                            const std::vector<Checked>& checked,
                            std::vector<Finding>& out) {
    std::map<std::string, std::vector<std::string>> by_domain;
    for (const auto& c : checked) {
        const Json* w = at(c.am->spec, "/wildcardDomain");
        if (w != nullptr && w->is_string()) {
            by_domain[w->get<std::string>()].push_back(c.instance->name);
        }
        if (w != nullptr && w->is_string() && !fleet.ha.wildcard_domain.empty() &&
            w->get<std::string>() != fleet.ha.wildcard_domain) {
            out.push_back({Severity::kError,
                           "wildcard-domain",
                           c.instance->name,
                           "APIManager " + c.am->name,
                           "spec.wildcardDomain",
                           "is " + w->get<std::string>() + ", the fleet's ha.wildcardDomain is " +
                               fleet.ha.wildcard_domain,
                           "use the same wildcardDomain everywhere",
                           {c.am->source.file, c.am->line_of("/spec/wildcardDomain")}});
        }
    }
    if (by_domain.size() > 1) {
        std::string detail;
        for (const auto& [domain, names] : by_domain) {
            detail += (detail.empty() ? "" : "; ") + domain + " on " + list_names(names);
        }
        out.push_back({Severity::kError, "wildcard-domain", "", "APIManager", "spec.wildcardDomain",
                       "differs between instances (" + detail +
                           "): every cluster must serve the same wildcard domain (tenant routes "
                           "and the balancer's Host header)",
                       "set one spec.wildcardDomain on every instance", fleet.ha.source});
    }
}

void check_mirrored(const std::vector<Checked>& checked, std::vector<Finding>& out) {
    static const char* kMirrored[] = {"backend-internal-api", "system-app", "system-events-hook",
                                      "system-master-apicast", "system-seed"};
    for (const char* name : kMirrored) {
        std::vector<std::pair<const Checked*, const config::SecretDoc*>> have;
        for (const auto& c : checked) {
            auto it = c.am->secrets.find(name);
            if (it == c.am->secrets.end()) {
                out.push_back(
                    {Severity::kError, "mirrored-secrets", c.instance->name,
                     std::string("Secret ") + name, "",
                     "missing: the operator would generate random values for this cluster, "
                     "different from the others (sessions, internal API calls and the master "
                     "portal break across clusters)",
                     std::string("create Secret ") + name +
                         " with the same values on every instance (tandem render does this)",
                     c.am->source});
            } else {
                have.emplace_back(&c, &it->second);
            }
        }
        if (have.size() < 2) {
            continue;
        }
        std::set<std::string> keys;
        for (const auto& [c, s] : have) {
            for (const auto& [k, v] : s->values) {
                keys.insert(k);
            }
        }
        for (const auto& key : keys) {
            // Group instances by value without ever holding a value in the output.
            std::map<std::string, std::vector<std::string>> groups;
            std::vector<std::string> missing;
            for (const auto& [c, s] : have) {
                auto it = s->values.find(key);
                if (it == s->values.end()) {
                    missing.push_back(c->instance->name);
                } else {
                    groups[it->second].push_back(c->instance->name);
                }
            }
            if (!missing.empty()) {
                out.push_back({Severity::kError, "mirrored-secrets", "",
                               std::string("Secret ") + name, key,
                               "present on " + std::to_string(have.size() - missing.size()) +
                                   " instance(s) but missing on " + list_names(missing),
                               "copy the key with the same value to every instance",
                               have.front().second->source});
            }
            if (groups.size() > 1) {
                std::vector<std::string> parts;
                for (const auto& [value, names] : groups) {
                    parts.push_back(list_names(names));
                }
                std::string detail;
                for (std::size_t i = 0; i < parts.size(); ++i) {
                    detail += (i == 0 ? "" : " / ") + parts[i];
                }
                out.push_back(
                    {Severity::kError, "mirrored-secrets", "", std::string("Secret ") + name, key,
                     "differs between instances (same value within each group: " + detail +
                         "); it must be identical everywhere",
                     "set one value on every instance (values are not shown)",
                     have.front().second->source});
            }
        }
    }
}

// The database identity of each connection key, to tell shared databases from independent ones.
std::map<std::string, std::string> database_identities(const config::ApiManagerDoc& am) {
    std::map<std::string, std::string> out;
    const auto value = [&](const char* secret, const char* key) -> const std::string* {
        auto s = am.secrets.find(secret);
        if (s == am.secrets.end()) {
            return nullptr;
        }
        auto v = s->second.values.find(key);
        return v == s->second.values.end() || v->second.empty() ? nullptr : &v->second;
    };
    const auto redis_id = [&](const char* secret, const char* key, const char* sentinel_key) {
        if (const std::string* url = value(secret, key)) {
            std::string error;
            if (auto u = parse_redis_url(*url, error)) {
                const std::string* hosts = value(secret, sentinel_key);
                std::string id = u->identity(hosts != nullptr);
                if (hosts != nullptr) {
                    if (auto list = parse_sentinel_hosts(*hosts, error)) {
                        std::set<std::string> set;
                        for (const auto& h : *list) {
                            set.insert(h.host + ":" + std::to_string(h.port));
                        }
                        id += " via";
                        for (const auto& h : set) {
                            id += " " + h;
                        }
                    }
                }
                out[std::string(secret) + "." + key] = id;
            }
        }
    };
    redis_id("backend-redis", "REDIS_STORAGE_URL", "REDIS_STORAGE_SENTINEL_HOSTS");
    redis_id("backend-redis", "REDIS_QUEUES_URL", "REDIS_QUEUES_SENTINEL_HOSTS");
    redis_id("system-redis", "URL", "SENTINEL_HOSTS");
    for (const auto& [secret, key] :
         {std::pair{"system-database", "URL"}, std::pair{"zync", "DATABASE_URL"}}) {
        if (const std::string* url = value(secret, key)) {
            std::string error;
            if (auto d = parse_database_url(*url, error)) {
                out[std::string(secret) + "." + key] = d->identity();
            }
        }
    }
    return out;
}

void check_independence(const config::Fleet& fleet,
                        const std::vector<Checked>& checked,
                        std::vector<Finding>& out) {
    if (checked.size() < 2) {
        return;
    }
    const bool passive = fleet.ha.mode == "active-passive";
    std::map<std::string, std::map<std::string, std::vector<std::string>>> by_key;
    for (const auto& c : checked) {
        for (const auto& [key, id] : database_identities(*c.am)) {
            by_key[key][id].push_back(c.instance->name);
        }
    }
    for (const auto& [key, ids] : by_key) {
        const auto dot = key.find('.');
        const std::string secret = key.substr(0, dot);
        const std::string field = key.substr(dot + 1);
        if (!passive) {
            for (const auto& [id, names] : ids) {
                if (names.size() > 1) {
                    out.push_back(
                        {Severity::kError, "independent-databases", "", "Secret " + secret, field,
                         list_names(names) + " point at the same database (" + id +
                             "): independent instances need their own (limits would be counted "
                             "twice and jobs consumed by the wrong cluster)",
                         "give every instance its own database, or set ha.mode: active-passive "
                         "if they are meant to share",
                         fleet.ha.source});
                }
            }
        } else if (ids.size() > 1) {
            out.push_back({Severity::kError, "shared-databases", "", "Secret " + secret, field,
                           "active-passive instances must share their databases, but they point "
                           "at " +
                               std::to_string(ids.size()) + " different ones",
                           "use the same connection Secret on the active and the standby",
                           fleet.ha.source});
        }
    }
}

}  // namespace

void check_fleet(const config::Fleet& fleet,
                 const std::vector<Checked>& checked,
                 std::vector<Finding>& out) {
    check_wildcard_domains(fleet, checked, out);
    check_mirrored(checked, out);
    check_independence(fleet, checked, out);
}

}  // namespace ha
