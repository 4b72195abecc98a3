#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sim/http.hpp"

namespace sim {

using Id = std::int64_t;

// One kind of object, by id. Objects are JSON documents holding the fields the admin API shows
// plus internal fields whose names start with '_' (never rendered). An optional owner key (e.g.
// the plan id of a limit) is indexed; the fields it is computed from never change after insert.
class Collection {
public:
    using KeyFn = std::function<std::string(const Json&)>;
    explicit Collection(KeyFn key = {}) : key_(std::move(key)) {}

    Json* find(Id id);
    [[nodiscard]] const Json* find(Id id) const;
    Json& insert(Json object);  // object["id"] must be set
    bool erase(Id id);
    [[nodiscard]] std::vector<Json*> where(const std::function<bool(const Json&)>& pred);
    [[nodiscard]] std::vector<const Json*> where(
        const std::function<bool(const Json&)>& pred) const;
    [[nodiscard]] std::size_t size() const { return items_.size(); }
    [[nodiscard]] const std::map<Id, Json>& items() const { return items_; }
    // Objects whose owner key is `key`, in id order (needs a KeyFn).
    [[nodiscard]] std::vector<Json*> by_key(const std::string& key);
    [[nodiscard]] std::vector<const Json*> by_key(const std::string& key) const;

private:
    std::map<Id, Json> items_;
    KeyFn key_;
    std::map<std::string, std::set<Id>> index_;
};

std::string key_of(const Json& j, const char* field);  // "123" for an integer field

// A webhook to deliver: where, and the XML event document.
struct WebhookEvent {
    std::string url;
    std::string body;
};

Json default_webhook_settings();

// The whole state of one simulated tenant.
struct Store {
    Id next_id = 1;
    Id tenant_id = 1;
    Collection services;
    Collection backend_apis;
    Collection backend_usages{[](const Json& j) { return key_of(j, "service_id"); }};
    // product and backend metrics, methods and mapping rules, by "owner_type:owner_id"
    Collection metrics{owner_key};
    Collection mapping_rules{owner_key};
    Collection plans{[](const Json& j) { return key_of(j, "_service_id"); }};
    Collection limits{[](const Json& j) { return key_of(j, "plan_id"); }};
    Collection pricing_rules{[](const Json& j) { return key_of(j, "plan_id"); }};
    Collection proxies{[](const Json& j) { return key_of(j, "service_id"); }};
    Collection proxy_configs{[](const Json& j) { return key_of(j, "_service_id"); }};
    Collection accounts;
    Collection users;
    Collection applications{[](const Json& j) { return key_of(j, "service_id"); }};
    Collection active_docs;
    Collection registry_policies;
    Json webhooks = default_webhook_settings();  // GET/PUT /admin/api/webhooks.json
    std::vector<WebhookEvent> webhook_outbox;    // emitted, not yet handed to the sender

    static std::string owner_key(const Json& j);

    bool has_soft_deleted =
        false;  // set when something is soft-deleted; purge() is a no-op otherwise

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
