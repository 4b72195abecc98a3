#pragma once

#include <atomic>
#include <chrono>
#include <expected>
#include <functional>
#include <semaphore>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/fleet.hpp"
#include "sync/http_client.hpp"

namespace syncer {

using Json = nlohmann::json;
using Form = std::vector<std::pair<std::string, std::string>>;

struct ApiError {
    enum class Kind {
        kUnreachable,  // nothing reached the instance (DNS, connect, TLS) after retries
        kAuth,         // 403 Access denied / wrong permissions
        kNotFound,     // 404
        kValidation,   // 422 (or 400)
        kRefused,      // 403 with an errors body: a refused delete
        kServer,       // 5xx/409 after retries (reads, PUT/PATCH)
        kAmbiguous,    // a POST/DELETE whose outcome is unknown: re-read, never blindly repeat
        kProtocol,     // an answer that is not what the admin API sends
    };
    Kind kind = Kind::kProtocol;
    long status = 0;
    std::string method;
    std::string path;  // without the query string
    std::string message;

    [[nodiscard]] std::string to_string() const;
};

template <class T>
using ApiResult = std::expected<T, ApiError>;

struct RetryPolicy {
    int max_attempts = 5;
    std::chrono::milliseconds base_delay{100};
    std::chrono::milliseconds max_delay{3000};
};

// Percent-encodes form fields (application/x-www-form-urlencoded), through libcurl.
std::string form_encode(const Form& form);

// The 3scale Account Management API of one instance: JSON paths, HTTP Basic with the token (never
// in a URL), pagination, retries with backoff and jitter for what is safe to repeat.
class AdminClient {
public:
    // At most `max_in_flight` requests are sent at once, whatever the number of calling threads.
    AdminClient(HttpClient& http,
                std::string base_url,
                const config::Secret& token,
                std::chrono::milliseconds timeout,
                RetryPolicy retry = {},
                int max_in_flight = 64);

    ApiResult<Json> get(const std::string& path, const Form& query = {});
    // Every element of a list, unwrapped ({"services":[{"service":{..}}]} -> [{..}]). `key` is
    // the list key ("" for a bare array); paginated lists are walked 500 at a time.
    ApiResult<std::vector<Json>> list(const std::string& path,
                                      const std::string& key,
                                      bool paginated,
                                      const Form& query = {});
    ApiResult<Json> create(const std::string& path, const Form& form);  // POST, never retried
    ApiResult<Json> update(const std::string& path,
                           const Form& form,
                           const std::string& method = "PUT");  // idempotent: retried
    ApiResult<void> remove(const std::string& path);            // DELETE, never retried

    struct Stats {
        std::atomic<std::uint64_t> requests{0};
        std::atomic<std::uint64_t> writes{0};
        std::atomic<std::uint64_t> retries{0};
    };
    [[nodiscard]] const Stats& stats() const { return stats_; }

    // Once `*flag` is true no write is sent any more (a shutdown: those in flight finish, the
    // others fail as not sent); reads go on.
    void stop_writes_when(const std::atomic<bool>* flag) { stop_writes_ = flag; }

    // Test hook: replaces std::this_thread::sleep_for between retries.
    std::function<void(std::chrono::milliseconds)> sleep;

private:
    ApiResult<Json> call(const std::string& method,
                         const std::string& path,
                         const Form& query,
                         const Form& form);

    HttpClient& http_;
    std::string base_url_;
    std::string authorization_;
    std::chrono::milliseconds timeout_;
    RetryPolicy retry_;
    std::counting_semaphore<1024> in_flight_;
    Stats stats_;
    const std::atomic<bool>* stop_writes_ = nullptr;
};

// Unwraps {"service":{...}} -> {...}: the single key's value when the object has one key.
Json unwrap(const Json& wrapped);

}  // namespace syncer
