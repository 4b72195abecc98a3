#include "sync/admin_client.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include <openssl/evp.h>

namespace syncer {

namespace {

std::string basic_authorization(const std::string& token) {
    const std::string raw = token + ":";
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(raw.data()),
                                  static_cast<int>(raw.size()));
    out.resize(static_cast<std::size_t>(n));
    return "Basic " + out;
}

// "name: can't be blank; system_name: has already been taken" from porta's error bodies.
std::string error_text(const std::string& body) {
    const Json j = Json::parse(body, nullptr, false);
    if (j.is_object()) {
        if (const auto e = j.find("errors"); e != j.end() && e->is_object()) {
            std::string out;
            for (const auto& [field, messages] : e->items()) {
                for (const auto& m : messages) {
                    out += (out.empty() ? "" : "; ") + field + ": " +
                           (m.is_string() ? m.get<std::string>() : m.dump());
                }
            }
            return out;
        }
        if (const auto e = j.find("error"); e != j.end()) {
            return e->is_string() ? e->get<std::string>() : e->dump();
        }
        if (const auto s = j.find("status"); s != j.end() && s->is_string()) {
            return s->get<std::string>();
        }
    }
    std::string text = body.substr(0, 200);
    for (auto& ch : text) {
        if (ch == '\n' || ch == '\r') {
            ch = ' ';
        }
    }
    return text;
}

bool is_safe_to_repeat(const std::string& method) {
    return method == "GET" || method == "PUT" || method == "PATCH";
}

}  // namespace

std::string ApiError::to_string() const {
    std::string out = method + " " + path + ": ";
    if (status != 0) {
        out += std::to_string(status) + " ";
    }
    return out + message;
}

Json unwrap(const Json& wrapped) {
    if (wrapped.is_object() && wrapped.size() == 1) {
        return wrapped.begin().value();
    }
    return wrapped;
}

AdminClient::AdminClient(HttpClient& http,
                         std::string base_url,
                         const config::Secret& token,
                         std::chrono::milliseconds timeout,
                         RetryPolicy retry,
                         int max_in_flight)
    : http_(http),
      base_url_(std::move(base_url)),
      authorization_(basic_authorization(token.reveal())),
      timeout_(timeout),
      retry_(retry),
      in_flight_(std::clamp(max_in_flight, 1, 1024)) {}

