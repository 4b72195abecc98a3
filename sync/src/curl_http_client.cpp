// The only translation unit that includes <curl/curl.h>.
#include "sync/curl_http_client.hpp"

#include <curl/curl.h>

namespace syncer {

namespace {

constexpr std::size_t kMaxResponseBytes = 64 * 1024 * 1024;

struct Sink {
    std::string* body;
    bool overflow = false;
};

std::size_t on_data(char* data, std::size_t size, std::size_t count, void* user) {
    auto* sink = static_cast<Sink*>(user);
    const std::size_t n = size * count;
    if (sink->body->size() + n > kMaxResponseBytes) {
        sink->overflow = true;
        return 0;  // aborts the transfer
    }
    sink->body->append(data, n);
    return n;
}

}  // namespace

struct CurlHttpClient::Handle {
    CURL* curl = curl_easy_init();
    ~Handle() { curl_easy_cleanup(curl); }
    Handle() = default;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
};

void CurlHttpClient::global_init() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

CurlHttpClient::CurlHttpClient(TlsOptions tls) : tls_(std::move(tls)) {}

CurlHttpClient::~CurlHttpClient() = default;

std::unique_ptr<CurlHttpClient::Handle> CurlHttpClient::acquire() {
    {
        const std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto h = std::move(idle_.back());
            idle_.pop_back();
            return h;
        }
    }
    return std::make_unique<Handle>();
}

void CurlHttpClient::release(std::unique_ptr<Handle> handle) {
    const std::lock_guard lock(mutex_);
    if (idle_.size() < 64) {
        idle_.push_back(std::move(handle));
    }
}

HttpResponse CurlHttpClient::send(const HttpRequest& request) {
    HttpResponse out;
    auto handle = acquire();
    CURL* c = handle->curl;
    curl_easy_reset(c);
    Sink sink{&out.body};
    curl_slist* headers = nullptr;
    for (const auto& [name, value] : request.headers) {
        headers = curl_slist_append(headers, (name + ": " + value).c_str());
    }
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    const long timeout_ms = static_cast<long>(request.timeout.count());
    curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method == "GET") {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (!request.body.empty() || request.method != "DELETE") {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 10000L));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // never send the token elsewhere
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, tls_.insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, tls_.insecure_skip_verify ? 0L : 2L);
    if (!tls_.ca_bundle.empty()) {
        curl_easy_setopt(c, CURLOPT_CAINFO, tls_.ca_bundle.c_str());
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tandem/0.1");
    const CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
    } else {
        switch (rc) {
            case CURLE_COULDNT_RESOLVE_HOST:
            case CURLE_COULDNT_RESOLVE_PROXY:
            case CURLE_COULDNT_CONNECT:
            case CURLE_SSL_CONNECT_ERROR:
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_UNSUPPORTED_PROTOCOL:
                out.transport = HttpResponse::Transport::kNotSent;
                break;
            default:
                out.transport = HttpResponse::Transport::kUnknown;
                break;
        }
        out.error = sink.overflow ? "response larger than 64 MiB" : curl_easy_strerror(rc);
    }
    release(std::move(handle));
    return out;
}

}  // namespace syncer

#include "sync/admin_client.hpp"

namespace syncer {

std::string form_encode(const Form& form) {
    std::string out;
    const auto escape = [](const std::string& s) {
        char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
        std::string r = e != nullptr ? e : "";
        curl_free(e);
        return r;
    };
    for (const auto& [key, value] : form) {
        if (!out.empty()) {
            out += '&';
        }
        out += escape(key) + "=" + escape(value);
    }
    return out;
}

}  // namespace syncer
