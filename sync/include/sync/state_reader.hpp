#pragma once

#include "sync/admin_client.hpp"
#include "sync/state.hpp"

namespace syncer {

// Reads the whole product/backend configuration of one instance (bounded concurrency) into the
// normalized model. Instance-specific noise (ids, the ".<backend_id>" suffix of backend metrics,
// default ports, timestamps, links, list order) is normalized away here and nowhere else.
struct BackendSnapshot {
    std::string name;
    config::Backend model;
    BackendIds ids;
};

struct ProductSnapshot {
    std::string name;
    config::Product model;
    ProductIds ids;
    ProxyConfigStatus configs;
};

// What a StateReader reads besides products and backends (each only when the desired state has
// any: accounts cost calls per account and application).
struct ReadExtras {
    bool accounts = false;  // developer accounts, users, applications
    bool active_docs = false;
    bool custom_policies = false;  // the policy registry
};

class StateReader {
public:
    StateReader(AdminClient& client, int concurrency, ReadExtras extras = {})
        : client_(client), concurrency_(concurrency), extras_(extras) {}

    ApiResult<InstanceState> read();
    // One backend or product (e.g. right after creating it). A product's usages are resolved to
    // backend system names through `backends`.
    ApiResult<BackendSnapshot> read_backend(const Json& backend);
    // `versions`: the latest staging/production config version per product id, when already
    // known from the bulk listing; otherwise they are read for this product.
    using ConfigVersions = std::map<Id, ProxyConfigStatus>;
    ApiResult<ProductSnapshot> read_product(const Json& service,
                                            const std::map<std::string, BackendIds>& backends,
                                            const ConfigVersions* versions = nullptr);
    ApiResult<ConfigVersions> read_config_versions();
    // Developer accounts (keyed by their admin's username), their users and applications.
    // Needs the products already in `state` (service and plan ids -> system names).
    ApiResult<void> read_accounts(InstanceState& state);
    ApiResult<void> read_account(InstanceState& state, const Json& account);
    // What the mirror compares: every developer account (users, applications, keys) and of the
    // products only their ids and plans (system names and ids). Fails unless every list, every
    // page of it, was read: what is missing from the result is missing from the instance.
    ApiResult<InstanceState> read_developers();
    // ActiveDocs by system_name, their product resolved through the products in `state`.
    ApiResult<void> read_active_docs(InstanceState& state);
    // The custom policies of the registry, by "name@version".
    ApiResult<void> read_custom_policies(InstanceState& state);
    static void insert(InstanceState& state, BackendSnapshot snapshot);
    static void insert(InstanceState& state, ProductSnapshot snapshot);

private:
    // One account into `out`, its applications' products and plans resolved through `products`.
    ApiResult<void> read_account_into(const std::map<std::string, ProductIds>& products,
                                      InstanceState& out,
                                      const Json& account);

    AdminClient& client_;
    int concurrency_;
    ReadExtras extras_;
};

}  // namespace syncer
