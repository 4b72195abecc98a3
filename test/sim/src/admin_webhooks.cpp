// The webhooks 3scale sends on account, user, application and key changes: their settings
// (GET/PUT /admin/api/webhooks.json, the spec's fields) and the events a successful write
// emits, as the XML document porta POSTs: <event><type/><action/><object/></event>, the object
// as a GET of the Account Management API renders it. Delivery is the server's (webhook_sender).
#include <array>

#include "admin_support.hpp"

namespace sim {

namespace {

constexpr std::array<const char*, 16> kFlags = {"account_created_on",
                                                "account_updated_on",
                                                "account_deleted_on",
                                                "user_created_on",
                                                "user_updated_on",
                                                "user_deleted_on",
                                                "application_created_on",
                                                "application_updated_on",
                                                "application_deleted_on",
                                                "account_plan_changed_on",
                                                "application_plan_changed_on",
                                                "application_user_key_updated_on",
                                                "application_key_created_on",
                                                "application_key_deleted_on",
                                                "application_suspended_on",
                                                "application_key_updated_on"};

// What a successful write of a route emits: the settings flag that enables it, the event's type
// and action, and where its subject is (the account, user or application the path names).
enum class Subject { kAccount, kUser, kApplication, kCreated };
struct Trigger {
    const char* route;
    const char* flag;
    const char* type;
    const char* action;
    Subject subject;
};

constexpr std::array<Trigger, 22> kTriggers = {{
    {"POST /admin/api/signup.json", "account_created_on", "account", "created", Subject::kCreated},
    {"PUT|PATCH /admin/api/accounts/{id}.json", "account_updated_on", "account", "updated",
     Subject::kAccount},
    {"DELETE /admin/api/accounts/{id}.json", "account_deleted_on", "account", "deleted",
     Subject::kAccount},
    {"PUT /admin/api/accounts/{id}/approve.json", "account_updated_on", "account", "updated",
     Subject::kAccount},
    {"PUT /admin/api/accounts/{id}/reject.json", "account_updated_on", "account", "updated",
     Subject::kAccount},
    {"PUT /admin/api/accounts/{id}/make_pending.json", "account_updated_on", "account", "updated",
     Subject::kAccount},
    {"POST /admin/api/accounts/{id}/users.json", "user_created_on", "user", "created",
     Subject::kCreated},
    {"PUT|PATCH /admin/api/accounts/{id}/users/{id}.json", "user_updated_on", "user", "updated",
     Subject::kUser},
    {"DELETE /admin/api/accounts/{id}/users/{id}.json", "user_deleted_on", "user", "deleted",
     Subject::kUser},
    {"PUT /admin/api/accounts/{id}/users/{id}/activate.json", "user_updated_on", "user", "updated",
     Subject::kUser},
    {"PUT /admin/api/accounts/{id}/users/{id}/admin.json", "user_updated_on", "user", "updated",
     Subject::kUser},
    {"PUT /admin/api/accounts/{id}/users/{id}/member.json", "user_updated_on", "user", "updated",
     Subject::kUser},
    {"PUT /admin/api/accounts/{id}/users/{id}/suspend.json", "user_updated_on", "user", "updated",
     Subject::kUser},
    {"PUT /admin/api/accounts/{id}/users/{id}/unsuspend.json", "user_updated_on", "user", "updated",
     Subject::kUser},
    {"POST /admin/api/accounts/{id}/applications.json", "application_created_on", "application",
     "created", Subject::kCreated},
    {"PUT|PATCH /admin/api/accounts/{id}/applications/{id}.json", "application_updated_on",
     "application", "updated", Subject::kApplication},
    {"DELETE /admin/api/accounts/{id}/applications/{id}.json", "application_deleted_on",
     "application", "deleted", Subject::kApplication},
    {"PUT /admin/api/accounts/{id}/applications/{id}/suspend.json", "application_suspended_on",
     "application", "suspended", Subject::kApplication},
    {"PUT /admin/api/accounts/{id}/applications/{id}/resume.json", "application_updated_on",
     "application", "updated", Subject::kApplication},
    {"PUT /admin/api/accounts/{id}/applications/{id}/change_plan.json",
     "application_plan_changed_on", "application", "plan_changed", Subject::kApplication},
    {"POST /admin/api/accounts/{id}/applications/{id}/keys.json", "application_key_created_on",
     "application", "key_created", Subject::kApplication},
    {"DELETE /admin/api/accounts/{id}/applications/{id}/keys/{name}.json",
     "application_key_deleted_on", "application", "key_deleted", Subject::kApplication},
}};

std::string xml_escape(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out.push_back(ch);
        }
    }
    return out;
}

