#include "support/sim_process.hpp"

#include <algorithm>
#include <regex>
#include <stdexcept>

#include <signal.h>

namespace support {

std::string SimProcess::binary() {
    return THREESCALE_SIM_PATH;
}

SimProcess::SimProcess(std::vector<std::string> args, std::map<std::string, std::string> env) {
    std::vector<std::string> argv = {binary()};
    if (std::find(args.begin(), args.end(), "--admin-port") == args.end()) {
        argv.insert(argv.end(), {"--admin-port", "0", "--gateway-port", "0"});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    env.try_emplace("TANDEM_SIM_TOKEN", token_);
    if (env["TANDEM_SIM_TOKEN"] != token_) {
        token_ = env["TANDEM_SIM_TOKEN"];
    }
    process_ = std::make_unique<ChildProcess>(argv, env);
    // Readiness: the one line printed once both listeners are bound.
    const auto line = process_->read_line(std::chrono::seconds(20));
    static const std::regex kLine(R"(admin=http://[^ ]+:(\d+) gateway=http://[^ ]+:(\d+))");
    std::smatch m;
    if (!line || !std::regex_search(*line, m, kLine)) {
        throw std::runtime_error(
            "threescale-sim did not report its ports (got: " + line.value_or("<nothing>") + ")");
    }
    admin_port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
    gateway_port_ = static_cast<std::uint16_t>(std::stoi(m[2].str()));
}

SimProcess::~SimProcess() {
    process_->signal(SIGTERM);
    process_->wait(std::chrono::seconds(10));
}

HttpReply SimProcess::admin(const std::string& method,
                            const std::string& target,
                            const std::string& body,
                            const std::string& content_type) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Authorization", basic_auth(token_, "")}};
    if (!body.empty()) {
        headers.emplace_back("Content-Type", content_type);
    }
    return http_request(admin_port_, method, target, body, headers);
}

HttpReply SimProcess::control(const std::string& method,
                              const std::string& path,
                              const std::string& json_body) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!json_body.empty()) {
        headers.emplace_back("Content-Type", "application/json");
    }
    return http_request(admin_port_, method, path, json_body, headers);
}

}  // namespace support
