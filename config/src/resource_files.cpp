// Where the CRs come from: files, directories, standard input, and what a kustomize layout means.
#include "resource_files.hpp"

#include <algorithm>
#include <array>
#include <istream>
#include <iterator>

namespace config {

namespace fs = std::filesystem;

namespace {

bool is_kustomization(const fs::path& file) {
    const std::string name = file.filename().string();
    return name == "kustomization.yaml" || name == "kustomization.yml" || name == "Kustomization";
}

bool is_yaml(const fs::path& file) {
    const auto ext = file.extension();
    return ext == ".yaml" || ext == ".yml";
}

// true when `path` is `root` or inside it (both normalized)
bool inside(const fs::path& path, const fs::path& root) {
    const auto p = fs::weakly_canonical(path).lexically_normal();
    const auto r = fs::weakly_canonical(root).lexically_normal();
    auto [ri, pi] = std::mismatch(r.begin(), r.end(), p.begin(), p.end());
    return ri == r.end() || (std::next(ri) == r.end() && ri->empty());
}

// A kustomization met while reading `root`: skipped, or an error when kustomize would make of the
// directory something other than its files as written.
void check_kustomization(const fs::path& file,
                         const fs::path& root,
                         const std::string& fleet_file,
                         Diagnostics& diags) {
    auto docs = read_yaml_file(file, diags);
    if (!docs) {
        return;
    }
    YamlReader r(file.string(), diags);
    const std::string dir = file.parent_path().string();
    const std::string advice = "run `kubectl kustomize " + dir + " | tandem plan -f " + fleet_file +
                               " --resources -` (the same for apply and drift): tandem does not "
                               "run kustomize itself";
    const std::size_t before = diags.size();
    for (const auto& doc : *docs) {
        if (!doc.is_map()) {
            continue;
        }
        static constexpr std::array kTransforms = {"patches",
                                                   "patchesStrategicMerge",
                                                   "patchesJson6902",
                                                   "replacements",
                                                   "namePrefix",
                                                   "nameSuffix",
                                                   "transformers",
                                                   "generators",
                                                   "components",
                                                   "helmCharts",
                                                   "secretGenerator",
                                                   "commonAnnotations",
                                                   "replicas",
                                                   "openapi",
                                                   "crds",
                                                   "vars"};
        for (const auto& [key, value] : doc.entries()) {
            const std::string k = key.is_scalar() ? key.scalar() : "";
            if (std::find(kTransforms.begin(), kTransforms.end(), k) != kTransforms.end()) {
                r.error(key, k,
                        "kustomize would change the resources of this directory (" + k +
                            "), so its files as written are not what you mean to apply: " + advice);
            }
        }
        for (const char* list : {"resources", "bases"}) {
            const YamlNode entries = r.child(doc, list);
            for (const auto& entry : entries.items()) {
                if (!entry.is_scalar()) {
                    continue;
                }
                const std::string target = entry.scalar();
                if (target.find("://") != std::string::npos || target.starts_with("github.com/") ||
                    !inside(file.parent_path() / target, root)) {
                    r.error(entry, list,
                            "'" + target + "' is outside " + root.string() +
                                ", which is what tandem reads: list it in the fleet's resources, "
                                "or " +
                                advice);
                }
            }
        }
    }
    if (diags.size() == before) {
        diags.push_back({Diagnostic::Severity::kNotice,
                         {file.string(), 1},
                         "",
                         "a kustomization, not a resource: skipped (the files it lists in this "
                         "directory are read as they are)"});
    }
}

void add_path(YamlReader& r,
              const YamlNode& node,
              const std::string& where,
              const fs::path& path,
              const std::string& fleet_file,
              bool& stdin_taken,
              std::vector<ResourceInput>& out,
              Diagnostics& diags) {
    if (path == "-") {
        if (stdin_taken) {
            r.error(node, where, "standard input ('-') can be read only once");
        }
        stdin_taken = true;
        out.push_back({path});
        return;
    }
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        std::vector<fs::path> found;
        std::vector<fs::path> kustomizations;
        fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied,
                                            ec);
        for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            const fs::path p = it->path();
            if (it->is_directory(ec) && p.filename().string().starts_with(".")) {
                it.disable_recursion_pending();  // .git, .github: not resources
                continue;
            }
            if (!it->is_regular_file(ec)) {
                continue;
            }
            if (is_kustomization(p)) {
                kustomizations.push_back(p);
            } else if (is_yaml(p)) {
                found.push_back(p);
            }
        }
        std::sort(found.begin(), found.end());
        std::sort(kustomizations.begin(), kustomizations.end());
        for (const auto& k : kustomizations) {
            check_kustomization(k, path, fleet_file, diags);
        }
        if (found.empty()) {
            r.error(node, where, "directory " + path.string() + " has no .yaml/.yml resources");
        }
        for (auto& f : found) {
            out.push_back({std::move(f)});
        }
    } else if (fs::is_regular_file(path, ec)) {
        if (is_kustomization(path)) {
            check_kustomization(path, path.parent_path(), fleet_file, diags);
        } else {
            out.push_back({path});
        }
    } else {
        r.error(node, where, "no such file or directory: " + path.string());
    }
}

}  // namespace

std::vector<ResourceInput> resource_inputs(YamlReader& r,
                                           const YamlNode& root,
                                           const fs::path& base,
                                           const LoadOptions& options,
                                           Diagnostics& diags) {
    std::vector<ResourceInput> out;
    bool stdin_taken = false;
    if (!options.resources.empty()) {
        for (std::size_t i = 0; i < options.resources.size(); ++i) {
            add_path(r, YamlNode(), "--resources " + options.resources[i], options.resources[i],
                     r.file(), stdin_taken, out, diags);
        }
        return out;
    }
    const YamlNode resources = r.child(root, "resources");
    if (!resources.is_sequence() || resources.size() == 0) {
        r.error(resources.defined() ? resources : root, "resources",
                "is required: a list of files or directories with Product and Backend CRs (\"-\" "
                "for standard input), or --resources");
        return out;
    }
    for (std::size_t i = 0; i < resources.size(); ++i) {
        const YamlNode node = resources[i];
        const std::string where = "resources[" + std::to_string(i) + "]";
        if (!node.is_scalar()) {
            r.error(node, where, "must be a path");
            continue;
        }
        fs::path path = node.scalar();
        if (path.is_relative() && path != "-") {
            path = base / path;
        }
        add_path(r, node, where, path, r.file(), stdin_taken, out, diags);
    }
    return out;
}

std::optional<std::vector<YamlNode>> read_resource(const ResourceInput& input,
                                                   std::istream& standard_input,
                                                   Diagnostics& diags) {
    if (!input.is_stdin()) {
        return read_yaml_file(input.path, diags);
    }
    const std::string text((std::istreambuf_iterator<char>(standard_input)),
                           std::istreambuf_iterator<char>());
    return read_yaml_text(text, input.name(), diags);
}

}  // namespace config
