// tandem render: APIManager CRs that pass tandem doctor, mirrored Secrets with one set of values
// for every instance, each instance's database Secrets, and the active/passive material.
#include "ha/render.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/yaml_writer.hpp"
#include "ha/components.hpp"

namespace ha {

using Json = nlohmann::json;

RandomString csprng() {
    return [](std::size_t n) -> std::optional<std::string> {
        static constexpr char kAlphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        std::string out;
        out.reserve(n);
        unsigned char buf[64];
        while (out.size() < n) {
            if (RAND_bytes(buf, sizeof buf) != 1) {
                return std::nullopt;
            }
            for (const unsigned char b : buf) {
                if (b < 248 && out.size() < n) {  // 248 = 4 * 62: no modulo bias
                    out += kAlphabet[b % 62];
                }
            }
        }
        return out;
    };
}

namespace {

Json anti_affinity(const Component& c) {
    const auto term = [&](const char* key, int weight) {
        return Json{{"weight", weight},
                    {"podAffinityTerm",
                     {{"labelSelector",
                       {{"matchLabels",
                         {{"threescale_component", c.family},
                          {"threescale_component_element", c.element}}}}},
                      {"topologyKey", key}}}};
    };
    return {{"podAntiAffinity",
             {{"preferredDuringSchedulingIgnoredDuringExecution",
               Json::array({term("kubernetes.io/hostname", 100),
                            term("topology.kubernetes.io/zone", 99)})}}}};
}

void set_at(Json& root, const std::string& pointer, Json value) {
    root[Json::json_pointer(pointer)] = std::move(value);
}

Json apimanager(const config::Fleet& fleet, const config::Instance& instance) {
    const int minor = config::minor_version(fleet.ha.version);
    Json spec;
    spec["wildcardDomain"] = fleet.ha.wildcard_domain;
    spec["tenantName"] = fleet.ha.tenant_name;
    spec["resourceRequirementsEnabled"] = true;
    if (minor >= 12) {
        spec["externalComponents"] = {{"backend", {{"redis", true}}},
                                      {"system", {{"database", true}, {"redis", true}}},
                                      {"zync", {{"database", true}}}};
    } else {
        spec["highAvailability"] = {{"enabled", true}};
        if (minor >= 10) {
            spec["highAvailability"]["externalZyncDatabaseEnabled"] = true;
        }
    }
    spec["podDisruptionBudget"] = {{"enabled", true}};
    const int replicas = std::max(2, instance.ha.zones);
    std::vector<Component> all = scalable_components();
    all.push_back(backend_cron());
    for (const auto& c : all) {
        set_at(spec, std::string(c.spec_path) + "/replicas", replicas);
        set_at(spec, std::string(c.spec_path) + "/affinity", anti_affinity(c));
    }
    return {{"apiVersion", "apps.3scale.net/v1alpha1"},
            {"kind", "APIManager"},
            {"metadata", {{"name", "apimanager"}, {"namespace", fleet.ha.namespace_name}}},
            {"spec", spec}};
}

Json secret_doc(const std::string& name,
                const std::string& ns,
                const std::map<std::string, std::string>& values) {
    Json data = Json::object();
    for (const auto& [k, v] : values) {
        data[k] = v;
    }
    return {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"type", "Opaque"},
            {"stringData", data}};
}

// Defaults and random keys of the mirrored secrets (as the operator fills them when a Secret
// is missing), with longer random values than the operator's 8-16 characters.
std::optional<SecretValues> mirrored_values(const config::Fleet& fleet,
                                            const SecretValues& previous,
                                            const RandomString& random) {
    struct Key {
        const char* secret;
        const char* key;
        std::size_t random_length;  // 0: a fixed default
        const char* fixed;
    };
    static const Key kKeys[] = {
        {"backend-internal-api", "username", 0, "3scale_api_user"},
        {"backend-internal-api", "password", 32, nullptr},
        {"system-app", "SECRET_KEY_BASE", 128, nullptr},
        {"system-events-hook", "URL", 0, "http://system-master:3000/master/events/import"},
        {"system-events-hook", "PASSWORD", 32, nullptr},
        {"system-master-apicast", "ACCESS_TOKEN", 32, nullptr},
        {"system-seed", "MASTER_DOMAIN", 0, "master"},
        {"system-seed", "MASTER_USER", 0, "master"},
        {"system-seed", "MASTER_PASSWORD", 32, nullptr},
        {"system-seed", "MASTER_ACCESS_TOKEN", 32, nullptr},
        {"system-seed", "ADMIN_USER", 0, "admin"},
        {"system-seed", "ADMIN_PASSWORD", 32, nullptr},
        {"system-seed", "ADMIN_ACCESS_TOKEN", 32, nullptr},
    };
    SecretValues out;
    for (const auto& k : kKeys) {
        std::string value;
        if (auto s = fleet.ha.mirrored.find(k.secret);
            s != fleet.ha.mirrored.end() && s->second.contains(k.key)) {
            value = s->second.at(k.key);
        } else if (auto p = previous.find(k.secret);
                   p != previous.end() && p->second.contains(k.key)) {
            value = p->second.at(k.key);
        } else if (k.random_length == 0) {
            value = k.fixed;
        } else if (auto r = random(k.random_length)) {
            value = std::move(*r);
        } else {
            return std::nullopt;  // the random generator failed: no weak value instead
        }
        out[k.secret][k.key] = value;
    }
    // Every other key the user gave is kept as given (e.g. ADMIN_EMAIL, USER_SESSION_TTL).
    for (const auto& [secret, keys] : fleet.ha.mirrored) {
        for (const auto& [k, v] : keys) {
            out[secret][k] = v;
        }
    }
    out["system-seed"]["TENANT_NAME"] = fleet.ha.tenant_name;
    const std::string token = out["system-master-apicast"]["ACCESS_TOKEN"];
    out["system-master-apicast"]["PROXY_CONFIGS_ENDPOINT"] =
        "http://" + token + "@system-master:3000/master/api/proxy/configs";
    out["system-master-apicast"]["BASE_URL"] = "http://" + token + "@system-master:3000";
    return out;
}

std::string failover_checklist(const config::Fleet& fleet) {
    std::string active;
    std::string standby;
    for (const auto& i : fleet.instances) {
        std::string& list = i.ha.role == "standby" ? standby : active;
        list += (list.empty() ? "" : ", ") + i.name;
    }
    const std::string ns = fleet.ha.namespace_name;
    const int minor = config::minor_version(fleet.ha.version);
    const std::string workload = minor >= 15 ? "deployment/system-app" : "dc/system-app";
    return "# Failover checklist (active-passive: " + active + " active, " + standby +
           " standby)\n\n"
           "The standby shares the active's databases and runs with 0 replicas "
           "(<standby>/patches/standby.yaml). In order:\n\n"
           "1. Make sure the failed active no longer writes: if its cluster is reachable, park "
           "it with the same patch the standby uses:\n   `oc patch apimanager apimanager -n " +
           ns + " --type merge --patch-file " + standby +
           "/patches/standby.yaml` (on the active's "
           "cluster). Two clusters running sidekiq and zync-que against the same databases "
           "consume each other's jobs.\n"
           "2. Check the shared databases are reachable from the standby cluster "
           "(tandem doctor passes; the connection Secrets are the active's).\n"
           "3. On the standby cluster apply the full CR: `oc apply -f " +
           standby +
           "/apimanager.yaml` (it carries the HA replicas; the standby patch is undone).\n"
           "4. Wait until it is available: `oc wait --for=condition=Available "
           "apimanager/apimanager "
           "-n " +
           ns +
           " --timeout=20m`.\n"
           "5. Recreate the routes on this cluster (zync created them on the old active only): "
           "`oc exec -n " +
           ns + " " + workload +
           " -c system-master -- bundle exec rake zync:resync:domains`.\n"
           "6. Move the traffic: with tandem-lb, list the standby as a `backup: true` cluster and "
           "it takes over as soon as the active fails its health checks; otherwise point DNS "
           "(the wildcard " +
           fleet.ha.wildcard_domain +
           ") at the standby's router.\n"
           "7. Verify: tandem-lb's /status shows the standby healthy, `tandem drift --instance " +
           standby +
           "` is clean, a test call through the gateway succeeds.\n"
           "8. When the old active is repaired, make it the new standby: apply its CR, then its "
           "standby patch, and swap the roles in the fleet file.\n";
}

}  // namespace

