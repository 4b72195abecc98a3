#include "sync/admin_client.hpp"

#include <deque>
#include <mutex>

#include <gtest/gtest.h>

namespace syncer {
namespace {

// Scripted responses, recorded requests (ninja's VirtualFileSystem style).
class FakeHttpClient final : public HttpClient {
public:
    std::deque<HttpResponse> script;
    std::vector<HttpRequest> requests;
    HttpResponse send(const HttpRequest& request) override {
        const std::lock_guard lock(mutex_);
        requests.push_back(request);
        if (script.empty()) {
            return {HttpResponse::Transport::kOk, 500, "script exhausted", ""};
        }
        auto r = script.front();
        script.pop_front();
        return r;
    }

private:
    std::mutex mutex_;
};

HttpResponse ok(std::string body, long status = 200) {
    return {HttpResponse::Transport::kOk, status, std::move(body), ""};
}

struct ClientTest : ::testing::Test {
    FakeHttpClient http;
    config::Secret token{"s3cr3t-token"};
    AdminClient client{http, "https://admin.example.com:443", token, std::chrono::seconds(5),
                       RetryPolicy{4, std::chrono::milliseconds(1), std::chrono::milliseconds(2)}};
    std::vector<std::chrono::milliseconds> slept;
    void SetUp() override {
        client.sleep = [this](std::chrono::milliseconds d) { slept.push_back(d); };
    }
};

TEST_F(ClientTest, SendsTheTokenAsBasicAuthNeverInTheUrl) {
    http.script.push_back(ok(R"({"service":{"id":1}})"));
    ASSERT_TRUE(client.get("/admin/api/services/1.json").has_value());
    const auto& req = http.requests.at(0);
    EXPECT_EQ(req.url, "https://admin.example.com:443/admin/api/services/1.json");
    EXPECT_EQ(req.url.find("s3cr3t"), std::string::npos);
    const auto auth = std::find_if(req.headers.begin(), req.headers.end(),
                                   [](const auto& h) { return h.first == "Authorization"; });
    ASSERT_NE(auth, req.headers.end());
    EXPECT_EQ(auth->second, "Basic czNjcjN0LXRva2VuOg==");  // base64("s3cr3t-token:")
}

TEST_F(ClientTest, ReadsAreRetriedWithBackoffOn5xxTimeoutsAnd409) {
    http.script = {ok("oops", 503),
                   {HttpResponse::Transport::kUnknown, 0, "", "timeout"},
                   ok("", 409),
                   ok(R"({"a":1})")};
    const auto r = client.get("/x.json");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["a"], 1);
    EXPECT_EQ(http.requests.size(), 4u);
    EXPECT_EQ(slept.size(), 3u);
    EXPECT_EQ(client.stats().retries, 3u);
}

TEST_F(ClientTest, RetriesGiveUpAfterMaxAttempts) {
    for (int i = 0; i < 10; ++i) {
        http.script.push_back(ok("down", 502));
    }
    const auto r = client.get("/x.json");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ApiError::Kind::kServer);
    EXPECT_EQ(http.requests.size(), 4u);
}

TEST_F(ClientTest, APostWithAnUnknownOutcomeIsNeverRepeated) {
    http.script = {ok("bad gateway", 502), ok(R"({"service":{"id":2}})", 201)};
    const auto r = client.create("/admin/api/services.json", {{"name", "x"}});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ApiError::Kind::kAmbiguous);
    EXPECT_EQ(http.requests.size(), 1u);
    http.script = {{HttpResponse::Transport::kUnknown, 0, "", "reset"}};
    EXPECT_EQ(client.remove("/admin/api/services/1.json").error().kind, ApiError::Kind::kAmbiguous);
}

TEST_F(ClientTest, APostThatWasNeverSentIsRetried) {
    http.script = {{HttpResponse::Transport::kNotSent, 0, "", "connection refused"},
                   ok(R"({"service":{"id":2}})", 201)};
    const auto r = client.create("/admin/api/services.json", {{"name", "a b&c"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["id"], 2);  // unwrapped
    EXPECT_EQ(http.requests.at(1).body, "name=a%20b%26c");
}

TEST_F(ClientTest, PutAndPatchAreRetriedAsIdempotent) {
    http.script = {ok("", 503), ok(R"({"limit":{"value":5}})")};
    const auto r = client.update("/l.json", {{"value", "5"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["value"], 5);
    EXPECT_EQ(http.requests.at(1).method, "PUT");
}

TEST_F(ClientTest, ErrorsAreClassifiedFromPortasBodies) {
    http.script = {ok(R"({"error":"Access denied"})", 403)};
    auto r = client.get("/x.json");
    EXPECT_EQ(r.error().kind, ApiError::Kind::kAuth);
    http.script = {ok(R"({"errors":{"base":["cannot be deleted"]}})", 403)};
    EXPECT_EQ(client.remove("/x.json").error().kind, ApiError::Kind::kRefused);
    http.script = {ok(R"({"errors":{"system_name":["has already been taken"]}})", 422)};
    r = client.create("/x.json", {});
    EXPECT_EQ(r.error().kind, ApiError::Kind::kValidation);
    EXPECT_EQ(r.error().message, "system_name: has already been taken");
    http.script = {ok(R"({"status":"Not found"})", 404)};
    EXPECT_EQ(client.get("/x.json").error().kind, ApiError::Kind::kNotFound);
    http.script = {ok("<html>", 200)};
    EXPECT_EQ(client.get("/x.json").error().kind, ApiError::Kind::kProtocol);
    EXPECT_EQ(client.get("/x.json").error().to_string().find("s3cr3t"), std::string::npos);
}

TEST_F(ClientTest, ListsWalkPagesUntilAShortPage) {
    Json page1 = {{"services", Json::array()}};
    for (int i = 0; i < 500; ++i) {
        page1["services"].push_back({{"service", {{"id", i}}}});
    }
    page1["metadata"] = {{"current_page", 1}, {"total_pages", 2}};
    http.script = {ok(page1.dump()), ok(R"({"services":[{"service":{"id":500}}]})")};
    const auto r = client.list("/admin/api/services.json", "services", true);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->size(), 501u);
    EXPECT_EQ(r->back()["id"], 500);
    EXPECT_NE(http.requests.at(1).url.find("page=2"), std::string::npos);
    EXPECT_NE(http.requests.at(1).url.find("per_page=500"), std::string::npos);
    // bare arrays (backend usages)
    http.script = {ok(R"([{"backend_usage":{"id":1}}])")};
    EXPECT_EQ(client.list("/u.json", "", true)->size(), 1u);
}

}  // namespace
}  // namespace syncer
