// tandem-lb at the edge: the malformed-request and smuggling corpus (http_corpus.hpp) sent to
// tandem-lb, HAProxy 2.6 and nginx 1.22 (Debian's) in front of the same recording upstream.
// tandem-lb must answer each case as the corpus says, never let a smuggled request reach the
// cluster, and refuse everything either anchor refuses — or the difference is listed below
// with its reason. The same for malformed responses from a cluster: 502, never relayed.
// Set TANDEM_CORPUS_TABLE=FILE to write the side-by-side table (markdown) to FILE.
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "http_corpus.hpp"
#include "support/anchors.hpp"
#include "support/balancer.hpp"
#include "support/recorder.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::AnchorProxy;
using support::Recorder;

// Where tandem-lb deliberately accepts what one anchor refuses: valid by the RFC, and forwarded
// in a form the cluster cannot read differently (README: "What tandem-lb refuses").
const std::map<std::string, std::string> kAcceptedOnPurpose = {
    {"identical Content-Lengths",
     "RFC 9110 §8.6 lets a recipient replace identical values by one (nginx refuses); one "
     "Content-Length is forwarded"},
    {"Content-Length list of equal values", "as above"},
    {"valid absolute-form",
     "RFC 9112 §3.2.2: a proxy replaces Host with the target's authority (HAProxy refuses a Host "
     "that differs); the cluster is sent the origin-form and the new Host only"},
    {"valid OPTIONS *", "RFC 9112 §3.2.4 asterisk-form (nginx does not implement it)"},
    {"valid Transfer-Encoding after a tab",
     "HTAB is optional whitespace (RFC 9110 §5.6.3; nginx answers 501); forwarded as "
     "'Transfer-Encoding: chunked'"},
};

struct Outcome {
    int status = 0;  // the first status line's code; 0: no answer
    std::size_t forwarded = 0;
    bool smuggled = false;
    [[nodiscard]] bool refused() const { return forwarded == 0 && (status == 0 || status >= 400); }
    [[nodiscard]] std::string text() const {
        if (forwarded > 0) {
            return "forwarded" +
                   (forwarded > 1 ? " as " + std::to_string(forwarded) + " requests" : "") +
                   (smuggled ? " (incl. /smuggled)" : "") + ", " + std::to_string(status);
        }
        return status == 0 ? "closed" : std::to_string(status);
    }
};

int first_status(const std::string& answer) {
    if (answer.rfind("HTTP/1.", 0) != 0 || answer.size() < 12) {
        return 0;
    }
    return std::atoi(answer.substr(9, 3).c_str());
}

class StrictHttp : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        recorder_ = std::make_unique<Recorder>();
        lb_ = support::Balancer::start(
            "threads: 1\n" + support::cluster_yaml({{"recorder", recorder_->address()}}) +
            "healthCheck: {path: /__health, interval: 100ms, timeout: 80ms, rise: 1}\n");
        haproxy_ = AnchorProxy::start(AnchorProxy::Kind::kHaproxy, recorder_->address());
        nginx_ = AnchorProxy::start(AnchorProxy::Kind::kNginx, recorder_->address());
    }
    static void TearDownTestSuite() {
        nginx_.reset();
        haproxy_.reset();
        lb_.reset();
        recorder_.reset();
    }
    void SetUp() override {
        ASSERT_TRUE(recorder_ && lb_ && haproxy_ && nginx_)
            << "tandem-lb, HAProxy and nginx must all run (scripts/install-deps.sh)";
        ASSERT_TRUE(
            support::wait_until([] { return lb_->endpoint_healthy("recorder", true); }, 10s));
    }

    template <class Target>
    static Outcome send(const Target& target, const std::string& bytes) {
        recorder_->clear();
        Outcome o;
        o.status = first_status(support::send_and_half_close(target, bytes));
        const auto seen = recorder_->requests();
        o.forwarded = seen.size();
        for (const auto& r : seen) {
            o.smuggled = o.smuggled || r.target == "/smuggled";
        }
        return o;
    }
    struct Row {
        std::string name;
        int expect;
        Outcome lb, haproxy, nginx;
    };
    // Each case sent to the three; with `as_responses`, each case is what the recorder answers
    // to a plain GET.
    static std::vector<Row> run(const std::vector<corpus::Case>& cases, bool as_responses) {
        std::vector<Row> rows;
        for (std::size_t i = 0; i < cases.size(); ++i) {
            const auto& c = cases[i];
            std::string bytes = c.bytes;
            if (as_responses) {
                recorder_->set_response(std::to_string(i), c.bytes);
                bytes = "GET /respond/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
            }
            rows.push_back({c.name, c.expect, send(lb_->port, bytes), send(haproxy_->socket, bytes),
                            send(nginx_->socket, bytes)});
        }
        return rows;
    }
    // A markdown table: what each did (with `statuses`, only the status the client got).
    static void write_table(const std::vector<Row>& rows, const std::string& title, bool statuses) {
        const auto cell = [statuses](const Outcome& o) {
            return statuses ? (o.status == 0 ? "closed" : std::to_string(o.status)) : o.text();
        };
        std::ostringstream t;
        t << "\n"
          << title << "\n\n| case | tandem-lb | HAProxy 2.6 | nginx 1.22 |\n|---|---|---|---|\n";
        for (const auto& r : rows) {
            t << "| " << r.name << " | " << cell(r.lb) << " | " << cell(r.haproxy) << " | "
              << cell(r.nginx) << " |\n";
        }
        std::cout << t.str();
        if (const char* file = std::getenv("TANDEM_CORPUS_TABLE")) {
            std::ofstream(file, std::ios::app) << t.str();
        }
    }

    static inline std::unique_ptr<Recorder> recorder_;
    static inline std::unique_ptr<support::Balancer> lb_;
    static inline std::unique_ptr<AnchorProxy> haproxy_;
    static inline std::unique_ptr<AnchorProxy> nginx_;
};

