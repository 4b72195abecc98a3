#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "sim/http.hpp"

namespace sim {

// Percent-decoding for application/x-www-form-urlencoded ('+' is a space).
std::optional<std::string> url_decode(std::string_view in);

// Parses untrusted JSON: a discarded value when it is malformed or nested deeper than max_depth
// (deep nesting would exhaust the stack when the document is later serialized or destroyed).
Json parse_json(std::string_view text, std::size_t max_depth = 64);

// Parses "a=1&b[c]=2&d[]=3&d[]=4" the way Rack does into a JSON object of strings:
// {"a":"1","b":{"c":"2"},"d":["3","4"]}. Returns an error message on malformed input.
std::expected<Json, std::string> parse_form(std::string_view text);

// Query string + body (form-encoded or JSON) merged into one object; body keys win.
// Errors are the 400 a Rails app answers for an unparsable body.
std::expected<Json, std::string> parse_request_params(const Request& request);

// Parameter access with Rails' wrap_parameters semantics: an attribute is read from
// params[wrapper][name] when the wrapper object is present, else from params[name].
class Params {
public:
    Params() = default;
    Params(Json root, std::string wrapper) : root_(std::move(root)), wrapper_(std::move(wrapper)) {}

    [[nodiscard]] const Json* get(std::string_view name) const;
    [[nodiscard]] bool has(std::string_view name) const { return get(name) != nullptr; }
    // The wrapper key is present but is not an object ("Wrong type for parameter").
    [[nodiscard]] bool wrapper_has_wrong_type() const;
    [[nodiscard]] const Json& root() const { return root_; }
    [[nodiscard]] const std::string& wrapper() const { return wrapper_; }

private:
    Json root_ = Json::object();
    std::string wrapper_;
};

}  // namespace sim
