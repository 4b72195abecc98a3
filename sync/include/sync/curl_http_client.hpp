#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "sync/http_client.hpp"

namespace syncer {

// libcurl behind HttpClient. Keeps a small pool of easy handles so connections (and TLS sessions)
// are reused across requests; TLS verification is on unless explicitly disabled.
class CurlHttpClient final : public HttpClient {
public:
    explicit CurlHttpClient(TlsOptions tls);
    ~CurlHttpClient() override;
    CurlHttpClient(const CurlHttpClient&) = delete;
    CurlHttpClient& operator=(const CurlHttpClient&) = delete;

    HttpResponse send(const HttpRequest& request) override;

    static void global_init();  // once per process, before any thread starts

private:
    struct Handle;
    std::unique_ptr<Handle> acquire();
    void release(std::unique_ptr<Handle> handle);

    TlsOptions tls_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<Handle>> idle_;
};

}  // namespace syncer
