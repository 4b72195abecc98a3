#pragma once

// In-process driver for threescale-sim: requests go straight to the Simulator (no sockets), with
// a frozen clock so limit windows are exact.

#include <string>

#include <boost/beast/core/detail/base64.hpp>
#include <gtest/gtest.h>

#include "sim/simulator.hpp"

namespace sim::testing {

inline constexpr const char* kToken = "test-token-5f1c";

struct Reply {
    unsigned status = 0;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    Json json;  // parsed body (null when empty or not JSON)
};

// Percent-encodes a form value.
inline std::string form_escape(const std::string& in) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : in) {
        const auto ch = static_cast<unsigned char>(c);
        if (std::isalnum(ch) != 0 || ch == '-' || ch == '_' || ch == '.' || ch == '/' ||
            ch == '~') {
            out.push_back(static_cast<char>(ch));
        } else {
            out += {'%', kHex[ch >> 4], kHex[ch & 15]};
        }
    }
    return out;
}

inline std::string basic(const std::string& user, const std::string& password) {
    namespace b64 = boost::beast::detail::base64;
    const std::string raw = user + ":" + password;
    std::string out(b64::encoded_size(raw.size()), '\0');
    out.resize(b64::encode(out.data(), raw.data(), raw.size()));
    return "Basic " + out;
}

class SimHarness {
public:
    explicit SimHarness(bool seed_defaults = false, std::int64_t purge_delay = 10)
        : sim_(make_options(seed_defaults, purge_delay), FaultSettings{}, 42) {
        sim_.clock().freeze(true);
        sim_.clock().set(Seconds(std::chrono::seconds(1790000000)));  // 2026-09-21T...Z
        EXPECT_TRUE(sim_.open_state(std::nullopt).has_value());
    }

    Simulator& sim() { return sim_; }

    Reply call(const std::string& method,
               const std::string& target,
               const std::string& body = "",
               const std::string& content_type = "application/x-www-form-urlencoded",
               std::string authorization = basic(kToken, "")) {
        Request req;
        req.method = method;
        req.target = target;
        req.body = body;
        req.headers.emplace_back("host", "sim.test");
        if (!body.empty()) {
            req.headers.emplace_back("content-type", content_type);
        }
        if (!authorization.empty()) {
            req.headers.emplace_back("authorization", std::move(authorization));
        }
        return to_reply(sim_.handle_admin(req, {}));
    }
    Reply get(const std::string& target) { return call("GET", target); }
    Reply post(const std::string& target, const std::string& form) {
        return call("POST", target, form);
    }
    Reply put(const std::string& target, const std::string& form) {
        return call("PUT", target, form);
    }
    Reply del(const std::string& target) { return call("DELETE", target); }
    Reply post_json(const std::string& target, const Json& body) {
        return call("POST", target, body.dump(), "application/json");
    }

    Reply gateway(const std::string& method,
                  const std::string& target,
                  const std::string& host,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
        Request req;
        req.method = method;
        req.target = target;
        req.headers = std::move(headers);
        req.headers.emplace_back("host", host);
        return to_reply(sim_.handle_gateway(req, {}).response);
    }

    // Creates a product with one backend (so it can be deployed) and returns ids.
    struct Product {
        Id service = 0;
        Id backend = 0;
        Id hits = 0;
        Id backend_hits = 0;
        Id plan = 0;
        std::string host;
    };
    Product make_product(const std::string& system_name, const std::string& backend_version = "1") {
        Product p;
        p.host = system_name + ".api.test";
        auto s = post("/admin/api/services.json",
                      "name=" + system_name + "&system_name=" + system_name +
                          "&deployment_option=self_managed&backend_version=" + backend_version);
        EXPECT_EQ(s.status, 201u) << s.body;
        p.service = s.json["service"]["id"];
        auto b = post("/admin/api/backend_apis.json",
                      "name=" + system_name + "-be&system_name=" + system_name +
                          "_be&private_endpoint=https://backend.example.net");
        EXPECT_EQ(b.status, 201u) << b.body;
        p.backend = b.json["backend_api"]["id"];
        auto u = post(svc(p) + "/backend_usages.json",
                      "backend_api_id=" + std::to_string(p.backend) + "&path=/");
        EXPECT_EQ(u.status, 201u) << u.body;
        const Json metrics = get(svc(p) + "/metrics.json").json["metrics"];
        for (const auto& m : metrics) {
            if (m["metric"]["system_name"] == "hits") {
                p.hits = m["metric"]["id"];
            }
        }
        const Json backend_metrics =
            get("/admin/api/backend_apis/" + std::to_string(p.backend) + "/metrics.json")
                .json["metrics"];
        for (const auto& m : backend_metrics) {
            p.backend_hits = m["metric"]["id"];
        }
        auto plan = post(svc(p) + "/application_plans.json", "name=Basic&system_name=basic");
        EXPECT_EQ(plan.status, 201u) << plan.body;
        p.plan = plan.json["application_plan"]["id"];
        auto proxy =
            call("PATCH", svc(p) + "/proxy.json",
                 "endpoint=https://" + p.host + "&sandbox_endpoint=https://staging." + p.host);
        EXPECT_EQ(proxy.status, 200u) << proxy.body;
        return p;
    }
    static std::string svc(const Product& p) {
        return "/admin/api/services/" + std::to_string(p.service);
    }
    // Deploys and promotes the latest staging config to production.
    void promote(const Product& p) {
        EXPECT_EQ(post(svc(p) + "/proxy/deploy.json", "").status, 201u);
        const auto latest = get(svc(p) + "/proxy/configs/sandbox/latest.json");
        ASSERT_EQ(latest.status, 200u) << latest.body;
        const auto version = latest.json["proxy_config"]["version"].get<std::int64_t>();
        const auto prod = get(svc(p) + "/proxy/configs/production/latest.json");
        if (prod.status == 200 && prod.json["proxy_config"]["version"] == version) {
            return;
        }
        const auto r =
            post(svc(p) + "/proxy/configs/sandbox/" + std::to_string(version) + "/promote.json",
                 "to=production");
        EXPECT_EQ(r.status, 201u) << r.body;
    }
    // A developer account with one application on `plan`; returns the application JSON.
    Json make_app(Id plan, const std::string& username, const std::string& extra) {
        auto acc = post("/admin/api/signup.json", "org_name=" + username + "&username=" + username +
                                                      "&email=" + username +
                                                      "@example.org&password=secret123");
        EXPECT_EQ(acc.status, 201u) << acc.body;
        const Id account = acc.json["account"]["id"];
        auto app = post("/admin/api/accounts/" + std::to_string(account) + "/applications.json",
                        "plan_id=" + std::to_string(plan) + "&name=app-" + username + extra);
        EXPECT_EQ(app.status, 201u) << app.body;
        return app.json["application"];
    }

private:
    static SimOptions make_options(bool seed_defaults, std::int64_t purge_delay) {
        SimOptions o;
        o.name = "test";
        o.token = kToken;
        o.read_only_token = "read-only-token-77";
        o.seed_default_objects = seed_defaults;
        o.purge_delay = std::chrono::seconds(purge_delay);
        return o;
    }
    static Reply to_reply(const Response& r) {
        Reply out{r.status, r.content_type, r.body, r.headers, nullptr};
        if (!r.body.empty()) {
            out.json = Json::parse(r.body, nullptr, false);
            if (out.json.is_discarded()) {
                out.json = nullptr;
            }
        }
        return out;
    }

    Simulator sim_;
};

inline std::string id(const Json& j) {
    return std::to_string(j.get<std::int64_t>());
}

}  // namespace sim::testing
