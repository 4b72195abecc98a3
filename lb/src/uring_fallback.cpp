#include "uring_fallback.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include <liburing.h>
#include <unistd.h>

namespace lb {

namespace {

// What Asio's io_uring service asks for (boost/asio/detail/io_uring_service.hpp: ring_size).
constexpr unsigned kAsioRingEntries = 16384;

// Why io_uring cannot be used here, or empty when it can.
std::string io_uring_refusal() {
    if (const char* forced = std::getenv("TANDEM_LB_EPOLL"); forced != nullptr && *forced == '1') {
        return "TANDEM_LB_EPOLL=1";
    }
    io_uring ring{};
    const int r = ::io_uring_queue_init(kAsioRingEntries, &ring, 0);
    if (r < 0) {
        return std::string("io_uring_setup: ") + std::strerror(-r);
    }
    ::io_uring_queue_exit(&ring);
    return {};
}

}  // namespace

void use_io_uring_or_epoll_build(char** argv) {
    const std::string why = io_uring_refusal();
    if (why.empty()) {
        return;
    }
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const auto epoll_build = self.parent_path() / "tandem-lb";
    if (ec || ::access(epoll_build.c_str(), X_OK) != 0) {
        std::cerr << "tandem-lb-uring: io_uring is not available (" << why
                  << ") and there is no epoll build at " << epoll_build.string()
                  << ": install tandem-lb next to it, or run tandem-lb\n";
        std::exit(1);
    }
    std::cerr << "tandem-lb-uring: io_uring is not available (" << why << "): running "
              << epoll_build.string() << " (epoll)\n";
    ::execv(epoll_build.c_str(), argv);
    std::cerr << "tandem-lb-uring: cannot run " << epoll_build.string() << ": "
              << std::strerror(errno) << "\n";
    std::exit(1);
}

}  // namespace lb
