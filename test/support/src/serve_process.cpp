#include "support/serve_process.hpp"

#include <csignal>

#include <gtest/gtest.h>

#include "support/http.hpp"

namespace support {

using namespace std::chrono_literals;
using Json = nlohmann::json;

std::unique_ptr<Serve> Serve::start(SimFleet& fleet, const std::string& file, bool merge_stderr) {
    auto s = std::make_unique<Serve>();
    s->process = std::make_unique<ChildProcess>(
        std::vector<std::string>{TANDEM_PATH, "serve", "-f", (fleet.dir() / file).string()},
        fleet.env(), merge_stderr);
    auto line = s->process->read_line(30s);
    while (merge_stderr && line && line->find("tandem serve ready listen=") == std::string::npos) {
        line = s->process->read_line(30s);  // (log lines before it)
    }
    if (!line || line->find("tandem serve ready listen=") == std::string::npos) {
        ADD_FAILURE() << "tandem serve did not start: " << line.value_or("<nothing>");
        return nullptr;
    }
    const auto at = line->find("listen=") + 7;
    const auto hp = line->substr(at, line->find(' ', at) - at);
    s->port = static_cast<std::uint16_t>(std::stoi(hp.substr(hp.rfind(':') + 1)));
    return s;
}

Json Serve::status() const {
    const auto r = http_request(port, "GET", "/status", "", {}, 5s);
    return r.status == 200 ? Json::parse(r.body) : Json();
}

Json Serve::instance(const std::string& name) const {
    const auto s = status();
    for (const auto& i : s["instances"]) {
        if (i["name"] == name) {
            return i;
        }
    }
    return {};
}

double Serve::metric(const std::string& prefix) const {
    return metric_sum(http_request(port, "GET", "/metrics", "", {}, 5s).body, prefix);
}

int Serve::passes(const std::string& name) const {
    const auto i = instance(name);
    return i.is_null() ? 0 : i["passes"].get<int>();
}

std::optional<int> Serve::stop() {
    process->signal(SIGTERM);
    return process->wait(30s);
}

}  // namespace support
