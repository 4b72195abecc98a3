// YAML out (yaml-cpp's emitter). yaml-cpp stays in the config module's sources.
#include "config/yaml_writer.hpp"

#include <cctype>

#include <yaml-cpp/yaml.h>

namespace config {

namespace {

bool needs_quotes(const std::string& s) {
    if (s.empty()) {
        return true;
    }
    static const char* kReserved[] = {"true", "false", "yes",   "no",    "on",  "off", "null",
                                      "~",    "True",  "False", "Yes",   "No",  "On",  "Off",
                                      "Null", "NULL",  "TRUE",  "FALSE", "YES", "NO",  "ON",
                                      "OFF",  "y",     "n",     "Y",     "N"};
    for (const char* r : kReserved) {
        if (s == r) {
            return true;
        }
    }
    const unsigned char first = static_cast<unsigned char>(s.front());
    if (std::isdigit(first) != 0 || first == '-' || first == '+' || first == '.') {
        return true;  // numbers, dates, versions
    }
    return s.find_first_of(":#{}[],&*!|>'\"%@`\n\t") != std::string::npos || s.front() == ' ' ||
           s.back() == ' ';
}

void emit(YAML::Emitter& out, const nlohmann::json& j) {
    if (j.is_object()) {
        out << YAML::BeginMap;
        for (const auto& [k, v] : j.items()) {
            out << YAML::Key << k << YAML::Value;
            emit(out, v);
        }
        out << YAML::EndMap;
    } else if (j.is_array()) {
        out << YAML::BeginSeq;
        for (const auto& v : j) {
            emit(out, v);
        }
        out << YAML::EndSeq;
    } else if (j.is_string()) {
        const auto& s = j.get_ref<const std::string&>();
        if (needs_quotes(s)) {
            out << YAML::DoubleQuoted << s;
        } else {
            out << s;
        }
    } else if (j.is_boolean()) {
        out << (j.get<bool>() ? "true" : "false");
    } else if (j.is_number_integer()) {
        out << j.get<std::int64_t>();
    } else if (j.is_number()) {
        out << j.get<double>();
    } else {
        out << YAML::Null;
    }
}

}  // namespace

std::string to_yaml(const nlohmann::json& doc) {
    YAML::Emitter out;
    out.SetIndent(2);
    emit(out, doc);
    return std::string(out.c_str()) + "\n";
}

std::optional<std::map<std::string, std::map<std::string, std::string>>> load_secrets_file(
    const std::filesystem::path& file, Diagnostics& diagnostics) {
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAllFromFile(file.string());
    } catch (const YAML::Exception& e) {
        diagnostics.push_back({Diagnostic::Severity::kError,
                               {file.string(), e.mark.line >= 0 ? e.mark.line + 1 : 0},
                               "",
                               "cannot read it as YAML: " + e.msg});
        return std::nullopt;
    }
    std::map<std::string, std::map<std::string, std::string>> out;
    for (const auto& doc : docs) {
        if (!doc.IsMap() || !doc["kind"] || doc["kind"].as<std::string>("") != "Secret") {
            continue;
        }
        const std::string name = doc["metadata"] && doc["metadata"]["name"]
                                     ? doc["metadata"]["name"].as<std::string>("")
                                     : "";
        if (name.empty()) {
            diagnostics.push_back({Diagnostic::Severity::kError,
                                   {file.string(), doc.Mark().line + 1},
                                   "metadata.name",
                                   "a Secret without a name"});
            continue;
        }
        auto& values = out[name];
        if (const YAML::Node sd = doc["stringData"]; sd && sd.IsMap()) {
            for (auto it = sd.begin(); it != sd.end(); ++it) {
                values[it->first.as<std::string>()] = it->second.as<std::string>("");
            }
        }
        if (const YAML::Node d = doc["data"]; d && d.IsMap()) {
            for (auto it = d.begin(); it != d.end(); ++it) {
                const auto bytes = YAML::DecodeBase64(it->second.as<std::string>(""));
                values[it->first.as<std::string>()] = std::string(bytes.begin(), bytes.end());
            }
        }
    }
    return out;
}

}  // namespace config
