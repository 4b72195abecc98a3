#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sim/http.hpp"

namespace sim {

using Id = std::int64_t;

// One kind of object, by id. Objects are JSON documents holding the fields the admin API shows
// plus internal fields whose names start with '_' (never rendered).
class Collection {
public:
    Json* find(Id id);
    [[nodiscard]] const Json* find(Id id) const;
    Json& insert(Json object);  // object["id"] must be set
    bool erase(Id id);
    [[nodiscard]] std::vector<Json*> where(const std::function<bool(const Json&)>& pred);
    [[nodiscard]] std::vector<const Json*> where(
        const std::function<bool(const Json&)>& pred) const;
    [[nodiscard]] std::size_t size() const { return items_.size(); }
    [[nodiscard]] const std::map<Id, Json>& items() const { return items_; }

private:
    std::map<Id, Json> items_;
};

// The whole state of one simulated tenant.
struct Store {
    Id next_id = 1;
    Id tenant_id = 1;
    Collection services;
    Collection backend_apis;
    Collection backend_usages;
    Collection metrics;        // product and backend metrics and methods (_owner_type/_owner_id)
    Collection mapping_rules;  // product and backend rules (_owner_type/_owner_id)
    Collection plans;          // application plans (_service_id)
    Collection limits;
    Collection pricing_rules;
    Collection proxies;        // one per product (service_id)
    Collection proxy_configs;  // _service_id, environment, version, content
    Collection accounts;
    Collection users;
    Collection applications;

    Id allocate_id() { return next_id++; }

    [[nodiscard]] Json to_json() const;
    static std::expected<Store, std::string> from_json(const Json& doc);

    // Lookups that hide soft-deleted objects, as the admin API does.
    Json* visible_service(Id id);
    Json* visible_backend(Id id);
    Json* visible_account(Id id);
    Json* proxy_of(Id service_id);
    Json* hits_of(const std::string& owner_type, Id owner_id);
    [[nodiscard]] std::vector<Json*> metrics_of(const std::string& owner_type, Id owner_id);
    [[nodiscard]] std::vector<Json*> rules_of(const std::string& owner_type, Id owner_id);
    [[nodiscard]] std::vector<Json*> usages_of_service(Id service_id);
    // The product's metrics plus the metrics of the backends it uses (porta's all_metrics).
    [[nodiscard]] std::vector<Json*> all_metrics_of_service(Id service_id);
    Json* latest_config(Id service_id, const std::string& environment);

    // Removes soft-deleted products, backends and accounts whose purge time has come, and
    // everything that belongs to them.
    void purge(std::int64_t now_epoch);
    void destroy_service(Id id);
    void destroy_backend(Id id);
    void destroy_account(Id id);
    void destroy_metric(Id id);
    void destroy_plan(Id id);
};

bool is_soft_deleted(const Json& object);

}  // namespace sim
