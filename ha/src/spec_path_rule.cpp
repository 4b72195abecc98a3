// tandem doctor's spec-path rule: a field the operator of the instance's version does not know
// is stored and ignored (directly under spec) or pruned (deeper) without an error, so a typo
// silently turns a setting off. The operator's spec paths by version are compiled in
// (spec_paths.cpp, generated from ha/data/apimanager_spec_paths_by_version.tsv).
#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "instance_check.hpp"

namespace ha {

extern const char* const kSpecPathsTsv;

namespace {

struct SpecPath {
    std::string type;
    std::array<bool, 8> in_version{};  // 2.9 .. 2.16
};

const std::map<std::string, SpecPath>& spec_paths() {
    static const std::map<std::string, SpecPath> paths = [] {
        std::map<std::string, SpecPath> out;
        std::string_view text = kSpecPathsTsv;
        while (!text.empty()) {
            const auto nl = text.find('\n');
            std::string_view line = text.substr(0, nl);
            text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
            if (line.empty() || line.front() == '#') {
                continue;
            }
            std::vector<std::string_view> cols;
            while (true) {
                const auto tab = line.find('\t');
                cols.push_back(line.substr(0, tab));
                if (tab == std::string_view::npos) {
                    break;
                }
                line = line.substr(tab + 1);
            }
            if (cols.size() < 10) {
                continue;
            }
            SpecPath p;
            p.type = std::string(cols[1]);
            for (std::size_t v = 0; v < 8; ++v) {
                p.in_version[v] = !cols[2 + v].empty() && cols[2 + v].front() == 'y';
            }
            out.emplace(std::string(cols[0]), std::move(p));
        }
        return out;
    }();
    return paths;
}

// Structs of the operator's API are walked into; Kubernetes types, maps and scalars are not.
bool walk_into(const std::string& type) {
    std::string t = type;
    while (!t.empty() && (t.front() == '*' || t.starts_with("[]"))) {
        t.erase(0, t.front() == '*' ? 1 : 2);
    }
    return !t.empty() && std::isupper(static_cast<unsigned char>(t.front())) != 0 &&
           t.find('.') == std::string::npos;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                               diag + (std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                                               std::tolower(static_cast<unsigned char>(b[j - 1]))
                                           ? 0
                                           : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string versions_of(const SpecPath& p) {
    int first = -1;
    int last = -1;
    for (int v = 0; v < 8; ++v) {
        if (p.in_version[static_cast<std::size_t>(v)]) {
            first = first < 0 ? v : first;
            last = v;
        }
    }
    if (first < 0) {
        return "no version";
    }
    return "2." + std::to_string(first + 9) +
           (last != first ? "-2." + std::to_string(last + 9) : "");
}

// Keys the operator of this version does not know are stored and ignored (directly under
// spec) or pruned (deeper) without an error: a typo silently turns a setting off.
void check_fields(InstanceCheck& check,
                  const Json& node,
                  const std::string& path,
                  const std::string& pointer) {
    if (!node.is_object()) {
        return;
    }
    const auto& paths = spec_paths();
    const std::size_t v = static_cast<std::size_t>(std::clamp(check.minor, 9, 16) - 9);
    for (const auto& [key, child] : node.items()) {
        const std::string child_path = path + "." + key;
        const std::string child_pointer = pointer + "/" + key;
        const config::Source at_key{check.am.source.file, check.am.line_of(child_pointer)};
        auto it = paths.find(child_path);
        if (it == paths.end()) {
            std::string best;
            std::size_t best_distance = 4;
            for (const auto& [known, info] : paths) {
                if (known.size() > path.size() + 1 && known.starts_with(path + ".") &&
                    known.find('.', path.size() + 1) == std::string::npos) {
                    const std::string name = known.substr(path.size() + 1);
                    const auto d = edit_distance(key, name);
                    if (d < best_distance) {
                        best_distance = d;
                        best = name;
                    }
                }
            }
            check.add(Severity::kWarning, "unknown-field", check.object, child_path,
                      "is not a field of the APIManager (3scale " + check.version +
                          "): the operator ignores or prunes it without an error",
                      best.empty() ? "remove it, or check the spelling against the APIManager "
                                     "reference of your version"
                                   : "did you mean " + path + "." + best + "?",
                      at_key);
            continue;
        }
        if (!it->second.in_version[v]) {
            check.add(Severity::kWarning, "unknown-field", check.object, child_path,
                      "is not a field of 3scale " + check.version + " (it exists in " +
                          versions_of(it->second) + "): the operator ignores it",
                      "use the field of your version (see the APIManager reference), or set "
                      "ha.version to the version you run",
                      at_key);
            continue;
        }
        if (!walk_into(it->second.type)) {
            continue;
        }
        if (child.is_array() && it->second.type.starts_with("[]")) {
            for (std::size_t i = 0; i < child.size(); ++i) {
                check_fields(check, child[i], child_path + "[]",
                             child_pointer + "/" + std::to_string(i));
            }
        } else {
            check_fields(check, child, child_path, child_pointer);
        }
    }
}

}  // namespace

void check_spec_fields(InstanceCheck& check) {
    check_fields(check, check.am.spec, "spec", "/spec");
}

}  // namespace ha
