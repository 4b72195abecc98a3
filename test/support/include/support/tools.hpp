#pragma once

// Debian's command-line clients as the e2e tests run them (curl, nghttp, h2load).

#include <chrono>
#include <string>
#include <vector>

namespace support {

// A command of /usr/bin (argv[0] is its name): its standard output and error, waited for at
// most `timeout`.
std::string run_tool(std::vector<std::string> argv,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

// How many of h2load's requests succeeded, failed and errored ("requests: N total, ...");
// -1 each when the line is missing.
struct H2loadResult {
    long total = -1;
    long succeeded = -1;
    long failed = -1;
    long errored = -1;
};
H2loadResult h2load_result(const std::string& out);

}  // namespace support
