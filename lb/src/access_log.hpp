#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace lb {

// A worker's share of the access log: a bounded buffer it appends formatted lines to, never
// waiting for the file; the writer thread empties it. A line that does not fit is dropped (the
// worker counts it).
class AccessLogSink {
public:
    AccessLogSink(std::size_t capacity, std::function<void()> wake);
    // Appends `line` whole, or nothing (false) when the buffer has no room for it.
    bool append(std::string_view line);
    // (the writer) What was appended since the last take, swapped into `into` (emptied first).
    void take(std::string& into);
    // The worker is gone: the writer takes what is left and forgets the sink.
    void close() { closed_.store(true, std::memory_order_release); }
    [[nodiscard]] bool closed() const { return closed_.load(std::memory_order_acquire); }

private:
    std::mutex mutex_;  // held for a memcpy by the worker, for a swap by the writer
    std::string buffer_;
    const std::size_t capacity_;
    bool woken_ = false;  // the writer was asked to come early (half full) since its last take
    std::function<void()> wake_;
    std::atomic<bool> closed_{false};
};

// The process's access log file and the thread that writes it: every kFlushEvery (or sooner,
// when a worker's buffer is half full) it takes each worker's lines and writes them with one
// write() per worker. Opening happens on the caller's thread, so a path that cannot be opened
// is an error for startup or the reload that names it; the writer switches to the new file
// between writes. Survives configuration generations; destroyed last, after a final flush.
class AccessLogWriter {
public:
    static constexpr auto kFlushEvery = std::chrono::milliseconds(200);

    // `on_write_error`: a write to the file failed (counted and logged by the caller).
    explicit AccessLogWriter(std::function<void(const std::string&)> on_write_error);
    ~AccessLogWriter();
    AccessLogWriter(const AccessLogWriter&) = delete;
    AccessLogWriter& operator=(const AccessLogWriter&) = delete;

    // Writes to `path` from now on ("stdout": standard output; a file is created with mode
    // 0640 and appended to). The same path as now: nothing (reopen() reopens it).
    std::expected<void, std::string> open(const std::string& path);
    // Opens the current path again (logrotate moved the file away: SIGUSR1).
    std::expected<void, std::string> reopen();
    [[nodiscard]] const std::string& path() const { return path_; }
    // A buffer for one worker (any thread may create one; the worker owns its end).
    std::shared_ptr<AccessLogSink> sink(std::size_t capacity);

private:
    void run();
    void flush();
    static std::expected<int, std::string> open_fd(const std::string& path);
    void set_fd(int fd);

    std::function<void(const std::string&)> on_write_error_;
    std::string path_;  // (the main context's)
    std::mutex mutex_;
    std::condition_variable wake_;
    bool woken_ = false;
    bool stop_ = false;
    int fd_ = -1;       // the writer's: replaced under mutex_, closed by the writer
    int next_fd_ = -1;  // opened by open()/reopen(), taken by the writer at its next flush
    std::vector<std::shared_ptr<AccessLogSink>> sinks_;
    std::string scratch_;  // (the writer's)
    std::thread thread_;
};

}  // namespace lb
