// tandem-lb's access log and request IDs end to end: one JSON (or common/combined) line per
// request and per refused request, credentials never in any log, the file reopened on SIGUSR1
// and moved by a reload, lines dropped (and counted) rather than a worker waiting on a slow
// disk; X-Request-Id generated or kept, sent upstream, returned, logged. The upstream is the
// recording one (support/recorder.hpp): what the cluster received is checked too.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "support/anchors.hpp"
#include "support/balancer.hpp"
#include "support/http.hpp"
#include "support/recorder.hpp"
#include "support/wait.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using support::Balancer;
using support::Recorder;
using support::wait_until;

const std::string kCanaryQuery = "CANARY-QUERY-7f3a";
const std::string kCanaryHeader = "CANARY-HEADER-91bc";

struct LogDir {
    fs::path dir = fs::temp_directory_path() /
                   ("tandem-lb-log-" + std::to_string(::getpid()) + "-" +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    LogDir() { fs::create_directories(dir); }
    ~LogDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

std::vector<std::string> lines_of(const fs::path& file) {
    std::vector<std::string> out;
    std::ifstream in(file);
    for (std::string l; std::getline(in, l);) {
        out.push_back(l);
    }
    return out;
}

// Waits until `file` has at least `n` lines (the writer flushes every 200 ms).
std::vector<std::string> wait_lines(const fs::path& file, std::size_t n) {
    wait_until([&] { return lines_of(file).size() >= n; }, 10s);
    return lines_of(file);
}

std::string yaml_for(const Recorder& rec, const std::string& extra) {
    return "threads: 2\n" + support::cluster_yaml({{"east", rec.address()}}) +
           "healthCheck: {path: /__health, interval: 100ms, timeout: 80ms, rise: 1}\n" + extra;
}

TEST(AccessLog, OneLinePerRequestWithTheRequestIdAndNoCredential) {
    Recorder rec;
    LogDir d;
    const fs::path log = d.dir / "access.log";
    auto lb =
        Balancer::start(yaml_for(rec, "accessLog: {path: " + log.string() +
                                          ", headers: [User-Agent, user_key, Authorization]}\n"),
                        true);
    ASSERT_TRUE(lb);
    auto ok = support::http_request(lb->port, "GET",
                                    "/v1/things?user_key=" + kCanaryQuery + "&page=2", "",
                                    {{"user_key", kCanaryHeader},
                                     {"Authorization", "Bearer " + kCanaryHeader},
                                     {"User-Agent", "e2e"},
                                     {"X-Request-Id", "from-the-client"}});
    ASSERT_EQ(ok.status, 200U) << ok.error;
    const auto posted = support::http_request(lb->port, "POST", "/up", "hello");
    ASSERT_EQ(posted.status, 200U);
    // A request the balancer refuses: logged too, with its reason.
    const auto refused = support::send_and_half_close(
        lb->port, "GET /x?app_key=" + kCanaryQuery + " HTTP/1.1\r\nHost: a b\r\n\r\n");
    ASSERT_EQ(refused.rfind("HTTP/1.1 400", 0), 0U);

    const auto lines = wait_lines(log, 3);
    ASSERT_EQ(lines.size(), 3U);
    std::map<int, nlohmann::json> by_status;  // 200 (GET), 400 (refused); the POST by method
    nlohmann::json post;
    for (const auto& l : lines) {
        const auto j = nlohmann::json::parse(l);
        (j["method"] == "POST" ? post : by_status[j["status"].get<int>()]) = j;
    }
    const auto& get = by_status.at(200);
    // The ID: generated (the client's is not trusted by default), the same in the response, at
    // the cluster and in the log.
    const std::string id = ok.headers.at("x-request-id");
    EXPECT_NE(id, "from-the-client");
    ASSERT_EQ(rec.requests().size(), 2U);
    EXPECT_EQ(rec.requests()[0].headers.at("x-request-id"), id);
    EXPECT_EQ(get["request_id"], id);
    EXPECT_EQ(get["path"], "/v1/things?user_key=<redacted>&page=2");
    EXPECT_EQ(get["status"], 200);
    EXPECT_EQ(get["cluster"], "east");
    EXPECT_EQ(get["endpoint"], rec.address());
    EXPECT_EQ(get["client"], "127.0.0.1");
    EXPECT_EQ(get["headers"]["user-agent"], "e2e");
    EXPECT_EQ(get["headers"]["user_key"], "<redacted>");
    EXPECT_EQ(get["headers"]["authorization"], "<redacted>");
    EXPECT_GE(get["upstream_ms"].get<double>(), 0.0);
    EXPECT_GE(get["duration_ms"].get<double>(), get["upstream_ms"].get<double>());
    EXPECT_EQ(post["bytes_in"], 5);
    EXPECT_EQ(post["bytes_out"], 2);
    const auto& bad = by_status.at(400);
    EXPECT_EQ(bad["path"], "/x?app_key=<redacted>");
    EXPECT_EQ(bad["cluster"], "");
    EXPECT_NE(bad["reason"].get<std::string>().find("Host"), std::string::npos) << bad;
    EXPECT_FALSE(bad["request_id"].get<std::string>().empty());
    // Credentials appear nowhere: not in the access log, not in the balancer's own log.
    lb->process->signal(SIGTERM);
    const std::string output = lb->early_output + lb->process->read_all(15s);
    std::string file;
    for (const auto& l : lines_of(log)) {
        file += l + "\n";
    }
    for (const auto& canary : {kCanaryQuery, kCanaryHeader}) {
        EXPECT_EQ(file.find(canary), std::string::npos) << canary << " in the access log";
        EXPECT_EQ(output.find(canary), std::string::npos) << canary << " in the balancer's log";
    }
}

TEST(AccessLog, ReopensOnSigusr1AndFollowsAReload) {
    Recorder rec;
    LogDir d;
    const fs::path log = d.dir / "access.log";
    auto lb = Balancer::start(yaml_for(rec, "accessLog: {path: " + log.string() + "}\n"));
    ASSERT_TRUE(lb);
    ASSERT_EQ(support::http_request(lb->port, "GET", "/one").status, 200U);
    ASSERT_EQ(wait_lines(log, 1).size(), 1U);
    // logrotate: the file is moved away, then SIGUSR1; the next lines go to a new file.
    fs::rename(log, d.dir / "access.log.1");
    lb->process->signal(SIGUSR1);
    ASSERT_TRUE(wait_until(
        [&] {
            support::http_request(lb->port, "GET", "/two");
            return fs::exists(log) && !lines_of(log).empty();
        },
        10s));
    EXPECT_EQ(lines_of(d.dir / "access.log.1").size(), 1U);
    EXPECT_NE(lines_of(log)[0].find("\"path\":\"/two\""), std::string::npos);
    // A reload reopens it too (logrotate's postrotate may reload instead).
    fs::rename(log, d.dir / "access.log.2");
    ASSERT_TRUE(lb->reload(yaml_for(rec, "accessLog: {path: " + log.string() + "}\n")));
    ASSERT_EQ(support::http_request(lb->port, "GET", "/after-reload").status, 200U);
    EXPECT_TRUE(wait_until(
        [&] {
            const auto lines = lines_of(log);
            return !lines.empty() && lines.back().find("/after-reload") != std::string::npos;
        },
        10s));
    // A reload naming a file that cannot be written is refused whole; the log stays.
    ASSERT_TRUE(lb->reload(yaml_for(rec, "accessLog: {path: /nonexistent/dir/x.log}\n")));
    const auto refused = lb->status()["config"]["last_reload"];
    EXPECT_EQ(refused["ok"], false);
    EXPECT_NE(refused["error"].get<std::string>().find("/nonexistent/dir/x.log"), std::string::npos)
        << refused;
    // A reload to another file, in the common format: the next lines go there.
    const fs::path other = d.dir / "other.log";
    ASSERT_TRUE(
        lb->reload(yaml_for(rec, "accessLog: {path: " + other.string() + ", format: common}\n")));
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
    ASSERT_EQ(support::http_request(lb->port, "GET", "/three?user_key=s").status, 200U);
    const auto lines = wait_lines(other, 1);
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines.back().find("\"GET /three?user_key=<redacted> HTTP/1.1\" 200 2"),
              std::string::npos)
        << lines.back();
}

TEST(AccessLog, SamplingKeepsEveryErrorAndTheShareOfTheRest) {
    Recorder rec;
    LogDir d;
    const fs::path log = d.dir / "access.log";
    auto lb = Balancer::start(
        "threads: 1\n" + support::cluster_yaml({{"east", rec.address()}}) +
        "healthCheck: {path: /__health, interval: 100ms, timeout: 80ms, rise: 1}\n" +
        "accessLog: {path: " + log.string() + ", sample: 10%}\n");
    ASSERT_TRUE(lb);
    for (int i = 0; i < 50; ++i) {
        ASSERT_EQ(support::http_request(lb->port, "GET", "/ok").status, 200U);
    }
    for (int i = 0; i < 3; ++i) {
        support::send_and_half_close(lb->port, "GET / HTTP/1.1\r\n\r\n");  // 400: no Host
    }
    ASSERT_TRUE(wait_until([&] { return lines_of(log).size() >= 8; }, 10s));
    std::size_t ok = 0;
    std::size_t refused = 0;
    for (const auto& l : lines_of(log)) {
        (nlohmann::json::parse(l)["status"] == 200 ? ok : refused) += 1;
    }
    EXPECT_EQ(ok, 5U);  // 1 in 10, evenly
    EXPECT_EQ(refused, 3U);
}

TEST(AccessLog, ASlowDiskDropsLinesInsteadOfStallingTheWorkers) {
    Recorder rec;
    LogDir d;
    // A FIFO nobody reads stands in for a disk that stopped: the writer thread blocks on it.
    const fs::path fifo = d.dir / "stuck.log";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // (opened, never read)
    ASSERT_GE(reader, 0);
    auto lb = Balancer::start(
        yaml_for(rec, "accessLog: {path: " + fifo.string() + ", bufferSize: 4KiB}\n"));
    ASSERT_TRUE(lb);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 1500; ++i) {
        ASSERT_EQ(support::http_request(lb->port, "GET", "/" + std::string(100, 'x')).status, 200U);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 30.0);  // (no request waited on the log)
    EXPECT_GT(lb->metric("tandem_lb_access_log_dropped_total"), 0.0);
    EXPECT_GT(lb->metric("tandem_lb_access_log_lines_total"), 0.0);
    // The reader catches up: the writer (and shutdown) goes on.
    char buf[65536];
    while (::read(reader, buf, sizeof buf) > 0) {
    }
    ::close(reader);
}

