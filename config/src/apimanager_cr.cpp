// An instance's APIManager CR (apps.3scale.net/v1alpha1) and the v1 Secrets beside it, for
// tandem doctor and render: the spec as JSON with the line of every field, and the Secrets'
// values.
#include "apimanager_cr.hpp"

#include <algorithm>

#include "account_cr.hpp"

namespace config {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

// Records the line of every node under `node` by JSON pointer.
void record_lines(const YamlNode& node,
                  const std::string& pointer,
                  std::map<std::string, int>& lines) {
    lines[pointer] = node.line();
    if (node.is_map()) {
        for (const auto& it : node.entries()) {
            std::string key = it.first.is_scalar() ? it.first.scalar() : "?";
            std::string escaped;
            for (const char ch : key) {
                escaped += ch == '~'   ? std::string("~0")
                           : ch == '/' ? std::string("~1")
                                       : std::string(1, ch);
            }
            lines[pointer + "/" + escaped] = it.first.line();
            record_lines(it.second, pointer + "/" + escaped, lines);
        }
    } else if (node.is_sequence()) {
        for (std::size_t i = 0; i < node.size(); ++i) {
            record_lines(node[i], pointer + "/" + std::to_string(i), lines);
        }
    }
}

void read_apimanager_document(YamlReader& r,
                              const YamlNode& doc,
                              const fs::path& base,
                              ApiManagerDoc& out,
                              bool& found,
                              Pending& secrets) {
    if (!doc.defined() || doc.null()) {
        return;
    }
    if (!doc.is_map()) {
        r.error(doc, "", "a document must be a mapping with apiVersion and kind");
        return;
    }
    const std::string api = r.str(doc, "apiVersion", "", true).value_or("");
    const std::string kind = r.str(doc, "kind", "", true).value_or("");
    if (api == "v1" && kind == "List") {
        const YamlNode items = r.child(doc, "items");
        if (items.is_sequence()) {
            for (const auto& item : items.items()) {
                read_apimanager_document(r, item, base, out, found, secrets);
            }
        }
        return;
    }
    if (api == "v1" && kind == "Secret") {
        read_secret(r, doc, base, secrets);
        return;
    }
    if (kind == "APIManager") {
        if (api != "apps.3scale.net/v1alpha1") {
            r.error(r.child(doc, "apiVersion"), "apiVersion",
                    "an APIManager is apps.3scale.net/v1alpha1 (got " + api + ")");
            return;
        }
        if (found) {
            r.error(doc, "kind",
                    "a second APIManager: an instance has exactly one (first at " +
                        out.source.file + ":" + std::to_string(out.source.line) + ")");
            return;
        }
        found = true;
        out.source = r.at(doc);
        const YamlNode metadata = r.child(doc, "metadata");
        out.name = r.str(metadata, "name", "metadata", false).value_or("apimanager");
        out.namespace_name = r.str(metadata, "namespace", "metadata", false).value_or("");
        const YamlNode annotations = r.child(metadata, "annotations");
        if (annotations.is_map()) {
            for (const auto& it : annotations.entries()) {
                out.annotations[it.first.scalar()] =
                    it.second.is_scalar() ? it.second.scalar() : "";
            }
        }
        const YamlNode spec = r.child(doc, "spec");
        if (!spec.is_map()) {
            r.error(spec.defined() ? spec : doc, "spec",
                    "is required: an APIManager needs at least spec.wildcardDomain");
            return;
        }
        out.spec = to_json(spec);
        record_lines(spec, "/spec", out.lines);
        return;
    }
    r.notice(doc, "kind",
             "ignored: " + api + "/" + kind +
                 " (an APIManager directory is read for the APIManager "
                 "and v1 Secrets)");
}

}  // namespace

std::optional<ApiManagerDoc> read_apimanager(YamlReader& fleet_reader,
                                             const YamlNode& node,
                                             const std::string& where,
                                             const fs::path& base,
                                             Diagnostics& diags) {
    if (!node.is_scalar() || node.scalar().empty()) {
        fleet_reader.error(node, where, "must be the path of a YAML file or a directory of them");
        return std::nullopt;
    }
    fs::path path = node.scalar();
    if (path.is_relative()) {
        path = base / path;
    }
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        for (const auto& entry : fs::directory_iterator(path, ec)) {
            const auto ext = entry.path().extension();
            if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
                files.push_back(entry.path());
            }
        }
        std::sort(files.begin(), files.end());
    } else if (fs::is_regular_file(path, ec)) {
        files.push_back(path);
    } else {
        fleet_reader.error(node, where, "no such file or directory: " + path.string());
        return std::nullopt;
    }
    ApiManagerDoc out;
    out.path = path;
    bool found = false;
    Pending secrets;
    for (const auto& file : files) {
        auto docs = read_yaml_file(file, diags);
        if (!docs) {
            continue;
        }
        YamlReader r(file.string(), diags);
        for (const auto& doc : *docs) {
            read_apimanager_document(r, doc, file.parent_path(), out, found, secrets);
        }
    }
    if (!found) {
        fleet_reader.error(node, where,
                           "no APIManager (apps.3scale.net/v1alpha1) in " + path.string());
    }
    for (auto& [name, raw] : secrets.secrets) {
        SecretDoc secret;
        secret.name = name;
        secret.source = raw.source;
        secret.values = raw.values;
        for (const auto& [key, problem] : raw.problems) {
            diags.push_back(
                {Diagnostic::Severity::kError, raw.source, "Secret " + name + "." + key, problem});
        }
        out.secrets.emplace(name, std::move(secret));
    }
    return out;
}

}  // namespace config