TEST_F(StrictHttp, RefusesEveryMalformedRequestEitherAnchorRefuses) {
    const auto rows = run(corpus::requests(), false);
    write_table(rows, "Requests (a status: answered by the proxy, nothing forwarded)", false);
    for (const auto& r : rows) {
        SCOPED_TRACE(r.name);
        EXPECT_FALSE(r.lb.smuggled) << "a smuggled request reached the cluster";
        if (r.expect == 0) {
            EXPECT_EQ(r.lb.status, 200);
            EXPECT_EQ(r.lb.forwarded, 1U);
        } else {
            EXPECT_EQ(r.lb.status, r.expect);
            EXPECT_EQ(r.lb.forwarded, 0U) << "refused, yet something reached the cluster";
        }
        if ((r.haproxy.refused() || r.nginx.refused()) && !kAcceptedOnPurpose.contains(r.name)) {
            EXPECT_TRUE(r.lb.refused()) << "HAProxy " << r.haproxy.text() << ", nginx "
                                        << r.nginx.text() << ", tandem-lb " << r.lb.text();
        }
    }
}

TEST_F(StrictHttp, ForwardsOneHostOneLengthAndAnOriginFormTarget) {
    recorder_->clear();
    support::send_and_half_close(
        lb_->port, "GET http://api.example.com:8080?user_key=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    support::send_and_half_close(lb_->port,
                                 "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                                 "Content-Length: 2, 2\r\n\r\nok");
    const auto seen = recorder_->requests();
    ASSERT_EQ(seen.size(), 2U);
    EXPECT_EQ(seen[0].target, "/?user_key=1");
    EXPECT_EQ(seen[0].headers.at("host"), "api.example.com:8080");  // (one Host, the new one)
    EXPECT_EQ(seen[1].headers.at("content-length"), "2");
    EXPECT_EQ(seen[1].body, "ok");
}

TEST_F(StrictHttp, RelaysNoResponseWithInvalidFraming) {
    const auto rows = run(corpus::responses(), true);
    write_table(rows, "Responses from a cluster (the status the client got)", true);
    for (const auto& r : rows) {
        SCOPED_TRACE(r.name);
        EXPECT_EQ(r.lb.status, r.expect);
        const bool anchor_refused = r.haproxy.status == 502 || r.nginx.status == 502;
        if (anchor_refused && !kAcceptedOnPurpose.contains(r.name)) {
            EXPECT_EQ(r.lb.status, 502)
                << "HAProxy " << r.haproxy.text() << ", nginx " << r.nginx.text();
        }
    }
}

}  // namespace