std::expected<std::vector<RenderedFile>, config::Diagnostics> render(const config::Fleet& fleet,
                                                                     const SecretValues& previous,
                                                                     const RandomString& random) {
    config::Diagnostics errors;
    const auto fail = [&](const config::Source& at, const std::string& path,
                          const std::string& message) {
        errors.push_back({config::Diagnostic::Severity::kError, at, path, message});
    };
    if (!fleet.ha.present) {
        fail({fleet.file.string(), 0}, "ha",
             "is required for render: ha: {version, wildcardDomain, tenantName, namespace, mode}");
        return std::unexpected(errors);
    }
    if (fleet.ha.wildcard_domain.empty()) {
        fail(fleet.ha.source, "ha.wildcardDomain",
             "is required: the domain every instance serves (identical on all of them)");
    }
    const bool passive = fleet.ha.mode == "active-passive";
    static const std::map<std::string, std::vector<std::string>> kRequired{
        {"backend-redis", {"REDIS_STORAGE_URL", "REDIS_QUEUES_URL"}},
        {"system-redis", {"URL"}},
        {"system-database", {"URL"}},
        {"zync", {"DATABASE_URL", "ZYNC_DATABASE_PASSWORD"}},
    };
    const config::Instance* active = nullptr;
    std::size_t standbys = 0;
    for (const auto& i : fleet.instances) {
        if (i.ha.role == "standby") {
            ++standbys;
            if (!passive) {
                fail(i.ha.source, "instances." + i.name + ".role",
                     "standby needs ha.mode: active-passive");
            }
        } else if (active == nullptr) {
            active = &i;
        }
    }
    if (passive && (standbys == 0 || active == nullptr)) {
        fail(fleet.ha.source, "ha.mode",
             "active-passive needs one instance with role: active and at least one with role: "
             "standby");
    }
    // A standby shares the active's databases; it may leave `databases` out.
    const auto databases_of = [&](const config::Instance& i) -> const SecretValues& {
        return passive && i.ha.role == "standby" && i.ha.databases.empty() && active != nullptr
                   ? active->ha.databases
                   : i.ha.databases;
    };
    for (const auto& i : fleet.instances) {
        const auto& dbs = databases_of(i);
        for (const auto& [secret, keys] : kRequired) {
            auto it = dbs.find(secret);
            for (const auto& key : keys) {
                if (it == dbs.end() || !it->second.contains(key) || it->second.at(key).empty()) {
                    fail(i.ha.source, "instances." + i.name + ".databases." + secret + "." + key,
                         "is required for render: this instance's own " + secret +
                             " connection (a value, {env: VAR} or {file: PATH})");
                }
            }
        }
    }
    if (!errors.empty()) {
        return std::unexpected(errors);
    }

    std::vector<RenderedFile> files;
    const auto generated = mirrored_values(fleet, previous, random);
    if (!generated) {
        fail(fleet.ha.source, "ha.mirroredSecrets",
             "the system's random generator failed: no value was generated");
        return std::unexpected(errors);
    }
    const SecretValues& mirrored = *generated;
    std::string mirrored_yaml =
        "# Mirrored secrets, identical on every instance. Generated values are kept here so the\n"
        "# next render reuses them: keep this file secret (mode 0600; a vault, not git).\n";
    for (const auto& [name, values] : mirrored) {
        mirrored_yaml +=
            "---\n" + config::to_yaml(secret_doc(name, fleet.ha.namespace_name, values));
    }
    files.push_back({kMirroredSecretsFile, mirrored_yaml, true});

    for (const auto& i : fleet.instances) {
        const std::filesystem::path dir = i.name;
        files.push_back({dir / "apimanager.yaml",
                         "# APIManager for instance " + i.name + " (3scale " + fleet.ha.version +
                             ", " + std::to_string(std::max(2, i.ha.zones)) +
                             " replicas per component, PDBs, host and zone anti-affinity, "
                             "external databases)\n" +
                             config::to_yaml(apimanager(fleet, i)),
                         false});
        std::string secrets = "# Secrets for instance " + i.name +
                              ": the mirrored ones (same on every instance) and this instance's "
                              "database connections.\n";
        for (const auto& [name, values] : mirrored) {
            secrets += "---\n" + config::to_yaml(secret_doc(name, fleet.ha.namespace_name, values));
        }
        const auto& dbs = databases_of(i);
        for (const auto& [name, values] : dbs) {
            secrets += "---\n" + config::to_yaml(secret_doc(name, fleet.ha.namespace_name, values));
        }
        files.push_back({dir / "secrets.yaml", secrets, true});
        if (passive && i.ha.role == "standby") {
            Json patch = Json::object();
            std::vector<Component> all = scalable_components();
            all.push_back(backend_cron());
            for (const auto& c : all) {
                patch[Json::json_pointer("/spec" + std::string(c.spec_path) + "/replicas")] = 0;
            }
            files.push_back({dir / "patches" / "standby.yaml",
                             "# Parks the standby: 0 replicas for apicast, backend, system and "
                             "zync.\n# oc patch apimanager apimanager -n " +
                                 fleet.ha.namespace_name +
                                 " --type merge --patch-file patches/standby.yaml\n" +
                                 config::to_yaml(patch),
                             false});
        }
    }
    if (passive) {
        files.push_back({"failover.md", failover_checklist(fleet), false});
    }
    return files;
}

