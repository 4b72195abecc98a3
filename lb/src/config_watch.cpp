// reload.watchInterval: the configuration file and the files it names, compared by content.
#include "config_watch.hpp"

#include <algorithm>
#include <fstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace lb {

namespace asio = boost::asio;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

std::vector<std::string> watched_files(const std::string& config_path, const LbConfig& c) {
    std::vector<std::string> paths{config_path};
    if (c.https.enabled) {
        paths.push_back(c.https.cert_file);
        paths.push_back(c.https.key_file);
    }
    for (const auto& cl : c.clusters) {
        for (const auto* f : {&cl.tls.ca_file, &cl.tls.cert_file, &cl.tls.key_file}) {
            if (*f) {
                paths.push_back(**f);
            }
        }
    }
    return paths;
}

FileHashes hash_files(const std::vector<std::string>& paths) {
    constexpr std::streamsize kMaxBytes = 16 * 1024 * 1024;  // far beyond any PEM or YAML here
    FileHashes out;
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        std::string content(in ? "" : "\x01unreadable");
        if (in) {
            char chunk[8192];
            while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
                content.append(chunk, static_cast<std::size_t>(in.gcount()));
                if (static_cast<std::streamsize>(content.size()) > kMaxBytes) {
                    break;
                }
            }
        }
        out.emplace_back(path, std::hash<std::string>{}(content));
    }
    return out;
}

std::string changed_files(const FileHashes& before, const FileHashes& now) {
    std::string out;
    for (const auto& [path, hash] : now) {
        const auto it = std::find_if(before.begin(), before.end(),
                                     [&](const auto& b) { return b.first == path; });
        if (it == before.end() || it->second != hash) {
            out += (out.empty() ? "" : ", ") + path;
        }
    }
    for (const auto& [path, hash] : before) {
        if (std::none_of(now.begin(), now.end(), [&](const auto& n) { return n.first == path; })) {
            out += (out.empty() ? "" : ", ") + path;
        }
    }
    return out;
}

ConfigWatch::ConfigWatch(asio::io_context& ctx, std::string config_path, OnChange on_change)
    : timer_(ctx), config_path_(std::move(config_path)), on_change_(std::move(on_change)) {}

void ConfigWatch::read(const LbConfig& c) {
    paths_ = watched_files(config_path_, c);
    read_ = hash_files(paths_);
}

void ConfigWatch::start() {
    asio::co_spawn(timer_.get_executor(), loop(), asio::detached);
}

void ConfigWatch::stop() {
    stopped_ = true;
    timer_.cancel();
}

asio::awaitable<void> ConfigWatch::loop() {
    while (!stopped_) {
        timer_.expires_after(interval_.count() > 0 ? interval_ : std::chrono::seconds(1));
        auto [ec] = co_await timer_.async_wait(kNoThrow);
        if (ec || stopped_) {
            co_return;
        }
        if (interval_.count() == 0 || paused_) {
            continue;
        }
        if (const auto now = hash_files(paths_); now != read_) {
            co_await on_change_("changed: " + changed_files(read_, now));
        }
    }
}

}  // namespace lb
