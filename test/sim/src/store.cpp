#include "sim/store.hpp"

#include <array>
#include <utility>

namespace sim {

namespace {

struct Named {
    const char* name;
    Collection Store::*member;
};

constexpr std::array<Named, 15> kCollections = {{
    {"services", &Store::services},
    {"backend_apis", &Store::backend_apis},
    {"backend_usages", &Store::backend_usages},
    {"metrics", &Store::metrics},
    {"mapping_rules", &Store::mapping_rules},
    {"plans", &Store::plans},
    {"limits", &Store::limits},
    {"pricing_rules", &Store::pricing_rules},
    {"proxies", &Store::proxies},
    {"proxy_configs", &Store::proxy_configs},
    {"accounts", &Store::accounts},
    {"users", &Store::users},
    {"applications", &Store::applications},
    {"active_docs", &Store::active_docs},
    {"registry_policies", &Store::registry_policies},
}};

Id id_of(const Json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<Id>() : 0;
}

void erase_all(Collection& c, const std::function<bool(const Json&)>& pred) {
    std::vector<Id> ids;
    for (const auto* j : std::as_const(c).where(pred)) {
        ids.push_back(j->at("id").get<Id>());
    }
    for (const Id id : ids) {
        c.erase(id);
    }
}

}  // namespace

bool is_soft_deleted(const Json& object) {
    return object.contains("_purge_at");
}

std::string key_of(const Json& j, const char* field) {
    const auto it = j.find(field);
    return it != j.end() && it->is_number_integer() ? std::to_string(it->get<Id>()) : std::string();
}

std::string Store::owner_key(const Json& j) {
    return j.value("_owner_type", "") + ":" + key_of(j, "_owner_id");
}

std::vector<Json*> Collection::by_key(const std::string& key) {
    std::vector<Json*> out;
    if (const auto it = index_.find(key); it != index_.end()) {
        for (const Id id : it->second) {
            out.push_back(&items_.at(id));
        }
    }
    return out;
}

std::vector<const Json*> Collection::by_key(const std::string& key) const {
    std::vector<const Json*> out;
    if (const auto it = index_.find(key); it != index_.end()) {
        for (const Id id : it->second) {
            out.push_back(&items_.at(id));
        }
    }
    return out;
}

Json* Collection::find(Id id) {
    const auto it = items_.find(id);
    return it == items_.end() ? nullptr : &it->second;
}

const Json* Collection::find(Id id) const {
    const auto it = items_.find(id);
    return it == items_.end() ? nullptr : &it->second;
}

Json& Collection::insert(Json object) {
    const Id id = object.at("id").get<Id>();
    erase(id);
    if (key_) {
        index_[key_(object)].insert(id);
    }
    return items_.emplace(id, std::move(object)).first->second;
}

bool Collection::erase(Id id) {
    const auto it = items_.find(id);
    if (it == items_.end()) {
        return false;
    }
    if (key_) {
        if (auto ix = index_.find(key_(it->second)); ix != index_.end()) {
            ix->second.erase(id);
            if (ix->second.empty()) {
                index_.erase(ix);
            }
        }
    }
    items_.erase(it);
    return true;
}

std::vector<Json*> Collection::where(const std::function<bool(const Json&)>& pred) {
    std::vector<Json*> out;
    for (auto& [id, j] : items_) {
        if (pred(j)) {
            out.push_back(&j);
        }
    }
    return out;
}

std::vector<const Json*> Collection::where(const std::function<bool(const Json&)>& pred) const {
    std::vector<const Json*> out;
    for (const auto& [id, j] : items_) {
        if (pred(j)) {
            out.push_back(&j);
        }
    }
    return out;
}

Json Store::to_json() const {
    Json doc = Json::object();
    doc["format"] = "threescale-sim-state/v1";
    doc["next_id"] = next_id;
    doc["tenant_id"] = tenant_id;
    for (const auto& named : kCollections) {
        Json arr = Json::array();
        for (const auto& [id, j] : (this->*named.member).items()) {
            arr.push_back(j);
        }
        doc[named.name] = std::move(arr);
    }
    doc["webhooks"] = webhooks;
    return doc;
}

std::expected<Store, std::string> Store::from_json(const Json& doc) {
    if (!doc.is_object() || doc.value("format", "") != "threescale-sim-state/v1") {
        return std::unexpected(
            "not a threescale-sim state document (format != threescale-sim-state/v1)");
    }
    Store store;
    store.has_soft_deleted = true;  // recomputed by the first purge
    store.next_id = doc.value("next_id", Id{1});
    store.tenant_id = doc.value("tenant_id", Id{1});
    if (const auto w = doc.find("webhooks"); w != doc.end() && w->is_object()) {
        store.webhooks.update(*w);
    }
    for (const auto& named : kCollections) {
        const auto it = doc.find(named.name);
        if (it == doc.end()) {
            continue;
        }
        if (!it->is_array()) {
            return std::unexpected(std::string("state: '") + named.name + "' must be an array");
        }
        for (const auto& j : *it) {
            if (!j.is_object() || !j.contains("id") || !j["id"].is_number_integer()) {
                return std::unexpected(std::string("state: an entry of '") + named.name +
                                       "' has no integer id");
            }
            if (j["id"].get<Id>() >= store.next_id) {
                store.next_id = j["id"].get<Id>() + 1;
            }
            (store.*named.member).insert(j);
        }
    }
    return store;
}

Json* Store::visible_service(Id id) {
    Json* s = services.find(id);
    return s != nullptr && !is_soft_deleted(*s) ? s : nullptr;
}

Json* Store::visible_backend(Id id) {
    Json* b = backend_apis.find(id);
    return b != nullptr && !is_soft_deleted(*b) ? b : nullptr;
}

Json* Store::visible_account(Id id) {
    Json* a = accounts.find(id);
    return a != nullptr && !is_soft_deleted(*a) ? a : nullptr;
}

Json* Store::proxy_of(Id service_id) {
    auto found = proxies.by_key(std::to_string(service_id));
    return found.empty() ? nullptr : found.front();
}

Json* Store::hits_of(const std::string& owner_type, Id owner_id) {
    for (Json* m : metrics_of(owner_type, owner_id)) {
        if (m->value("system_name", "") == "hits" && !m->contains("parent_id")) {
            return m;
        }
    }
    return nullptr;
}

std::vector<Json*> Store::metrics_of(const std::string& owner_type, Id owner_id) {
    return metrics.by_key(owner_type + ":" + std::to_string(owner_id));
}

std::vector<Json*> Store::rules_of(const std::string& owner_type, Id owner_id) {
    auto rules = mapping_rules.by_key(owner_type + ":" + std::to_string(owner_id));
    std::stable_sort(rules.begin(), rules.end(), [](const Json* a, const Json* b) {
        return a->value("position", 0) < b->value("position", 0);
    });
    return rules;
}

std::vector<Json*> Store::usages_of_service(Id service_id) {
    return backend_usages.where(
        [&](const Json& u) { return id_of(u, "service_id") == service_id; });
}

std::vector<Json*> Store::all_metrics_of_service(Id service_id) {
    auto all = metrics_of("service", service_id);
    for (const Json* usage : usages_of_service(service_id)) {
        auto more = metrics_of("backend_api", id_of(*usage, "backend_id"));
        all.insert(all.end(), more.begin(), more.end());
    }
    return all;
}

Json* Store::latest_config(Id service_id, const std::string& environment) {
    Json* latest = nullptr;
    for (Json* c : proxy_configs.by_key(std::to_string(service_id))) {
        if (c->value("environment", "") != environment) {
            continue;
        }
        if (latest == nullptr || c->value("version", 0) > latest->value("version", 0)) {
            latest = c;
        }
    }
    return latest;
}

void Store::destroy_metric(Id id) {
    erase_all(limits, [&](const Json& l) { return id_of(l, "metric_id") == id; });
    erase_all(pricing_rules, [&](const Json& p) { return id_of(p, "metric_id") == id; });
    erase_all(mapping_rules, [&](const Json& r) { return id_of(r, "metric_id") == id; });
    std::vector<Id> children;
    for (const Json* m :
         metrics.where([&](const Json& m) { return id_of(m, "parent_id") == id; })) {
        children.push_back(m->at("id").get<Id>());
    }
    for (const Id child : children) {
        destroy_metric(child);
    }
    metrics.erase(id);
}

void Store::destroy_plan(Id id) {
    erase_all(limits, [&](const Json& l) { return id_of(l, "plan_id") == id; });
    erase_all(pricing_rules, [&](const Json& p) { return id_of(p, "plan_id") == id; });
    erase_all(applications, [&](const Json& a) { return id_of(a, "plan_id") == id; });
    plans.erase(id);
}

void Store::destroy_service(Id id) {
    std::vector<Id> ids;
    for (const Json* p :
         plans.where([&](const Json& p) { return id_of(p, "_service_id") == id; })) {
        ids.push_back(p->at("id").get<Id>());
    }
    for (const Id plan : ids) {
        destroy_plan(plan);
    }
    ids.clear();
    for (const Json* m : metrics_of("service", id)) {
        ids.push_back(m->at("id").get<Id>());
    }
    for (const Id metric : ids) {
        destroy_metric(metric);
    }
    erase_all(mapping_rules, [&](const Json& r) {
        return r.value("_owner_type", "") == "service" && id_of(r, "_owner_id") == id;
    });
    erase_all(backend_usages, [&](const Json& u) { return id_of(u, "service_id") == id; });
    erase_all(proxies, [&](const Json& p) { return id_of(p, "service_id") == id; });
    erase_all(proxy_configs, [&](const Json& c) { return id_of(c, "_service_id") == id; });
    erase_all(applications, [&](const Json& a) { return id_of(a, "service_id") == id; });
    services.erase(id);
}

void Store::destroy_backend(Id id) {
    std::vector<Id> ids;
    for (const Json* m : metrics_of("backend_api", id)) {
        ids.push_back(m->at("id").get<Id>());
    }
    for (const Id metric : ids) {
        destroy_metric(metric);
    }
    erase_all(mapping_rules, [&](const Json& r) {
        return r.value("_owner_type", "") == "backend_api" && id_of(r, "_owner_id") == id;
    });
    erase_all(backend_usages, [&](const Json& u) { return id_of(u, "backend_id") == id; });
    backend_apis.erase(id);
}

void Store::destroy_account(Id id) {
    erase_all(applications, [&](const Json& a) { return id_of(a, "account_id") == id; });
    erase_all(users, [&](const Json& u) { return id_of(u, "account_id") == id; });
    accounts.erase(id);
}

void Store::purge(std::int64_t now_epoch) {
    if (!has_soft_deleted) {
        return;
    }
    const auto due = [&](const Json& j) {
        return is_soft_deleted(j) && j["_purge_at"].get<std::int64_t>() <= now_epoch;
    };
    std::vector<Id> ids;
    for (const Json* s : std::as_const(services).where(due)) {
        ids.push_back(s->at("id").get<Id>());
    }
    for (const Id id : ids) {
        destroy_service(id);
    }
    ids.clear();
    for (const Json* b : std::as_const(backend_apis).where(due)) {
        ids.push_back(b->at("id").get<Id>());
    }
    for (const Id id : ids) {
        destroy_backend(id);
    }
    ids.clear();
    for (const Json* a : std::as_const(accounts).where(due)) {
        ids.push_back(a->at("id").get<Id>());
    }
    for (const Id id : ids) {
        destroy_account(id);
    }
    const auto soft = [](const Json& j) { return is_soft_deleted(j); };
    has_soft_deleted = !std::as_const(services).where(soft).empty() ||
                       !std::as_const(backend_apis).where(soft).empty() ||
                       !std::as_const(accounts).where(soft).empty();
}

}  // namespace sim
