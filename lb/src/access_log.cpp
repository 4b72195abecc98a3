#include "access_log.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "lb/config.hpp"

namespace lb {

AccessLogSink::AccessLogSink(std::size_t capacity, std::function<void()> wake)
    : capacity_(capacity), wake_(std::move(wake)) {
    buffer_.reserve(capacity / 2);
}

bool AccessLogSink::append(std::string_view line) {
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (buffer_.size() + line.size() > capacity_) {
            return false;
        }
        buffer_.append(line);
        if (!woken_ && buffer_.size() > capacity_ / 2) {
            woken_ = wake = true;
        }
    }
    if (wake) {
        wake_();  // (once per fill: a futex wake, not one per line)
    }
    return true;
}

void AccessLogSink::take(std::string& into) {
    into.clear();
    std::lock_guard lock(mutex_);
    buffer_.swap(into);
    woken_ = false;
}

AccessLogWriter::AccessLogWriter(std::function<void(const std::string&)> on_write_error)
    : on_write_error_(std::move(on_write_error)), thread_([this] { run(); }) {}

AccessLogWriter::~AccessLogWriter() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
    for (const int fd : {fd_, next_fd_}) {
        if (fd > STDERR_FILENO) {
            ::close(fd);
        }
    }
}

std::expected<int, std::string> AccessLogWriter::open_fd(const std::string& path) {
    if (path == "stdout") {
        return STDOUT_FILENO;
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        return std::unexpected("cannot open the access log " + path + ": " + std::strerror(errno));
    }
    return fd;
}

void AccessLogWriter::set_fd(int fd) {
    std::lock_guard lock(mutex_);
    if (next_fd_ > STDERR_FILENO) {
        ::close(next_fd_);  // (opened twice before the writer came round)
    }
    next_fd_ = fd;
}

std::expected<void, std::string> AccessLogWriter::open(const std::string& path) {
    if (path == path_) {
        return {};
    }
    auto fd = open_fd(path);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    set_fd(*fd);
    path_ = path;
    return {};
}

std::expected<void, std::string> AccessLogWriter::reopen() {
    if (path_.empty() || path_ == "stdout") {
        return {};
    }
    auto fd = open_fd(path_);
    if (!fd) {
        return std::unexpected(fd.error());
    }
    set_fd(*fd);
    return {};
}

std::shared_ptr<AccessLogSink> AccessLogWriter::sink(std::size_t capacity) {
    auto s = std::make_shared<AccessLogSink>(capacity, [this] {
        {
            std::lock_guard lock(mutex_);
            woken_ = true;
        }
        wake_.notify_one();
    });
    std::lock_guard lock(mutex_);
    sinks_.push_back(s);
    return s;
}

void AccessLogWriter::run() {
    for (;;) {
        bool stopping = false;
        {
            std::unique_lock lock(mutex_);
            wake_.wait_for(lock, kFlushEvery, [this] { return woken_ || stop_; });
            woken_ = false;
            stopping = stop_;
        }
        flush();
        if (stopping) {
            return;
        }
    }
}

// Every sink's lines to the file: the new one when open() or reopen() gave one since the last
// flush (the old one is closed first: what it received was written whole).
void AccessLogWriter::flush() {
    std::vector<std::shared_ptr<AccessLogSink>> sinks;
    {
        std::lock_guard lock(mutex_);
        if (next_fd_ >= 0) {
            if (fd_ > STDERR_FILENO) {
                ::close(fd_);
            }
            fd_ = std::exchange(next_fd_, -1);
        }
        sinks = sinks_;
        std::erase_if(sinks_, [](const auto& s) { return s->closed(); });
    }
    for (const auto& s : sinks) {
        s->take(scratch_);
        const char* p = scratch_.data();
        std::size_t left = scratch_.size();
        while (left > 0 && fd_ >= 0) {
            const ssize_t n = ::write(fd_, p, left);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                on_write_error_(std::strerror(errno));
                break;  // these lines are lost; the next flush tries again
            }
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    }
}

std::expected<void, std::string> check_access_log(const LbConfig& config) {
    const auto& path = config.access_log.path;
    if (!config.access_log.enabled || path == "stdout") {
        return {};
    }
    const std::filesystem::path file(path);
    std::error_code ec;
    const bool exists = std::filesystem::exists(file, ec);
    const std::filesystem::path probe = exists ? file : file.parent_path();
    if (std::filesystem::is_directory(file, ec) ||
        ::access(probe.empty() ? "." : probe.c_str(), W_OK) != 0) {
        return std::unexpected(
            "cannot write the access log " + path + ": " +
            (std::filesystem::is_directory(file, ec) ? std::string("it is a directory")
                                                     : std::string(std::strerror(errno))) +
            (exists ? "" : " (the file would be created in " + probe.string() + ")"));
    }
    return {};
}

}  // namespace lb
