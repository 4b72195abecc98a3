#include "sim/http.hpp"

namespace sim {

std::string_view Request::header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers) {
        if (name == lower_name) {
            return value;
        }
    }
    return {};
}

std::string_view Request::path() const {
    const std::string_view t = target;
    const auto q = t.find('?');
    return q == std::string_view::npos ? t : t.substr(0, q);
}

std::string_view Request::query() const {
    const std::string_view t = target;
    const auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

Response Response::json(unsigned status, const Json& body) {
    Response r;
    r.status = status;
    r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
    return r;
}

Response Response::text(unsigned status, std::string body) {
    Response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(body);
    return r;
}

Response Response::empty(unsigned status) {
    Response r;
    r.status = status;
    r.content_type = "application/json; charset=utf-8";
    return r;
}

}  // namespace sim