ApiResult<Json> AdminClient::call(const std::string& method,
                                  const std::string& path,
                                  const Form& query,
                                  const Form& form) {
    if (method != "GET" && stop_writes_ != nullptr && stop_writes_->load()) {
        return std::unexpected(ApiError{ApiError::Kind::kUnreachable, 0, method, path,
                                        "not sent: tandem is stopping (the writes in flight "
                                        "finished; the next pass converges the rest)"});
    }
    HttpRequest req;
    req.method = method;
    req.url = base_url_ + path + (query.empty() ? "" : "?" + form_encode(query));
    req.timeout = timeout_;
    req.headers = {{"Authorization", authorization_}, {"Accept", "application/json"}};
    if (method != "GET") {
        req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
        req.body = form_encode(form);
        ++stats_.writes;
    }
    thread_local std::mt19937_64 rng{std::random_device{}()};
    ApiError err;
    err.method = method;
    err.path = path;
    for (int attempt = 1;; ++attempt) {
        ++stats_.requests;
        in_flight_.acquire();
        const HttpResponse res = http_.send(req);
        in_flight_.release();
        bool retry = false;
        if (res.transport == HttpResponse::Transport::kNotSent) {
            err.kind = ApiError::Kind::kUnreachable;
            err.status = 0;
            err.message = res.error;
            retry = true;
        } else if (res.transport == HttpResponse::Transport::kUnknown) {
            err.status = 0;
            err.message = res.error;
            err.kind =
                is_safe_to_repeat(method) ? ApiError::Kind::kServer : ApiError::Kind::kAmbiguous;
            retry = is_safe_to_repeat(method);
        } else if (res.status >= 200 && res.status < 300) {
            if (res.body.empty()) {
                return Json(nullptr);
            }
            Json j = Json::parse(res.body, nullptr, false);
            if (j.is_discarded()) {
                err.kind = ApiError::Kind::kProtocol;
                err.status = res.status;
                err.message = "the answer is not JSON: " + error_text(res.body);
                return std::unexpected(err);
            }
            return j;
        } else {
            err.status = res.status;
            err.message = error_text(res.body);
            if (res.status == 429) {
                err.kind = ApiError::Kind::kServer;
                retry = true;  // throttled: the request was not processed
            } else if (res.status >= 500 || res.status == 409) {
                err.kind = is_safe_to_repeat(method) ? ApiError::Kind::kServer
                                                     : ApiError::Kind::kAmbiguous;
                retry = is_safe_to_repeat(method);
            } else if (res.status == 404) {
                err.kind = ApiError::Kind::kNotFound;
            } else if (res.status == 403) {
                const Json j = Json::parse(res.body, nullptr, false);
                err.kind = j.is_object() && j.contains("errors") ? ApiError::Kind::kRefused
                                                                 : ApiError::Kind::kAuth;
                if (err.kind == ApiError::Kind::kAuth) {
                    err.message +=
                        " (check the instance's access token: it needs the "
                        "account_management scope, read-write to apply)";
                }
            } else if (res.status == 422 || res.status == 400) {
                err.kind = ApiError::Kind::kValidation;
            } else {
                err.kind = ApiError::Kind::kProtocol;
            }
        }
        if (!retry || attempt >= retry_.max_attempts) {
            return std::unexpected(err);
        }
        // exponential backoff with full jitter
        const auto cap =
            std::min(retry_.max_delay,
                     std::chrono::milliseconds(retry_.base_delay.count() << (attempt - 1)));
        std::uniform_int_distribution<std::int64_t> jitter(0, cap.count());
        const std::chrono::milliseconds delay(jitter(rng));
        ++stats_.retries;
        if (sleep) {
            sleep(delay);
        } else {
            std::this_thread::sleep_for(delay);
        }
    }
}

ApiResult<Json> AdminClient::get(const std::string& path, const Form& query) {
    return call("GET", path, query, {});
}

ApiResult<std::vector<Json>> AdminClient::list(const std::string& path,
                                               const std::string& key,
                                               bool paginated,
                                               const Form& extra) {
    std::vector<Json> out;
    constexpr int kPerPage = 500;
    for (int page = 1; page < 100000; ++page) {
        Form query = extra;
        if (paginated) {
            query.emplace_back("page", std::to_string(page));
            query.emplace_back("per_page", std::to_string(kPerPage));
        }
        auto res = call("GET", path, query, {});
        if (!res) {
            return std::unexpected(res.error());
        }
        const Json* items = &*res;
        if (!key.empty()) {
            if (!res->is_object() || !res->contains(key) || !(*res)[key].is_array()) {
                return std::unexpected(ApiError{ApiError::Kind::kProtocol, 200, "GET", path,
                                                "expected a list under '" + key + "'"});
            }
            items = &(*res)[key];
        } else if (!res->is_array()) {
            return std::unexpected(
                ApiError{ApiError::Kind::kProtocol, 200, "GET", path, "expected a JSON array"});
        }
        for (const auto& item : *items) {
            out.push_back(unwrap(item));
        }
        if (!paginated || items->size() < static_cast<std::size_t>(kPerPage)) {
            break;
        }
        if (res->is_object() && res->contains("metadata")) {
            const auto& m = (*res)["metadata"];
            if (m.value("current_page", 0) >= m.value("total_pages", 0)) {
                break;
            }
        }
    }
    return out;
}

ApiResult<Json> AdminClient::create(const std::string& path, const Form& form) {
    auto res = call("POST", path, {}, form);
    if (!res) {
        return res;
    }
    return unwrap(*res);
}

ApiResult<Json> AdminClient::update(const std::string& path,
                                    const Form& form,
                                    const std::string& method) {
    auto res = call(method, path, {}, form);
    if (!res) {
        return res;
    }
    return unwrap(*res);
}

ApiResult<void> AdminClient::remove(const std::string& path) {
    auto res = call("DELETE", path, {}, {});
    if (!res) {
        return std::unexpected(res.error());
    }
    return {};
}

}  // namespace syncer
