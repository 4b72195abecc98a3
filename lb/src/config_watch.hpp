#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "lb/config.hpp"

namespace lb {

// What the watcher compares: the configuration file and every file it names (certificates,
// keys, CA bundles), each by a hash of its content (a Kubernetes volume swaps a symlink; an
// editor may keep the inode). A file that cannot be read hashes as such, so its return is a
// change too.
std::vector<std::string> watched_files(const std::string& config_path, const LbConfig& c);
using FileHashes = std::vector<std::pair<std::string, std::size_t>>;
FileHashes hash_files(const std::vector<std::string>& paths);
// The files of `now` that differ from `before` (added, removed or changed), comma-separated.
std::string changed_files(const FileHashes& before, const FileHashes& now);

// reload.watchInterval: every interval, the configuration file and the certificates, keys and
// CA bundles it names are compared with what was last read; a difference calls `on_change`
// with the files that changed (awaited: no look while a reload runs). With the watch off it
// still wakes each second, so a reload can turn it on.
class ConfigWatch {
public:
    using OnChange = std::function<boost::asio::awaitable<void>(std::string changed)>;

    ConfigWatch(boost::asio::io_context& ctx, std::string config_path, OnChange on_change);

    // The files as `c` names them, read now, are what later looks compare with (at startup, when
    // a reload reads the file, and once it applied the new one).
    void read(const LbConfig& c);
    // How often to look (0: off); a reload changes it.
    void set_interval(std::chrono::milliseconds every) { interval_ = every; }
    // Skip looks while true (a reload from SIGHUP is running).
    void pause(bool paused) { paused_ = paused; }
    void start();
    void stop();

private:
    boost::asio::awaitable<void> loop();

    boost::asio::steady_timer timer_;
    std::string config_path_;
    OnChange on_change_;
    std::vector<std::string> paths_;
    FileHashes read_;
    std::chrono::milliseconds interval_{0};
    bool paused_ = false;
    bool stopped_ = false;
};

}  // namespace lb
