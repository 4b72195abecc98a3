// The balancer's listening sockets: binding, SO_REUSEPORT groups that follow the number of
// workers across reloads, and the classic BPF program that steers new connections away from the
// sockets being given up.
#include "listeners.hpp"

#include <cerrno>
#include <cstring>

#include <linux/filter.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint_label.hpp"
#include "log.hpp"

namespace lb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// open, SO_REUSEADDR (and SO_REUSEPORT for the workers' sockets), bind; listen() comes once
// every socket a configuration needs is bound.
error_code open_listener(tcp::acceptor& a, const tcp::endpoint& ep, bool reuse_port) {
    error_code ec;
    a.open(ep.protocol(), ec);
    if (!ec) {
        a.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec && reuse_port) {
        a.set_option(ReusePort(true), ec);
    }
    if (!ec) {
        a.bind(ep, ec);
    }
    return ec;
}

void close_fds(std::vector<int>& fds) {
    for (const auto fd : fds) {
        ::close(fd);
    }
    fds.clear();
}

// New connections only to the first `fds.size()` sockets of the group (the kernel lists a
// group's sockets in the order they began listening, and only the last ones are given up), by
// the packet's flow hash, or where the NIC gave none, by the client's port.
void steer_group(const ListenGroup& g, bool on) {
    if (g.fds.empty()) {
        return;
    }
    if (!on) {
        const int unused = 0;
        ::setsockopt(g.fds[0], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof unused);
        return;
    }
    const auto n = static_cast<std::uint32_t>(g.fds.size());
    const auto at = [](int offset) { return static_cast<std::uint32_t>(offset); };
    sock_filter code[] = {
        /* 0 */ {BPF_LD | BPF_W | BPF_ABS, 0, 0, at(SKF_AD_OFF + SKF_AD_RXHASH)},
        /* 1 */ {BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 0},  // no flow hash: 4
        /* 2 */ {BPF_ALU | BPF_MOD | BPF_K, 0, 0, n},
        /* 3 */ {BPF_RET | BPF_A, 0, 0, 0},
        /* 4 */ {BPF_LD | BPF_B | BPF_ABS, 0, 0, at(SKF_NET_OFF)},  // IP version, IHL
        /* 5 */ {BPF_ALU | BPF_RSH | BPF_K, 0, 0, 4},
        /* 6 */ {BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 6},                // IPv6: 10
        /* 7 */ {BPF_LDX | BPF_B | BPF_MSH, 0, 0, at(SKF_NET_OFF)},  // X = IPv4 header length
        /* 8 */ {BPF_LD | BPF_H | BPF_IND, 0, 0, at(SKF_NET_OFF)},   // the TCP source port
        /* 9 */ {BPF_JMP | BPF_JA, 0, 0, 1},
        /* 10 */ {BPF_LD | BPF_H | BPF_ABS, 0, 0, at(SKF_NET_OFF + 40)},  // IPv6 source port
        // Mixed (Knuth's multiplicative hash): Linux hands out even ports to connect() first.
        /* 11 */ {BPF_ALU | BPF_MUL | BPF_K, 0, 0, 2654435761U},
        /* 12 */ {BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16},
        /* 13 */ {BPF_ALU | BPF_MOD | BPF_K, 0, 0, n},
        /* 14 */ {BPF_RET | BPF_A, 0, 0, 0},
    };
    const sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
    if (::setsockopt(g.fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0) {
        log_line(LogLevel::kWarn,
                 "listener " + endpoint_label(g.bound) +
                     ": cannot steer new connections away from the sockets given up (" +
                     std::strerror(errno) + "); a few may be reset when they close");
    }
}

}  // namespace

Listeners::~Listeners() {
    close();
}

// Grows `g` to `count` sockets in one SO_REUSEPORT group: the first on `g.where` (port 0: the
// kernel picks one), the others on the port it got. Each new descriptor is also added to
// `opened`.
bool Listeners::grow_group(ListenGroup& g,
                           unsigned count,
                           std::vector<int>& opened,
                           std::string& error) {
    error_code ec;
    while (g.fds.size() < count) {
        tcp::endpoint ep = g.bound;
        if (g.fds.empty()) {
            ep = tcp::endpoint(asio::ip::make_address(g.where.host, ec), g.where.port);
        }
        tcp::acceptor a(ctx_);
        if (ec = open_listener(a, ep, true); ec) {
            error = "cannot listen on " + g.where.to_string() + ": " + ec.message() +
                    " (is another process using the port?)";
            return false;
        }
        if (g.fds.empty()) {
            g.bound = a.local_endpoint(ec);
        }
        g.fds.push_back(a.release());
        opened.push_back(g.fds.back());
    }
    return true;
}