std::expected<void, std::string> write_rendered(const std::filesystem::path& out,
                                                const std::vector<RenderedFile>& files) {
    std::error_code ec;
    for (const auto& f : files) {
        const auto path = out / f.path;
        std::filesystem::create_directories(path.parent_path(), ec);
        if (ec) {
            return std::unexpected("cannot create " + path.parent_path().string() + ": " +
                                   ec.message());
        }
        const auto tmp = path.string() + ".tmp";
        const int fd =
            ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, f.secret ? 0600 : 0644);
        if (fd < 0) {
            return std::unexpected("cannot write " + tmp + ": " + std::strerror(errno));
        }
        ::fchmod(fd, f.secret ? 0600 : 0644);  // whatever the umask or an older file said
        std::size_t off = 0;
        bool ok = true;
        while (off < f.content.size()) {
            const ssize_t n = ::write(fd, f.content.data() + off, f.content.size() - off);
            if (n <= 0) {
                ok = false;
                break;
            }
            off += static_cast<std::size_t>(n);
        }
        ok = ::fsync(fd) == 0 && ok;
        ::close(fd);
        if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
            ::unlink(tmp.c_str());
            return std::unexpected("cannot write " + path.string() + ": " + std::strerror(errno));
        }
    }
    return {};
}

std::expected<RenderSummary, RenderError> render_to(const config::Fleet& fleet,
                                                    const std::filesystem::path& out,
                                                    const RandomString& random) {
    SecretValues previous;
    const auto kept = out / kMirroredSecretsFile;
    std::error_code ec;
    if (std::filesystem::exists(kept, ec)) {
        config::Diagnostics problems;
        auto values = config::load_secrets_file(kept, problems);
        if (!values) {
            return std::unexpected(RenderError{
                std::move(problems),
                "cannot reuse the mirrored values in " + kept.string() + "; nothing was written"});
        }
        previous = std::move(*values);
    }
    auto files = render(fleet, previous, random);
    if (!files) {
        const auto n = files.error().size();
        return std::unexpected(
            RenderError{std::move(files.error()),
                        std::to_string(n) + " problem(s) in the fleet file; nothing was written"});
    }
    if (auto written = write_rendered(out, *files); !written) {
        return std::unexpected(RenderError{{}, written.error()});
    }
    return RenderSummary{std::move(*files), !previous.empty()};
}

}  // namespace ha
