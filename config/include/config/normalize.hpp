#pragma once

// Normalization shared by the loader (desired state) and the state reader (actual state), so both
// sides of a comparison are written the same way.

#include <cstdint>
#include <optional>
#include <string>

namespace config {

// http(s)/ws(s) URL with an explicit port, scheme and host lower-cased ("https://A.b" ->
// "https://a.b:443"); nullopt when it is not such a URL.
std::optional<std::string> normalize_url(const std::string& url);
// An OpenID provider's issuer URL: http(s), and it may carry the client's credentials
// (https://client:secret@sso.example.com/auth/realms/r).
bool valid_issuer_endpoint(const std::string& url);

// Why normalize_url refuses `url`, for an error message ("port 99999 is out of range 1..65535");
// empty when it accepts it.
std::string url_problem(const std::string& url);

// A decimal as porta renders DECIMAL columns: no exponent, trailing zeros trimmed, at least one
// digit after the point ("1" -> "1.0", "15.450" -> "15.45"). nullopt if not a decimal.
std::optional<std::string> normalize_decimal(const std::string& text);

// porta's system_name format: \A\w[\w\-/_]+\z
bool valid_system_name(const std::string& name);

// The operator's default system name: the name with every non-alphanumeric character removed.
std::string operator_default_system_name(const std::string& name);

// 3scale_toolbox/porta mapping-rule pattern rules: starts with '/', balanced {var}, no spaces.
bool valid_mapping_pattern(const std::string& pattern);

// The methods porta accepts for mapping rules (the operator CRD also lists TRACE and CONNECT).
bool porta_http_method(const std::string& method);

}  // namespace config
