#include "support/recorder.hpp"

#include <cctype>
#include <stdexcept>

#include <arpa/inet.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace support {

namespace http = boost::beast::http;

Recorder::Recorder() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 128) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        throw std::runtime_error("recorder: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

Recorder::~Recorder() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    {
        std::lock_guard lock(mutex_);
        for (const int fd : fds_) {
            ::shutdown(fd, SHUT_RDWR);  // wakes the sessions' reads
        }
    }
    for (auto& t : threads_) {
        t.join();
    }
    ::close(listen_fd_);
}

void Recorder::set_response(const std::string& name, std::string raw) {
    std::lock_guard lock(mutex_);
    responses_[name] = std::move(raw);
}

void Recorder::clear() {
    std::lock_guard lock(mutex_);
    requests_.clear();
    garbage_ = 0;
}

std::vector<Recorder::Request> Recorder::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

std::size_t Recorder::garbage() const {
    std::lock_guard lock(mutex_);
    return garbage_;
}

void Recorder::accept_loop() {
    while (!stop_) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (stop_) {
                return;
            }
            continue;
        }
        std::lock_guard lock(mutex_);
        fds_.push_back(fd);
        threads_.emplace_back([this, fd] { serve(fd); });
    }
}

namespace {

bool send_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

void Recorder::serve(int fd) {
    timeval tv{10, 0};  // a bound on every read: a proxy that holds a connection idle
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string pending;
    bool open = true;
    while (open && !stop_) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(1024 * 1024);
        parser.eager(true);
        boost::system::error_code ec;
        bool done = false;
        bool got_bytes = !pending.empty();
        while (!done) {
            if (!pending.empty()) {
                const std::size_t used = parser.put(boost::asio::buffer(pending), ec);
                pending.erase(0, used);
                if (ec == http::error::need_more) {
                    ec = {};
                } else if (ec) {
                    break;
                }
                if (parser.is_done()) {
                    done = true;
                    break;
                }
                if (used > 0 && !pending.empty()) {
                    continue;
                }
            }
            char buf[16384];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                if (parser.got_some() && !parser.is_done()) {
                    parser.put_eof(ec);
                    done = !ec && parser.is_done();
                }
                open = false;
                break;
            }
            got_bytes = true;
            pending.append(buf, static_cast<std::size_t>(n));
        }
        if (!done) {
            if (ec || (got_bytes && parser.got_some())) {
                std::lock_guard lock(mutex_);
                ++garbage_;
            }
            break;
        }
        const auto& req = parser.get();
        const std::string target(req.target());
        std::string raw_answer;
        if (target != "/__health") {
            Request r;
            r.method = std::string(req.method_string());
            r.target = target;
            r.host = std::string(req[http::field::host]);
            r.body = req.body();
            for (const auto& f : req) {
                std::string name(f.name_string());
                for (auto& c : name) {
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                }
                auto& v = r.headers[name];
                v += (v.empty() ? "" : ", ") + std::string(f.value());
            }
            std::lock_guard lock(mutex_);
            requests_.push_back(std::move(r));
            if (target.rfind("/respond/", 0) == 0) {
                const auto it = responses_.find(target.substr(9));
                raw_answer = it == responses_.end() ? std::string() : it->second;
            }
        }
        if (!raw_answer.empty()) {
            send_all(fd, raw_answer);
            break;
        }
        const bool keep = req.keep_alive();
        open = send_all(fd, std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n") +
                                (keep ? "" : "Connection: close\r\n") + "\r\nok") &&
               keep && open;
    }
    ::shutdown(fd, SHUT_RDWR);
    std::lock_guard lock(mutex_);
    std::erase(fds_, fd);
    ::close(fd);
}

}  // namespace support
