#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/diagnostic.hpp"
#include "config/fleet.hpp"

namespace config {

// Accounts, users, applications and Secrets reference each other by metadata.name across files:
// they are collected first and resolved once every document is read.
struct RawSecret {
    Source source;
    std::map<std::string, std::string> values;
    std::map<std::string, std::string> problems;  // key -> why its value could not be read
};

struct RawAccount {
    Source source;
    std::string org_name;
    std::optional<bool> billing;
    std::optional<bool> charging;
};

struct RawUser {
    Source source;
    std::string username;
    std::string email;
    std::string role;
    bool suspended = false;
    std::string password_secret;
    std::string account;
    // where each reference is written, for the errors about it
    Source username_source;
    Source email_source;
    Source password_source;
    Source account_source;
};

struct RawApp {
    std::string cr_name;  // metadata.name (an ApplicationAuth references it)
    Source source;
    std::string account;
    std::string product;
    std::string plan;
    std::string name;
    std::string description;
    bool suspended = false;
    std::string secret;  // authSecretRef; empty: tandem decides the credentials
    Source account_source;
    Source product_source;
    Source plan_source;
    Source secret_source;
    Source name_source;
};

// ApplicationAuth: the keys of an Application CR from a Secret (generateSecret without values:
// tandem decides them, as for an Application without authSecretRef).
struct RawAppAuth {
    Source source;
    std::string application;  // applicationCRName
    std::string secret;       // authSecretRef.name
    bool generate = false;
    Source application_source;
    Source secret_source;
};

// A Product's value that lives in a Secret: its OIDC issuer (issuerEndpointRef, key
// issuerEndpoint) or a policy's configuration (configurationRef, key configuration: JSON).
struct ProductSecretRef {
    std::string product;  // system_name
    std::string secret;
    int policy = -1;  // index in the chain; -1: the issuer endpoint
    Source source;
    std::string path;
};

// An ActiveDoc whose document is a Secret's value.
struct ActiveDocSecretRef {
    std::string active_doc;  // system_name
    std::string secret;
    Source source;
    std::string path;
};

struct Pending {
    std::map<std::string, RawSecret> secrets;
    std::map<std::string, RawAccount> accounts;
    std::vector<RawUser> users;
    std::vector<RawApp> apps;
    std::vector<RawAppAuth> app_auths;
    std::map<std::string, std::string> product_names;  // Product metadata.name -> system_name
    std::vector<ProductSecretRef> product_secrets;
    std::vector<ActiveDocSecretRef> active_docs;
};

// Every cross-reference of the desired state, once every document is read: metrics and methods
// named by mapping rules, limits and pricing rules, backend usages and their paths.
void check_references(Fleet& fleet, Diagnostics& out);

// Accounts are keyed by their admin's username; every reference between accounts, users,
// applications and Secrets, and every secret value, is checked here (applications: below).
void resolve_accounts(Fleet& fleet, const Pending& pending, Diagnostics& out);

// The Product values that live in Secrets (issuerEndpointRef, policies[].configurationRef).
void resolve_product_secrets(Fleet& fleet, const Pending& pending, Diagnostics& out);

// Applications and ApplicationAuths (applications.cpp), with `account_key`: DeveloperAccount CR
// name -> its admin's username.
void resolve_applications(Fleet& fleet,
                          const Pending& pending,
                          const std::map<std::string, std::string>& account_key,
                          Diagnostics& out);

// The value under `key` of Secret `secret` ("" with an error at `source`/`path`, or at the
// Secret, when there is none).
std::string secret_value(const Pending& pending,
                         const std::string& secret,
                         const std::string& key,
                         const Source& source,
                         const std::string& path,
                         Diagnostics& out);

}  // namespace config
