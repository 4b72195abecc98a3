#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/model.hpp"
#include "sync/operation.hpp"
#include "sync/state.hpp"

namespace syncer {

// Building blocks of the differ: operations with their field changes, and what a product and a
// backend have alike (metrics, methods, mapping rules).

inline std::string b(bool v) {
    return v ? "true" : "false";
}

inline Operation op(
    Action action, Kind kind, std::string product, std::string backend, std::string name) {
    Operation o;
    o.action = action;
    o.kind = kind;
    o.product = std::move(product);
    o.backend = std::move(backend);
    o.name = std::move(name);
    return o;
}

// Records a field for a create (actual empty) or an update (only when it differs).
inline void field(Operation& o,
                  const std::string& name,
                  const std::string& expected,
                  const std::string& actual = "",
                  bool send = true) {
    o.changes.push_back({name, expected, actual});
    if (send) {
        o.form.emplace_back(name, expected);
    }
}

// A product or a backend: the kinds its metrics, methods and rules have, and its key.
struct Owner {
    Kind metric_kind;
    Kind method_kind;
    Kind rule_kind;
    std::string product;
    std::string backend;
};
Owner product_owner(const std::string& name);
Owner backend_owner(const std::string& name);

// Creates and updates of an owner's metrics (or methods).
void diff_metrics(const Owner& owner,
                  const std::map<std::string, config::Metric>& desired,
                  const std::map<std::string, config::Metric>& actual,
                  bool methods,
                  std::vector<Operation>& out);
// Deletes of the metrics (or methods) the desired state does not have (never hits): a CR owns
// its children, so these are part of converging, not --prune's.
void delete_metrics(const Owner& owner,
                    const std::map<std::string, config::Metric>& desired,
                    const std::map<std::string, config::Metric>& actual,
                    bool methods,
                    const std::map<std::string, Id>* ids,
                    std::vector<Operation>& out);
// Matches desired rules to actual ones, then orders them the way porta's acts_as_list moves them:
// desired rule i ends at position i + 1; rules not in the desired state are deleted (3scale's
// own "GET /" of a new product is just such a rule).
void diff_rules(const Owner& owner,
                const std::vector<config::MappingRule>& desired,
                const std::vector<config::MappingRule>& actual,
                const std::vector<Id>* ids,
                std::vector<Operation>& upserts,
                std::vector<Operation>& deletes);

}  // namespace syncer
