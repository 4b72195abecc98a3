#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "config/model.hpp"

namespace syncer {

using Id = std::int64_t;

// (plan system_name, metric, period)
using LimitKey = std::tuple<std::string, config::MetricRef, ratelimit::Period>;
// (plan system_name, metric, min, max)
using PricingKey =
    std::tuple<std::string, config::MetricRef, std::int64_t, std::optional<std::int64_t>>;

struct BackendIds {
    Id id = 0;
    std::map<std::string, Id> metrics;  // metrics and methods, bare system names
    std::vector<Id> rules;              // parallel to the model's mapping_rules (position order)
};

struct ProductIds {
    Id id = 0;
    std::map<std::string, Id> metrics;  // metrics and methods
    std::vector<Id> rules;              // parallel to the model's mapping_rules
    std::map<std::string, Id> usages;   // by backend system_name
    std::map<std::string, Id> plans;
    std::map<LimitKey, Id> limits;
    std::map<PricingKey, Id> pricing;
    std::string default_plan{};  // signup express makes an application on it (empty: none)
};

struct ProxyConfigStatus {
    std::optional<std::int64_t> staging;     // latest sandbox version
    std::optional<std::int64_t> production;  // latest production version
    // promote keeps the version number: production is current when the versions match
    [[nodiscard]] bool unpromoted() const { return staging && staging != production; }
};

struct AccountIds {
    Id id = 0;
    std::map<std::string, Id> users;  // by username
};

struct ApplicationIds {
    Id id = 0;
    Id account = 0;
    std::vector<std::string> keys;  // application keys as read (v2)
};

// What one instance has, normalized to the same model as the desired state, plus the ids the
// applier needs to address it.
struct InstanceState {
    config::DesiredState model;
    std::map<std::string, ProductIds> products;
    std::map<std::string, BackendIds> backends;
    std::map<std::string, ProxyConfigStatus> configs;    // by product
    std::map<std::string, AccountIds> accounts;          // by admin username (or "#id")
    std::map<std::string, ApplicationIds> applications;  // by "product/credential"
    std::map<std::string, Id> active_docs;               // by system_name
    std::map<std::string, Id> custom_policies;           // by "name@version"
};

}  // namespace syncer
