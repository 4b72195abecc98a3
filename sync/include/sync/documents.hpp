#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/model.hpp"
#include "sync/http_client.hpp"

namespace syncer {

// The ActiveDocs whose OpenAPI document is at an http(s) URL: fetched once per run, before any
// instance is contacted (with `timeout`, at most 64 MiB, TLS verified, no redirect followed) and
// made canonical like the others (JSON or YAML -> sorted JSON). Returns one error per document
// that could not be had, naming the ActiveDoc and the URL (its credentials and query redacted);
// a run with any stops before its first write.
std::vector<std::string> fetch_documents(config::DesiredState& desired,
                                         HttpClient& http,
                                         std::chrono::milliseconds timeout);

}  // namespace syncer
