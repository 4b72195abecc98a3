#pragma once

#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "lb/config.hpp"

namespace lb {

// A listener: one SO_REUSEPORT socket per worker index, kept open by the main context (each
// worker accepts on a duplicate of its own).
struct ListenGroup {
    HostPort where;                        // as configured
    boost::asio::ip::tcp::endpoint bound;  // what it got (port 0: the kernel's choice)
    std::vector<int> fds;
};

// What a generation listens on.
struct ListenerSet {
    ListenGroup http;
    std::optional<ListenGroup> https;
    HostPort admin_where;
    std::shared_ptr<boost::asio::ip::tcp::acceptor> admin;
};

// The listeners a configuration needs, opened beside the live ones and not applied yet: what to
// close if it is applied (`retired`: this context's descriptors of sockets given up) or if it is
// not (`opened`).
struct ListenerChange {
    ListenerSet next;
    std::vector<int> retired;
    std::vector<int> opened;
    bool admin_moved = false;
    bool http_moved = false;   // a new address (or https turned off): every socket of the
    bool https_moved = false;  // previous generation is given up, not only the extra ones
};

// The listening sockets of the live generation, and the change a reload brings. A listener whose
// address did not change keeps its sockets (the workers of both generations accept on the same
// ones: nothing is refused meanwhile) and grows or shrinks to the new number of workers; one that
// moved gets new sockets. listen() is called only once every socket a configuration needs is
// bound: a socket bound but not listening receives no connection, so one given up loses none.
class Listeners {
public:
    explicit Listeners(boost::asio::io_context& ctx) : ctx_(ctx) {}
    ~Listeners();
    Listeners(const Listeners&) = delete;
    Listeners& operator=(const Listeners&) = delete;

    // Binds and listens on what `c` needs with `workers` workers (everything new before the
    // first commit()); nothing live changes. On failure everything it opened is closed again
    // and the message says which address and why.
    std::expected<ListenerChange, std::string> prepare(const LbConfig& c, unsigned workers);
    // Undoes prepare() for a change that is not applied.
    void abandon(ListenerChange& change);
    // Makes `change` the live set. This context's descriptors of the sockets given up are
    // closed (the previous workers hold their own, take what is queued and close them), and a
    // moved admin listener's old acceptor too. Returns whether the admin acceptor changed.
    bool commit(ListenerChange change);

    // While sockets of a group are given up, new connections go only to the ones it keeps (a
    // classic BPF program on each SO_REUSEPORT group); off again, the kernel's hash spreads them.
    void steer(bool on);
    // Closes this context's descriptors of every listening socket (SIGTERM, exit): a socket
    // closes once the workers have closed theirs too.
    void close();

    [[nodiscard]] const ListenerSet& live() const { return live_; }
    [[nodiscard]] std::string admin_label() const { return admin_label(live_); }
    // "127.0.0.1:8080, https on 127.0.0.1:8443, admin on 127.0.0.1:9901"
    [[nodiscard]] std::string describe() const;
    // What `change` moves ("; listen A -> B; https none -> C; admin D -> E"), for the reload log.
    [[nodiscard]] std::string describe_moves(const ListenerChange& change) const;

private:
    static std::string admin_label(const ListenerSet& l);
    bool grow_group(ListenGroup& g, unsigned count, std::vector<int>& opened, std::string& error);

    boost::asio::io_context& ctx_;
    ListenerSet live_;
    bool started_ = false;  // a first change was committed
};

}  // namespace lb
