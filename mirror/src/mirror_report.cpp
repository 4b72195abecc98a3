// `tandem mirror`'s report, as text and JSON. Operations are shown by their natural keys and
// changed fields (redacted like every report); never their payload, which holds credentials and
// passwords.
#include <nlohmann/json.hpp>

#include "mirror/mirror.hpp"

namespace mirror {

namespace {

using Json = nlohmann::json;

std::string seconds(std::chrono::milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

std::string count(std::size_t n, const std::string& what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

Json operation_json(const syncer::Operation& op) {
    Json changes = Json::array();
    for (const auto& c : op.changes) {
        changes.push_back({{"field", c.field},
                           {"expected", syncer::redact(c.field, c.expected)},
                           {"actual", syncer::redact(c.field, c.actual)}});
    }
    return {{"action", syncer::to_string(op.action)},
            {"kind", syncer::to_string(op.kind)},
            {"account", op.account},
            {"product", op.product},
            {"name", op.name},
            {"summary", op.summary()},
            {"changes", changes}};
}

Json skipped_json(const std::vector<Skipped>& skipped) {
    Json out = Json::array();
    for (const auto& s : skipped) {
        out.push_back({{"what", s.what}, {"why", s.why}});
    }
    return out;
}

}  // namespace

std::string mirror_text(const MirrorResult& r, bool write) {
    std::string out;
    if (!r.complete) {
        return "mirror: the source " + r.source + " could not be read whole (" + r.source_error +
               "): nothing was compared, written or deleted\n";
    }
    out += "mirror from " + r.source + " (read whole in " + seconds(r.source_read) +
           "): " + count(r.accounts, "account") + ", " + count(r.users, "user") + ", " +
           count(r.applications, "application") + " no CR describes\n";
    for (const auto& s : r.skipped) {
        out += "  not mirrored: " + s.what + ": " + s.why + "\n";
    }
    for (const auto& t : r.targets) {
        const auto& rep = t.report;
        if (!rep.error.empty()) {
            out += rep.name + ": not compared: " + rep.error + "\n";
            continue;
        }
        if (rep.applied) {
            out += rep.name + ": " + std::to_string(rep.applied->done.size()) + " done, " +
                   std::to_string(rep.applied->failed.size()) + " failed\n";
            for (const auto& op : rep.applied->done) {
                out += "  " + op.summary() + "\n";
            }
            for (const auto& [op, error] : rep.applied->failed) {
                out += "  FAILED " + op.summary() + ": " + error.to_string() + "\n";
            }
        } else {
            out += rep.name + ": " +
                   (rep.operations.empty()
                        ? std::string("in step with the source")
                        : std::to_string(rep.operations.size()) +
                              (write ? " to do" : " differences (nothing written)")) +
                   "\n";
            for (const auto& op : rep.operations) {
                out += "  " + op.summary() + "\n";
            }
        }
        for (const auto& op : t.strays) {
            const bool held = !op.changes.empty() && op.changes.back().field == "held";
            out += held ? "  not deleted, " + op.changes.back().actual + ": " + op.summary() + "\n"
                        : "  on " + rep.name +
                              " only, left in place (mirror.deletes is false): " + op.summary() +
                              "\n";
        }
        for (const auto& s : t.skipped) {
            out += "  skipped here: " + s.what + ": " + s.why + "\n";
        }
    }
    out += "mirror took " + seconds(r.duration) + "\n";
    return out;
}

std::string mirror_json(const MirrorResult& r, bool write) {
    Json targets = Json::array();
    for (const auto& t : r.targets) {
        const auto& rep = t.report;
        Json j = {{"instance", rep.name},    {"reachable", rep.reachable},
                  {"error", rep.error},      {"operations", Json::array()},
                  {"done", Json::array()},   {"failed", Json::array()},
                  {"strays", Json::array()}, {"skipped", skipped_json(t.skipped)}};
        for (const auto& op : rep.operations) {
            j["operations"].push_back(operation_json(op));
        }
        if (rep.applied) {
            for (const auto& op : rep.applied->done) {
                j["done"].push_back(operation_json(op));
            }
            for (const auto& [op, error] : rep.applied->failed) {
                Json f = operation_json(op);
                f["error"] = error.to_string();
                j["failed"].push_back(std::move(f));
            }
        }
        for (const auto& op : t.strays) {
            j["strays"].push_back(operation_json(op));
        }
        targets.push_back(std::move(j));
    }
    const Json doc = {{"source", r.source},
                      {"complete", r.complete},
                      {"source_error", r.source_error},
                      {"write", write},
                      {"converged", r.converged()},
                      {"accounts", r.accounts},
                      {"users", r.users},
                      {"applications", r.applications},
                      {"skipped", skipped_json(r.skipped)},
                      {"source_read_seconds", static_cast<double>(r.source_read.count()) / 1000.0},
                      {"duration_seconds", static_cast<double>(r.duration.count()) / 1000.0},
                      {"targets", targets}};
    return doc.dump(2) + "\n";
}

}  // namespace mirror
