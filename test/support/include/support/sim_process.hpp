#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/http.hpp"

namespace support {

// threescale-sim started as a real process on 127.0.0.1:0, ready when its one status line is out.
class SimProcess {
public:
    explicit SimProcess(std::vector<std::string> args = {},
                        std::map<std::string, std::string> env = {});
    ~SimProcess();

    std::uint16_t admin_port() const { return admin_port_; }
    std::uint16_t gateway_port() const { return gateway_port_; }
    ChildProcess& process() { return *process_; }
    const std::string& token() const { return token_; }

    // Admin API call authenticated with the token (HTTP Basic).
    HttpReply admin(const std::string& method,
                    const std::string& target,
                    const std::string& body = "",
                    const std::string& content_type = "application/x-www-form-urlencoded");
    HttpReply control(const std::string& method,
                      const std::string& path,
                      const std::string& json_body = "");

    static std::string binary();

private:
    std::string token_ = "sim-e2e-token";
    std::unique_ptr<ChildProcess> process_;
    std::uint16_t admin_port_ = 0;
    std::uint16_t gateway_port_ = 0;
};

}  // namespace support