std::expected<ListenerChange, std::string> Listeners::prepare(const LbConfig& c, unsigned workers) {
    const ListenerSet* current = started_ ? &live_ : nullptr;
    ListenerChange out;
    std::string error;
    const auto take = [&](const ListenGroup* now, const HostPort& where, ListenGroup& into,
                          bool& moved) {
        into.where = where;
        if (now != nullptr && now->where == where) {
            into.bound = now->bound;
            const auto keep = std::min<std::size_t>(workers, now->fds.size());
            into.fds.assign(now->fds.begin(), now->fds.begin() + static_cast<long>(keep));
            out.retired.insert(out.retired.end(), now->fds.begin() + static_cast<long>(keep),
                               now->fds.end());
        } else if (now != nullptr) {
            out.retired.insert(out.retired.end(), now->fds.begin(), now->fds.end());
            moved = true;
        }
        return grow_group(into, workers, out.opened, error);
    };
    bool ok = take(current != nullptr ? &current->http : nullptr, c.listen, out.next.http,
                   out.http_moved);
    const ListenGroup* now_https =
        current != nullptr && current->https ? &*current->https : nullptr;
    if (ok && c.https.enabled) {
        ok = take(now_https, c.https.listen, out.next.https.emplace(), out.https_moved);
    } else if (ok && now_https != nullptr) {
        out.retired.insert(out.retired.end(), now_https->fds.begin(), now_https->fds.end());
        out.https_moved = true;
    }
    out.next.admin_where = c.admin;
    if (ok && current != nullptr && current->admin_where == c.admin) {
        out.next.admin = current->admin;
    } else if (ok) {
        out.next.admin = std::make_shared<tcp::acceptor>(ctx_);
        out.admin_moved = current != nullptr;
        error_code ec;
        const tcp::endpoint ep(asio::ip::make_address(c.admin.host, ec), c.admin.port);
        if (ec = open_listener(*out.next.admin, ep, false); ec) {
            error = "cannot listen on admin " + c.admin.to_string() + ": " + ec.message() +
                    " (is another process using the port?)";
            ok = false;
        }
    }
    for (std::size_t i = 0; ok && i < out.opened.size(); ++i) {
        if (::listen(out.opened[i], asio::socket_base::max_listen_connections) != 0) {
            error = std::string("listen(): ") + std::strerror(errno);
            ok = false;
        }
    }
    if (ok && (current == nullptr || out.next.admin != current->admin)) {
        error_code ec;
        out.next.admin->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            error = "cannot listen on admin " + c.admin.to_string() + ": " + ec.message();
            ok = false;
        }
    }
    if (!ok) {
        abandon(out);
        return std::unexpected(error);
    }
    return out;
}

void Listeners::abandon(ListenerChange& change) {
    close_fds(change.opened);
    const auto& admin = change.next.admin;
    if (admin && (!started_ || admin != live_.admin)) {
        error_code ignored;
        admin->close(ignored);
    }
}

bool Listeners::commit(ListenerChange change) {
    close_fds(change.retired);
    if (change.admin_moved) {
        error_code ignored;
        live_.admin->close(ignored);
    }
    live_ = std::move(change.next);
    started_ = true;
    return change.admin_moved;
}

void Listeners::steer(bool on) {
    steer_group(live_.http, on);
    if (live_.https) {
        steer_group(*live_.https, on);
    }
}

void Listeners::close() {
    close_fds(live_.http.fds);
    if (live_.https) {
        close_fds(live_.https->fds);
    }
}

std::string Listeners::admin_label(const ListenerSet& l) {
    error_code ec;
    const auto at = l.admin ? l.admin->local_endpoint(ec) : tcp::endpoint();
    return !l.admin || ec ? l.admin_where.to_string() : endpoint_label(at);
}

std::string Listeners::describe() const {
    return endpoint_label(live_.http.bound) +
           (live_.https ? ", https on " + endpoint_label(live_.https->bound) : std::string()) +
           ", admin on " + admin_label(live_);
}

std::string Listeners::describe_moves(const ListenerChange& change) const {
    const auto& before = live_;
    const auto& after = change.next;
    std::string out;
    const auto show = [](const std::optional<ListenGroup>& g) {
        return g ? endpoint_label(g->bound) : std::string("none");
    };
    if (!(before.http.where == after.http.where)) {
        out += "; listen " + endpoint_label(before.http.bound) + " -> " +
               endpoint_label(after.http.bound);
    }
    if (before.https.has_value() != after.https.has_value() ||
        (before.https && !(before.https->where == after.https->where))) {
        out += "; https " + show(before.https) + " -> " + show(after.https);
    }
    if (change.admin_moved) {
        out += "; admin " + admin_label(before) + " -> " + admin_label(after);
    }
    return out;
}

}  // namespace lb
