#include "support/dns_server.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace support {

FakeDnsServer::FakeDnsServer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("FakeDnsServer: cannot bind");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
}

FakeDnsServer::~FakeDnsServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
}

void FakeDnsServer::set(const std::string& name, std::vector<std::string> ipv4, std::uint32_t ttl) {
    std::lock_guard lock(mutex_);
    records_[name] = Record{std::move(ipv4), ttl};
}

void FakeDnsServer::remove(const std::string& name) {
    std::lock_guard lock(mutex_);
    records_.erase(name);
}

std::size_t FakeDnsServer::queries(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = queries_.find(name);
    return it == queries_.end() ? 0 : it->second;
}

void FakeDnsServer::serve() {
    std::vector<unsigned char> in(1500);
    while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) {
            continue;
        }
        sockaddr_in from{};
        socklen_t from_len = sizeof from;
        const auto n =
            ::recvfrom(fd_, in.data(), in.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n < 12) {
            continue;
        }
        const auto size = static_cast<std::size_t>(n);
        // Question: labels, then type and class.
        std::size_t pos = 12;
        std::string name;
        while (pos < size && in[pos] != 0) {
            const std::size_t len = in[pos];
            if (len > 63 || pos + 1 + len > size) {
                pos = size;
                break;
            }
            if (!name.empty()) {
                name += '.';
            }
            for (std::size_t i = 0; i < len; ++i) {
                name += static_cast<char>(std::tolower(in[pos + 1 + i]));
            }
            pos += 1 + len;
        }
        if (pos + 5 > size) {
            continue;
        }
        const std::size_t question_end = pos + 5;
        const unsigned qtype = static_cast<unsigned>(in[pos + 1] << 8 | in[pos + 2]);
        std::vector<unsigned char> out(in.begin(), in.begin() + static_cast<long>(question_end));
        out[2] = static_cast<unsigned char>(0x84 | (in[2] & 0x01));  // QR, AA, RD copied
        out[3] = 0x80;                                               // RA, NOERROR
        out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;   // an/ns/ar counts
        Record record;
        bool known = false;
        {
            std::lock_guard lock(mutex_);
            auto it = records_.find(name);
            known = it != records_.end();
            if (known) {
                record = it->second;
            }
            if (qtype == 1) {
                ++queries_[name];
            }
        }
        if (!known) {
            out[3] = 0x83;  // NXDOMAIN
        } else if (qtype == 1) {
            std::uint16_t count = 0;
            for (const auto& ip : record.ipv4) {
                in_addr a{};
                if (::inet_pton(AF_INET, ip.c_str(), &a) != 1) {
                    continue;
                }
                const unsigned char rr[] = {0xC0,
                                            0x0C,
                                            0,
                                            1,
                                            0,
                                            1,
                                            static_cast<unsigned char>(record.ttl >> 24),
                                            static_cast<unsigned char>(record.ttl >> 16),
                                            static_cast<unsigned char>(record.ttl >> 8),
                                            static_cast<unsigned char>(record.ttl),
                                            0,
                                            4};
                out.insert(out.end(), std::begin(rr), std::end(rr));
                const auto* bytes = reinterpret_cast<const unsigned char*>(&a.s_addr);
                out.insert(out.end(), bytes, bytes + 4);
                ++count;
            }
            out[6] = static_cast<unsigned char>(count >> 8);
            out[7] = static_cast<unsigned char>(count);
        }
        ::sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    }
}

}  // namespace support
