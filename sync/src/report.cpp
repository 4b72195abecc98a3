#include "sync/report.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <regex>

#include "config/markdown.hpp"
#include "ratelimit/period.hpp"

namespace syncer {

namespace {

std::string now_iso() {
    return ratelimit::to_iso8601(std::chrono::system_clock::now());
}

const char* sign(Action a) {
    switch (a) {
        case Action::kCreate:
            return "+";
        case Action::kDelete:
            return "-";
        case Action::kReplace:
            return "±";
        case Action::kDeploy:
        case Action::kPromote:
            return ">";
        case Action::kUpdate:
            break;
    }
    return "~";
}

Json op_json(const Operation& op) {
    Json changes = Json::array();
    for (const auto& c : op.changes) {
        if (c.field.starts_with("old_")) {
            continue;
        }
        changes.push_back({{"field", c.field},
                           {"expected", redact(c.field, c.expected)},
                           {"actual", redact(c.field, c.actual)}});
    }
    Json j = {{"action", to_string(op.action)},
              {"type", to_string(op.kind)},
              {"name", op.name},
              {"changes", changes}};
    if (!op.product.empty()) {
        j["product"] = op.product;
    }
    if (!op.backend.empty()) {
        j["backend"] = op.backend;
    }
    if (!op.plan.empty()) {
        j["plan"] = op.plan;
    }
    if (op.unmanaged) {
        j["unmanaged"] = true;
    }
    return j;
}

std::string shorten(const std::string& s, std::size_t max = 80) {
    return s.size() <= max ? s : s.substr(0, max - 1) + "…";
}

}  // namespace

std::string redact(const std::string& field, const std::string& value) {
    if (value.empty()) {
        return value;
    }
    if (field == "secret_token" || field.find("password") != std::string::npos ||
        field.find("token") != std::string::npos) {
        return "<redacted>";
    }
    static const std::regex kUserinfo(R"(([a-z][a-z0-9+.-]*://)[^/@\s]+@)", std::regex::icase);
    return std::regex_replace(value, kUserinfo, "$1<redacted>@");
}

std::vector<DriftEntry> drift_entries(const std::vector<InstanceReport>& reports) {
    std::vector<DriftEntry> out;
    for (const auto& r : reports) {
        for (const auto& op : r.operations) {
            DriftEntry e;
            e.instance = r.name;
            e.object_type = to_string(op.kind);
            e.product = op.product;
            e.backend = op.backend;
            e.name = op.name;
            if (op.action == Action::kDeploy) {
                continue;
            }
            if (op.action == Action::kPromote) {
                if (op.changes.empty()) {
                    continue;  // only a consequence of other drift
                }
                e.kind = "unpromoted";
                e.field = op.changes.front().field;
                e.expected = op.changes.front().expected;
                e.actual = op.changes.front().actual;
                out.push_back(e);
                continue;
            }
            if (op.action == Action::kCreate) {
                e.kind = "missing";
                out.push_back(e);
                continue;
            }
            if (op.action == Action::kDelete) {
                e.kind = op.unmanaged ? "unmanaged" : "changed";
                if (!op.unmanaged) {
                    e.field = "exists";
                    e.expected = "no";
                    e.actual = "yes (not in the CR: apply deletes it)";
                }
                out.push_back(e);
                continue;
            }
            for (const auto& c : op.changes) {
                if (c.field.starts_with("old_")) {
                    continue;
                }
                DriftEntry f = e;
                f.kind = "changed";
                if (op.kind == Kind::kLimit && c.field == "value" && op.global_value &&
                    *op.global_value != std::stoll(c.expected)) {
                    f.kind = "split_mismatch";  // the instance's share of a split global limit
                    f.global_value = op.global_value;
                    f.weight = op.weight;
                    f.rule = op.split_rule;
                }
                f.field = c.field;
                f.expected = redact(c.field, c.expected);
                f.actual = redact(c.field, c.actual);
                out.push_back(f);
            }
        }
    }
    std::stable_sort(out.begin(), out.end(), [](const DriftEntry& a, const DriftEntry& b) {
        return std::tie(a.instance, a.product, a.backend, a.object_type, a.name, a.field) <
               std::tie(b.instance, b.product, b.backend, b.object_type, b.name, b.field);
    });
    return out;
}

std::string notes_text(const InstanceReport& r) {
    std::string out;
    for (const auto& n : r.notes) {
        out += "  note: " + n + "\n";
    }
    return out;
}

std::string plan_text(const std::vector<InstanceReport>& reports) {
    std::string out;
    for (const auto& r : reports) {
        out += notes_text(r);
        if (!r.error.empty()) {
            out += r.name + ": " + (r.reachable ? "ERROR: " : "UNREACHABLE: ") + r.error + "\n";
            continue;
        }
        if (r.operations.empty()) {
            out += r.name + ": no changes\n";
            continue;
        }
        std::map<Action, int> counts;
        for (const auto& op : r.operations) {
            ++counts[op.action];
        }
        out += r.name + ": " + std::to_string(counts[Action::kCreate]) + " to create, " +
               std::to_string(counts[Action::kUpdate] + counts[Action::kReplace]) + " to update, " +
               std::to_string(counts[Action::kDelete]) + " to delete\n";
        for (const auto& op : r.operations) {
            out += "  " + std::string(sign(op.action)) + " " + op.summary();
            if (op.unmanaged && op.action == Action::kDelete) {
                out += " (not in the desired state; --prune)";
            }
            out += "\n";
            if (op.action == Action::kUpdate || op.action == Action::kReplace) {
                for (const auto& c : op.changes) {
                    if (c.field.starts_with("old_")) {
                        continue;
                    }
                    out += "      " + c.field + ": " + shorten(redact(c.field, c.actual)) + " -> " +
                           shorten(redact(c.field, c.expected)) + "\n";
                }
            }
        }
    }
    return out;
}

std::string plan_markdown(const std::vector<InstanceReport>& reports) {
    std::string out =
        "### tandem plan\n\n| instance | status | create | update | delete "
        "|\n|---|---|---|---|---|\n";
    std::size_t total = 0;
    for (const auto& r : reports) {
        std::map<Action, int> counts;
        for (const auto& op : r.operations) {
            ++counts[op.action];
        }
        total += r.operations.size();
        const std::string status = !r.error.empty()
                                       ? (r.reachable ? "⛔ error" : "⚠️ unreachable")
                                   : r.operations.empty() ? "✅ no changes"
                                                          : "📝 changes";
        out += "| " + config::markdown_escape(r.name) + " | " + status + " | " +
               std::to_string(counts[Action::kCreate]) + " | " +
               std::to_string(counts[Action::kUpdate] + counts[Action::kReplace]) + " | " +
               std::to_string(counts[Action::kDelete]) + " |\n";
    }
    if (total > 0) {
        out += "\n<details><summary>" + std::to_string(total) +
               " operations</summary>\n\n| instance | operation | changes |\n|---|---|---|\n";
        for (const auto& r : reports) {
            for (const auto& op : r.operations) {
                std::string changes;
                if (op.action == Action::kUpdate || op.action == Action::kReplace) {
                    for (const auto& c : op.changes) {
                        if (c.field.starts_with("old_")) {
                            continue;
                        }
                        changes +=
                            (changes.empty() ? "" : "<br>") + config::markdown_escape(c.field) +
                            ": `" +
                            config::markdown_escape(shorten(redact(c.field, c.actual), 40)) +
                            "` → `" +
                            config::markdown_escape(shorten(redact(c.field, c.expected), 40)) + "`";
                    }
                }
                out += "| " + config::markdown_escape(r.name) + " | " +
                       std::string(sign(op.action)) + " " + config::markdown_escape(op.summary()) +
                       (op.unmanaged && op.action == Action::kDelete ? " (--prune)" : "") + " | " +
                       changes + " |\n";
            }
        }
        out += "\n</details>\n";
    }
    for (const auto& r : reports) {
        if (!r.error.empty()) {
            out += "\n> **" + config::markdown_escape(r.name) +
                   "**: " + config::markdown_escape(r.error) + "\n";
        }
    }
    return out;
}

std::string plan_json(const std::vector<InstanceReport>& reports, const std::string& fleet_file) {
    Json instances = Json::array();
    std::map<std::string, int> totals;
    for (const auto& r : reports) {
        Json ops = Json::array();
        for (const auto& op : r.operations) {
            ops.push_back(op_json(op));
            ++totals[to_string(op.action)];
        }
        Json inst = {{"name", r.name},
                     {"admin_url", r.admin_url},
                     {"reachable", r.reachable},
                     {"operations", ops}};
        if (!r.error.empty()) {
            inst["error"] = r.error;
        }
        if (!r.notes.empty()) {
            inst["notes"] = r.notes;
        }
        instances.push_back(std::move(inst));
    }
    Json summary = Json::object();
    for (const auto& [k, v] : totals) {
        summary[k] = v;
    }
    return Json({{"schema_version", kReportSchemaVersion},
                 {"tool", "tandem"},
                 {"tool_version", "0.1.0"},
                 {"report", "plan"},
                 {"generated_at", now_iso()},
                 {"fleet", fleet_file},
                 {"instances", instances},
                 {"summary", summary}})
               .dump(2) +
           "\n";
}

std::string drift_text(const std::vector<InstanceReport>& reports) {
    std::string out;
    const auto entries = drift_entries(reports);
    for (const auto& r : reports) {
        out += notes_text(r);
        if (!r.error.empty()) {
            out += r.name + ": " + (r.reachable ? "ERROR: " : "UNREACHABLE: ") + r.error + "\n";
            continue;
        }
        std::vector<const DriftEntry*> mine;
        for (const auto& e : entries) {
            if (e.instance == r.name) {
                mine.push_back(&e);
            }
        }
        if (mine.empty()) {
            out += r.name + ": in sync\n";
            continue;
        }
        const bool has_unmanaged = std::any_of(
            mine.begin(), mine.end(), [](const DriftEntry* e) { return e->kind == "unmanaged"; });
        out += r.name + ": " + std::to_string(mine.size()) + " drift" +
               (mine.size() == 1 ? "" : "s") + "\n";
        for (const auto* e : mine) {
            std::string where = e->product.empty() ? e->backend : e->product;
            out += "  " + e->kind + "  " + e->object_type + " " +
                   (where.empty() || where == e->name ? e->name : where + ": " + e->name);
            if (!e->field.empty()) {
                out += "  " + e->field + ": expected " + shorten(e->expected) + ", actual " +
                       shorten(e->actual);
            }
            if (e->global_value) {
                out += "\n      (global " + std::to_string(*e->global_value) + ", weight " +
                       std::to_string(e->weight) + ": " + e->rule + ")";
            }
            out += "\n";
        }
        if (has_unmanaged) {
            out +=
                "  (unmanaged objects are not in any CR: left alone and not counted as drift; "
                "`tandem drift --prune` counts them, `tandem apply --prune` deletes them)\n";
        }
    }
    return out;
}

std::string drift_json(const std::vector<InstanceReport>& reports, const std::string& fleet_file) {
    const auto entries = drift_entries(reports);
    Json instances = Json::array();
    Json by_instance = Json::object();
    Json by_kind = Json::object();
    for (const auto& r : reports) {
        Json inst = {{"name", r.name}, {"admin_url", r.admin_url}, {"reachable", r.reachable}};
        if (!r.error.empty()) {
            inst["error"] = r.error;
        }
        if (!r.notes.empty()) {
            inst["notes"] = r.notes;
        }
        instances.push_back(std::move(inst));
        by_instance[r.name] = 0;
    }
    Json drifts = Json::array();
    for (const auto& e : entries) {
        Json object = {{"type", e.object_type}, {"name", e.name}};
        if (!e.product.empty()) {
            object["product"] = e.product;
        }
        if (!e.backend.empty()) {
            object["backend"] = e.backend;
        }
        Json d = {{"instance", e.instance}, {"kind", e.kind}, {"object", object}};
        if (!e.field.empty()) {
            d["field"] = e.field;
            d["expected"] = e.expected;
            d["actual"] = e.actual;
        }
        if (e.global_value) {
            d["global_value"] = *e.global_value;
            d["weight"] = e.weight;
            d["rule"] = e.rule;
        }
        drifts.push_back(std::move(d));
        by_instance[e.instance] = by_instance[e.instance].get<int>() + 1;
        by_kind[e.kind] = by_kind.value(e.kind, 0) + 1;
    }
    const bool complete =
        std::all_of(reports.begin(), reports.end(), [](const auto& r) { return r.error.empty(); });
    return Json({{"schema_version", kReportSchemaVersion},
                 {"tool", "tandem"},
                 {"tool_version", "0.1.0"},
                 {"report", "drift"},
                 {"generated_at", now_iso()},
                 {"fleet", fleet_file},
                 {"complete", complete},
                 {"instances", instances},
                 {"summary",
                  {{"total", entries.size()}, {"by_kind", by_kind}, {"by_instance", by_instance}}},
                 {"drifts", drifts}})
               .dump(2) +
           "\n";
}

std::string drift_markdown(const std::vector<InstanceReport>& reports) {
    const auto entries = drift_entries(reports);
    std::string out = "### tandem drift report\n\n";
    out += "| instance | status | drifts |\n|---|---|---|\n";
    for (const auto& r : reports) {
        const auto n = std::count_if(entries.begin(), entries.end(),
                                     [&](const DriftEntry& e) { return e.instance == r.name; });
        std::string status = !r.error.empty() ? (r.reachable ? "⛔ error" : "⚠️ unreachable")
                             : n == 0         ? "✅ in sync"
                                              : "❌ drift";
        out += "| " + config::markdown_escape(r.name) + " | " + status + " | " + std::to_string(n) +
               " |\n";
    }
    if (!entries.empty()) {
        out += "\n<details><summary>" + std::to_string(entries.size()) +
               " differences</summary>\n\n| instance | kind | object | field | expected | actual "
               "|\n|---|---|---|---|---|---|\n";
        for (const auto& e : entries) {
            const std::string where = e.product.empty() ? e.backend : e.product;
            out += "| " + config::markdown_escape(e.instance) + " | " + e.kind + " | " +
                   config::markdown_escape(
                       e.object_type + " " +
                       (where.empty() || where == e.name ? e.name : where + ": " + e.name)) +
                   " | " + config::markdown_escape(e.field) + " | `" +
                   config::markdown_escape(shorten(e.expected, 60)) +
                   (e.global_value ? " (of " + std::to_string(*e.global_value) + ")" : "") +
                   "` | `" + config::markdown_escape(shorten(e.actual, 60)) + "` |\n";
        }
        out += "\n</details>\n";
    }
    for (const auto& r : reports) {
        if (!r.error.empty()) {
            out += "\n> **" + config::markdown_escape(r.name) +
                   "**: " + config::markdown_escape(r.error) + "\n";
        }
    }
    return out;
}

std::string apply_summary(const std::vector<InstanceReport>& reports) {
    std::string out = "\nsummary:\n";
    for (const auto& r : reports) {
        out += notes_text(r);
        out += "  " + r.name + ": ";
        if (!r.error.empty()) {
            out += (r.reachable ? "FAILED: " : "UNREACHABLE: ") + r.error + "\n";
            continue;
        }
        if (!r.applied) {
            out += "no changes\n";
            continue;
        }
        const auto& a = *r.applied;
        out +=
            std::to_string(a.done.size()) + " done, " + std::to_string(a.failed.size()) + " failed";
        out += a.converged() ? " — converged\n" : " — NOT converged\n";
        for (const auto& [op, err] : a.failed) {
            out += "      failed: " + op.summary() + ": " + err.to_string() + "\n";
        }
        if (!a.read_error.empty()) {
            out += "      could not verify: " + a.read_error + "\n";
        }
        for (const auto& op : a.remaining) {
            out += "      still differs: " + op.summary() + "\n";
        }
    }
    return out;
}

std::string split_text(const FleetSplit& split) {
    std::string out = "instances: ";
    for (std::size_t k = 0; k < split.instances.size(); ++k) {
        out += (k == 0 ? "" : ", ") + split.instances[k] + " (weight " +
               std::to_string(split.weights[k]) + ")";
    }
    out += "\n";
    std::string product;
    for (const auto& row : split.rows) {
        if (row.product != product) {
            product = row.product;
            out += "\n" + product + " (policy " + std::string(ratelimit::to_string(row.policy)) +
                   ")\n";
        }
        const auto b = ratelimit::bounds(row.values);
        out += "  " + row.plan + " / " + row.metric.to_string() + " / " +
               std::string(ratelimit::to_string(row.period)) + ": global " +
               std::to_string(row.global) + (row.added_by_coarsen ? " (added by coarsen)" : "") +
               " ->";
        for (std::size_t k = 0; k < row.values.size(); ++k) {
            out += " " + split.instances[k] + " " + std::to_string(row.values[k]);
        }
        out += "\n      all up " + std::to_string(b.all_up) + ", one instance down (no re-split) " +
               std::to_string(b.one_down) + ", one sticky client " +
               std::to_string(b.sticky_client) + "\n";
        if (row.values.size() > 1) {
            out += "      in the " + std::string(ratelimit::to_string(row.period)) +
                   " an instance leaves or comes back (re-split): at most " +
                   std::to_string(b.transition_window) + "\n";
        }
    }
    for (const auto& p : split.problems) {
        out += p.to_string() + "\n";
    }
    return out;
}

std::string split_json(const FleetSplit& split) {
    Json instances = Json::array();
    for (std::size_t k = 0; k < split.instances.size(); ++k) {
        instances.push_back({{"name", split.instances[k]}, {"weight", split.weights[k]}});
    }
    Json limits = Json::array();
    for (const auto& row : split.rows) {
        Json per = Json::object();
        Json rules = Json::object();
        for (std::size_t k = 0; k < row.values.size(); ++k) {
            per[split.instances[k]] = row.values[k];
            if (k < row.rules.size()) {
                rules[split.instances[k]] = row.rules[k];
            }
        }
        const auto b = ratelimit::bounds(row.values);
        Json entry = {{"product", row.product},
                      {"plan", row.plan},
                      {"metric", row.metric.system_name},
                      {"period", ratelimit::to_string(row.period)},
                      {"global", row.global},
                      {"policy", ratelimit::to_string(row.policy)},
                      {"instances", per},
                      {"rules", rules},
                      {"bounds",
                       {{"all_up", b.all_up},
                        {"one_instance_down", b.one_down},
                        {"sticky_client", b.sticky_client},
                        {"transition_window", b.transition_window}}}};
        if (!row.metric.backend.empty()) {
            entry["backend"] = row.metric.backend;
        }
        if (row.added_by_coarsen) {
            entry["added_by_coarsen"] = true;
        }
        limits.push_back(std::move(entry));
    }
    Json problems = Json::array();
    for (const auto& p : split.problems) {
        problems.push_back(
            {{"severity", p.severity == config::Diagnostic::Severity::kError ? "error" : "notice"},
             {"message", p.to_string()}});
    }
    return Json({{"schema_version", kReportSchemaVersion},
                 {"report", "split"},
                 {"instances", instances},
                 {"limits", limits},
                 {"problems", problems}})
               .dump(2) +
           "\n";
}

}  // namespace syncer