TEST(RequestId, KeptFromATrustedClientWhenWellFormedAndOnLocalAnswers) {
    Recorder rec;
    auto lb = Balancer::start(
        yaml_for(rec, "requestId: {header: X-Correlation-Id, trustIncoming: true}\n"));
    ASSERT_TRUE(lb);
    auto kept = support::http_request(lb->port, "GET", "/", "", {{"X-Correlation-Id", "abc-123"}});
    ASSERT_EQ(kept.status, 200U);
    EXPECT_EQ(kept.headers.at("x-correlation-id"), "abc-123");
    EXPECT_EQ(rec.requests().back().headers.at("x-correlation-id"), "abc-123");
    // Not well-formed: replaced (never passed on into a log or a header).
    auto replaced =
        support::http_request(lb->port, "GET", "/", "", {{"X-Correlation-Id", "a\"b{c}"}});
    ASSERT_EQ(replaced.status, 200U);
    EXPECT_NE(replaced.headers.at("x-correlation-id"), "a\"b{c}");
    EXPECT_EQ(rec.requests().back().headers.at("x-correlation-id"),
              replaced.headers.at("x-correlation-id"));
    // The balancer's own answers carry one too.
    const auto raw = support::send_and_half_close(lb->port, "GET / HTTP/1.1\r\n\r\n");
    EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0U);
    EXPECT_NE(raw.find("X-Correlation-Id: "), std::string::npos) << raw;
    // requestId: {enabled: false}: nothing added.
    ASSERT_TRUE(lb->reload(yaml_for(rec, "requestId: {enabled: false}\n")));
    auto none = support::http_request(lb->port, "GET", "/");
    EXPECT_FALSE(none.headers.contains("x-request-id"));
    EXPECT_FALSE(rec.requests().back().headers.contains("x-request-id"));
}

}  // namespace