// {"id":1,"keys":["a"]} under `name` -> <name><id>1</id><keys><key>a</key></keys></name>.
void to_xml(const std::string& name, const Json& value, std::string& out, int depth) {
    if (depth > 8) {
        return;
    }
    out += "<" + name + ">";
    if (value.is_object()) {
        for (const auto& [k, v] : value.items()) {
            to_xml(k, v, out, depth + 1);
        }
    } else if (value.is_array()) {
        const std::string item = name.ends_with("s") ? name.substr(0, name.size() - 1) : "item";
        for (const Json& v : value) {
            to_xml(item, v, out, depth + 1);
        }
    } else if (value.is_string()) {
        out += xml_escape(value.get<std::string>());
    } else if (!value.is_null()) {
        out += value.dump();
    }
    out += "</" + name + ">";
}

}  // namespace

Json default_webhook_settings() {
    Json w = {{"url", ""}, {"active", false}, {"provider_actions", false}};
    for (const char* flag : kFlags) {
        w[flag] = false;
    }
    return w;
}

std::string webhook_event_xml(const std::string& type,
                              const std::string& action,
                              const Json& object) {
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<event><type>" +
                      xml_escape(type) + "</type><action>" + xml_escape(action) +
                      "</action><object>";
    to_xml(type, object, out, 0);
    return out + "</object></event>\n";
}

Response AdminApi::show_webhooks(Ctx& /*c*/) {
    return ok("webhook", store_.webhooks);
}

Response AdminApi::update_webhooks(Ctx& c) {
    const Params p(c.params, "webhook");
    Errors errors;
    Json fields = Json::object();
    if (auto url = read_string(p, "url", errors)) {
        if (!url->empty() && !url->starts_with("http://") && !url->starts_with("https://")) {
            errors.add("url", "is invalid");
        }
        fields["url"] = *url;
    }
    if (auto v = read_bool(p, "active", errors)) {
        fields["active"] = *v;
    }
    if (auto v = read_bool(p, "provider_actions", errors)) {
        fields["provider_actions"] = *v;
    }
    for (const char* flag : kFlags) {
        if (auto v = read_bool(p, flag, errors)) {
            fields[flag] = *v;
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        store_.webhooks[key] = value;
    }
    return ok("webhook", store_.webhooks);
}

// Before a write: the subject as it is (a delete's event carries the object that went).
std::optional<Json> AdminApi::webhook_subject(const Route& route, const Ctx& c) {
    for (const Trigger& t : kTriggers) {
        if (route.name != t.route) {
            continue;
        }
        const Json* object = nullptr;
        if (t.subject == Subject::kAccount && !c.ids.empty()) {
            object = store_.visible_account(c.ids[0]);
        } else if (t.subject == Subject::kUser && c.ids.size() > 1) {
            object = store_.users.find(c.ids[1]);
        } else if (t.subject == Subject::kApplication && c.ids.size() > 1) {
            object = store_.applications.find(c.ids[1]);
        }
        return object != nullptr ? public_fields(*object) : Json::object();
    }
    return std::nullopt;
}

// After a successful write: the event, when the settings ask for it. Admin API calls are
// provider (dashboard) actions: they fire only with provider_actions on, as in 3scale.
void AdminApi::emit_webhook(const Route& route,
                            const Ctx& c,
                            const Json& before,
                            const Response& response) {
    const Json& w = store_.webhooks;
    if (response.status >= 400 || !w.value("active", false) ||
        !w.value("provider_actions", false) || w.value("url", "").empty()) {
        return;
    }
    for (const Trigger& t : kTriggers) {
        if (route.name != t.route || !w.value(t.flag, false)) {
            continue;
        }
        Json object = before;
        if (route.method != "DELETE" || std::string_view(t.action) == "key_deleted") {
            Id id = 0;
            if (t.subject == Subject::kCreated) {
                const Json body = parse_json(response.body);
                id =
                    body.is_object() && body.size() == 1 ? id_field(body.begin().value(), "id") : 0;
            } else {
                id = t.subject == Subject::kAccount ? c.ids[0] : c.ids[1];
            }
            const Json* now =
                std::string_view(t.type) == "account"
                    ? store_.accounts.find(id)
                    : (std::string_view(t.type) == "user" ? store_.users.find(id)
                                                          : store_.applications.find(id));
            if (now != nullptr) {
                object = public_fields(*now);
            }
        }
        store_.webhook_outbox.push_back(
            {w.value("url", ""), webhook_event_xml(t.type, t.action, object)});
    }
}

}  // namespace sim
