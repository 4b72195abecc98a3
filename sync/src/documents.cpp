// OpenAPI documents fetched from URLs for ActiveDocs.
#include "sync/documents.hpp"

#include "config/yaml_reader.hpp"
#include "sync/report.hpp"

namespace syncer {

namespace {

// scheme://host/path: the query cut, userinfo redacted as everywhere (they may carry credentials)
std::string shown(const std::string& url) {
    return redact("url", url.substr(0, url.find_first_of("?#")));
}

}  // namespace

std::vector<std::string> fetch_documents(config::DesiredState& desired,
                                         HttpClient& http,
                                         std::chrono::milliseconds timeout) {
    std::vector<std::string> errors;
    for (auto& [name, doc] : desired.active_docs) {
        if (doc.url.empty()) {
            continue;
        }
        const std::string where = "ActiveDoc " + name + " (" + doc.source.file + ":" +
                                  std::to_string(doc.source.line) + "): " + shown(doc.url);
        HttpRequest request;
        request.method = "GET";
        request.url = doc.url;
        request.headers = {{"Accept", "application/json, application/yaml, */*"}};
        request.timeout = timeout;
        const HttpResponse response = http.send(request);
        if (response.transport != HttpResponse::Transport::kOk) {
            errors.push_back(where + ": " + response.error);
            continue;
        }
        if (response.status != 200) {
            errors.push_back(where + ": HTTP " + std::to_string(response.status) +
                             " (expected 200 with the OpenAPI document)");
            continue;
        }
        auto body = config::canonical_document(response.body);
        if (!body) {
            errors.push_back(where + ": " + body.error());
            continue;
        }
        doc.body = std::move(*body);
    }
    return errors;
}

}  // namespace syncer
