#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace support {

// A child process with its stdout on a pipe (stderr inherited), for e2e tests. Waits are bounded.
class ChildProcess {
public:
    // merge_stderr: the child's stderr goes to the same pipe as its stdout.
    ChildProcess(std::vector<std::string> argv,
                 std::map<std::string, std::string> extra_env = {},
                 bool merge_stderr = false);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // The next line of stdout, or nullopt on EOF or when the deadline passes.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    // Everything until EOF (or the deadline).
    std::string read_all(std::chrono::milliseconds timeout);
    void signal(int sig) const;
    // The exit code (or 128+signal), or nullopt if still running at the deadline.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int stdout_fd_ = -1;
    int pidfd_ = -1;
    std::string pending_;
    std::optional<int> status_;
};

}  // namespace support
