#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace syncer {

struct HttpRequest {
    std::string method;  // GET, POST, PUT, PATCH, DELETE
    std::string url;     // absolute, never carrying credentials
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::chrono::milliseconds timeout{30000};
};

struct HttpResponse {
    // What happened on the wire. kNotSent: nothing reached the server (DNS, connect refused):
    // always safe to retry. kUnknown: the request may have been processed (timeout, reset).
    enum class Transport { kOk, kNotSent, kUnknown };
    Transport transport = Transport::kOk;
    long status = 0;
    std::string body;
    std::string error;  // transport error text, without the URL's secrets (there are none)
};

// The seam between the sync engine and HTTP: CurlHttpClient in production, fakes in unit tests.
// Implementations must be safe to call from several threads at once.
class HttpClient {
public:
    virtual ~HttpClient() = default;
    virtual HttpResponse send(const HttpRequest& request) = 0;
};

struct TlsOptions {
    std::string ca_bundle;  // empty: the system trust store
    bool insecure_skip_verify = false;
};

}  // namespace syncer
