#include "support/anchors.hpp"

#include <cstring>
#include <fstream>
#include <iostream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "support/wait.hpp"

namespace support {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A TCP port free now on 127.0.0.1 (HAProxy and nginx cannot report a port 0 they bound; the
// window before they bind it is a few milliseconds).
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    std::uint16_t port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        ::close(fd);
    }
    return port;
}

std::string haproxy_config(const fs::path& dir,
                           const std::string& listen,
                           const std::string& upstream,
                           const AnchorProxy::Options& o) {
    return "global\n"
           "    maxconn 4000\n"
           "    pidfile " +
           (dir / "haproxy.pid").string() +
           "\n"
           "defaults\n"
           "    mode " +
           (o.l4 ? "tcp" : "http") + "\n" + (o.l4 ? "" : "    option http-keep-alive\n") +
           "    timeout connect 2s\n"
           "    timeout client 10s\n"
           "    timeout server 10s\n"
           "    timeout http-request 10s\n"
           "frontend fe\n"
           "    bind " +
           listen + " " + o.bind_options + "\n" + o.extra +
           "    default_backend be\n"
           "backend be\n"
           "    server upstream " +
           upstream + " " + o.server_options + "\n";
}

std::string nginx_config(const fs::path& dir,
                         const std::string& listen,
                         const std::string& upstream,
                         const AnchorProxy::Options& o) {
    const std::string d = dir.string();
    return std::string(::geteuid() == 0 ? "user root;\n" : "") +
           "worker_processes 1;\n"
           "daemon off;\n"
           "pid " +
           d +
           "/nginx.pid;\n"
           "error_log " +
           d +
           "/error.log warn;\n"
           "events { worker_connections 1024; }\n"
           "http {\n"
           "    access_log off;\n"
           "    client_body_temp_path " +
           d +
           "/body;\n"
           "    proxy_temp_path " +
           d +
           "/proxy;\n"
           "    fastcgi_temp_path " +
           d +
           "/fastcgi;\n"
           "    uwsgi_temp_path " +
           d +
           "/uwsgi;\n"
           "    scgi_temp_path " +
           d +
           "/scgi;\n"
           "    server {\n"
           "        listen " +
           listen + " " + o.bind_options + ";\n" + "        location / {\n" + o.extra +
           "            proxy_pass http://" + upstream +
           ";\n"
           "            proxy_http_version 1.1;\n"
           "            proxy_set_header Connection \"\";\n"
           "            proxy_set_header Host $http_host;\n"
           "            proxy_ignore_client_abort on;\n"
           "        }\n"
           "    }\n"
           "}\n";
}

int connect_to(const fs::path& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        return fd;
    }
    if (fd >= 0) {
        ::close(fd);
    }
    return -1;
}

int connect_to(std::uint16_t port, const char* source = nullptr) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && source != nullptr) {
        sockaddr_in from{};
        from.sin_family = AF_INET;
        ::inet_pton(AF_INET, source, &from.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
            ::close(fd);
            return -1;
        }
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        return fd;
    }
    if (fd >= 0) {
        ::close(fd);
    }
    return -1;
}

std::string exchange_on(int fd, const std::string& bytes, std::chrono::milliseconds timeout) {
    std::string out;
    if (fd < 0) {
        return out;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t off = 0;
    while (off < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            break;  // the peer refused the rest: what it answered is still readable
        }
        off += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            break;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            break;
        }
        char buf[8192];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

}  // namespace

std::unique_ptr<AnchorProxy> AnchorProxy::start(Kind kind,
                                                const std::string& upstream,
                                                const Options& options) {
    auto p = std::make_unique<AnchorProxy>();
    p->kind = kind;
    char tmpl[] = "/tmp/tandem-anchor-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        return nullptr;
    }
    p->dir = tmpl;
    p->socket = p->dir / "proxy.sock";
    std::string listen;
    if (options.tcp) {
        p->port = free_port();
        listen = "127.0.0.1:" + std::to_string(p->port);
    } else {
        listen = (kind == Kind::kHaproxy ? "unix@" : "unix:") + p->socket.string();
    }
    std::vector<std::string> argv;
    if (kind == Kind::kHaproxy) {
        const fs::path cfg = p->dir / "haproxy.cfg";
        std::ofstream(cfg) << haproxy_config(p->dir, listen, upstream, options);
        argv = {"/usr/sbin/haproxy", "-db", "-f", cfg.string()};
    } else {
        const fs::path cfg = p->dir / "nginx.conf";
        std::ofstream(cfg) << nginx_config(p->dir, listen, upstream, options);
        argv = {"/usr/sbin/nginx", "-c", cfg.string(), "-p", p->dir.string() + "/"};
    }
    if (!fs::exists(argv[0])) {
        std::cerr << argv[0] << " is missing: run scripts/install-deps.sh\n";
        return nullptr;
    }
    p->process = std::make_unique<ChildProcess>(argv);
    const bool ready = wait_until(
        [&] {
            const int fd = options.tcp ? connect_to(p->port) : connect_to(p->socket);
            if (fd >= 0) {
                ::close(fd);
            }
            return fd >= 0;
        },
        10s);
    if (!ready) {
        std::cerr << p->name() << " did not come up (config in " << p->dir << ")\n";
        return nullptr;
    }
    return p;
}

AnchorProxy::~AnchorProxy() {
    if (process) {
        process->signal(SIGTERM);
        if (!process->wait(5s)) {
            process->signal(SIGKILL);
            process->wait(5s);
        }
    }
    std::error_code ignored;
    fs::remove_all(dir, ignored);
}

std::string send_and_half_close(std::uint16_t port,
                                const std::string& bytes,
                                std::chrono::milliseconds timeout) {
    return exchange_on(connect_to(port), bytes, timeout);
}

std::string send_and_half_close_from(const char* source,
                                     std::uint16_t port,
                                     const std::string& bytes,
                                     std::chrono::milliseconds timeout) {
    return exchange_on(connect_to(port, source), bytes, timeout);
}

std::string send_and_half_close(const fs::path& unix_socket,
                                const std::string& bytes,
                                std::chrono::milliseconds timeout) {
    return exchange_on(connect_to(unix_socket), bytes, timeout);
}

}  // namespace support
