#pragma once

// Helpers shared by the admin API translation units. Private to threescale-sim.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/admin_api.hpp"

namespace sim {

struct AdminApi::Ctx {
    const Request& request;
    Json params;                       // query + body, merged
    std::vector<Id> ids;               // numeric path segments, in order
    std::vector<std::string> strings;  // other captured segments, in order
    std::string base;                  // "http://host" for links
};

// Collects Rails-style validation errors: {"errors":{"field":["msg", ...]}}.
class Errors {
public:
    void add(const std::string& field, const std::string& message) {
        errors_[field].push_back(message);
    }
    [[nodiscard]] bool empty() const { return errors_.empty(); }
    [[nodiscard]] Json to_json() const;

private:
    std::map<std::string, std::vector<std::string>> errors_;
};

// The Location of a member created under the collection the request addressed.
std::string member_location(const AdminApi::Ctx& c, Id id);

Response not_found();
Response unprocessable(const Errors& errors);
Response refused_delete(const std::string& message);  // 403 {"errors":{"base":[msg]}}
Response required_missing(const std::string& name);   // 400 text/plain
Response created(const std::string& wrapper, const Json& object, const std::string& location);
Response ok(const std::string& wrapper, const Json& object);
Response deleted();

// Typed parameter readers: nullopt when absent; a present value of the wrong type is recorded
// in errors and also gives nullopt.
std::optional<std::string> read_string(const Params& p, const std::string& name, Errors& errors);
std::optional<std::int64_t> read_int(const Params& p, const std::string& name, Errors& errors);
std::optional<bool> read_bool(const Params& p, const std::string& name, Errors& errors);
std::optional<double> read_decimal(const Params& p, const std::string& name, Errors& errors);
// An object of strings (annotations); a JSON string holding an object is accepted too.
std::optional<Json> read_object(const Params& p, const std::string& name, Errors& errors);
// True when at least one of the names is present (wrapped or flat): Rails only builds the
// wrapper from known attributes, and params.require(wrapper) fails without one.
bool has_any(const Params& p, std::initializer_list<const char*> names);

bool valid_system_name(const std::string& s);               // \A\w[\w\-/_]+\z
std::string parameterize_underscore(const std::string& s);  // "My API" -> "my_api"
// http(s)/ws(s) URL with an explicit port ("https://a.b" -> "https://a.b:443"); nullopt if invalid.
std::optional<std::string> normalize_endpoint(const std::string& url);
std::string host_of_endpoint(const std::string& normalized);
bool is_localhost(const std::string& host);
std::string format_decimal(double value);  // BigDecimal#to_s style: "15.45", "0.0"

// Pagination per porta: per_page 1..500 (out of range silently becomes 500), page < 1 is 1,
// "metadata" only when there is more than one page. `bare` lists (backend usages) are arrays.
Response paginate(const Json& params,
                  std::vector<Json> items,
                  const std::string& key,
                  bool bare = false);

std::string base64_decode(std::string_view in);

// Renders an internal object for the API: drops fields whose names start with '_'.
Json public_fields(const Json& object);
std::optional<Id> parse_id(const std::string& s);
Id id_field(const Json& j, const char* key);

}  // namespace sim
