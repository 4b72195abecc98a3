// Debian's command-line clients as the e2e tests run them (support/tools.hpp).
#include "support/tools.hpp"

#include <regex>

#include "support/child_process.hpp"

namespace support {

using namespace std::chrono_literals;

std::string run_tool(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
    argv[0] = "/usr/bin/" + argv[0];
    ChildProcess p(std::move(argv), {}, true);
    auto out = p.read_all(timeout);
    p.wait(5s);
    return out;
}

H2loadResult h2load_result(const std::string& out) {
    H2loadResult r;
    std::smatch m;
    static const std::regex kLine(
        R"(requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored)");
    if (std::regex_search(out, m, kLine)) {
        r.total = std::stol(m[1]);
        r.succeeded = std::stol(m[2]);
        r.failed = std::stol(m[3]);
        r.errored = std::stol(m[4]);
    }
    return r;
}

}  // namespace support
