// c-ares on Asio. <ares.h> stays in this file.
#include "lb/resolver.hpp"

#include <cstring>
#include <map>
#include <mutex>

#include <ares.h>
#include <arpa/inet.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <netinet/in.h>

namespace lb {

namespace asio = boost::asio;

struct Resolver::Impl : std::enable_shared_from_this<Impl> {
    struct Watch {
        explicit Watch(asio::io_context& ctx, int fd) : descriptor(ctx, fd) {}
        asio::posix::stream_descriptor descriptor;
        bool want_read = false;
        bool want_write = false;
        bool reading = false;
        bool writing = false;
    };
    struct Pending {
        std::weak_ptr<Impl> owner;
        Callback callback;
    };

    asio::io_context& context;
    asio::steady_timer timer;
    ares_channel channel = nullptr;
    std::string error;
    std::map<int, std::shared_ptr<Watch>> watches;
    bool destroying = false;

    Impl(asio::io_context& ctx) : context(ctx), timer(ctx) {}

    ~Impl() { shutdown(); }

    void shutdown() {
        if (destroying) {
            return;
        }
        destroying = true;
        for (auto& [fd, w] : watches) {
            w->descriptor.release();  // c-ares owns and closes its sockets
        }
        watches.clear();
        timer.cancel();
        if (channel != nullptr) {
            ares_destroy(channel);
            channel = nullptr;
        }
    }

    static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
        auto* self = static_cast<Impl*>(data);
        if (self->destroying) {
            return;
        }
        if (readable == 0 && writable == 0) {
            if (auto it = self->watches.find(fd); it != self->watches.end()) {
                it->second->want_read = it->second->want_write = false;
                it->second->descriptor.release();  // cancels pending waits; does not close
                self->watches.erase(it);
            }
            return;
        }
        auto& w = self->watches[fd];
        if (!w) {
            w = std::make_shared<Watch>(self->context, fd);
        }
        w->want_read = readable != 0;
        w->want_write = writable != 0;
        self->arm(fd, w);
    }

    void arm(int fd, const std::shared_ptr<Watch>& w) {
        arm_one(fd, w, false);
        arm_one(fd, w, true);
    }

    // Waits for readability (or writability) of a c-ares socket, then lets c-ares process it.
    void arm_one(int fd, const std::shared_ptr<Watch>& w, bool write) {
        bool& waiting = write ? w->writing : w->reading;
        if (!(write ? w->want_write : w->want_read) || waiting) {
            return;
        }
        waiting = true;
        w->descriptor.async_wait(
            write ? asio::posix::descriptor_base::wait_write
                  : asio::posix::descriptor_base::wait_read,
            [weak = weak_from_this(), fd, w, write](boost::system::error_code ec) {
                (write ? w->writing : w->reading) = false;
                auto self = weak.lock();
                if (ec || !self || self->destroying || !(write ? w->want_write : w->want_read)) {
                    return;
                }
                ares_process_fd(self->channel, write ? ARES_SOCKET_BAD : fd,
                                write ? fd : ARES_SOCKET_BAD);
                self->after_process(fd, w);
            });
    }

    void after_process(int fd, const std::shared_ptr<Watch>& w) {
        if (auto it = watches.find(fd); it != watches.end() && it->second == w) {
            arm(fd, w);
        }
        schedule_timeout();
    }

    void schedule_timeout() {
        timeval max{1, 0};
        timeval tv{};
        const timeval* next = ares_timeout(channel, &max, &tv);
        timer.expires_after(std::chrono::seconds(next->tv_sec) +
                            std::chrono::microseconds(next->tv_usec));
        timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            auto self = weak.lock();
            if (ec || !self || self->destroying) {
                return;
            }
            ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            if (!self->watches.empty()) {
                self->schedule_timeout();
            }
        });
    }

    static void on_result(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
        std::unique_ptr<Pending> pending(static_cast<Pending*>(arg));
        Resolution out;
        if (status == ARES_SUCCESS && result != nullptr) {
            int ttl = -1;
            for (const ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
                if (n->ai_family == AF_INET) {
                    const auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
                    asio::ip::address_v4::bytes_type bytes{};
                    std::memcpy(bytes.data(), &sin->sin_addr, bytes.size());
                    out.addresses.emplace_back(asio::ip::address_v4(bytes));
                } else if (n->ai_family == AF_INET6) {
                    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
                    asio::ip::address_v6::bytes_type bytes{};
                    std::memcpy(bytes.data(), &sin6->sin6_addr, bytes.size());
                    out.addresses.emplace_back(asio::ip::address_v6(bytes));
                } else {
                    continue;
                }
                ttl = ttl < 0 ? n->ai_ttl : std::min(ttl, n->ai_ttl);
            }
            out.ttl = std::chrono::seconds(std::max(ttl, 0));
            out.ok = !out.addresses.empty();
            if (!out.ok) {
                out.error = "no A or AAAA records";
            }
        } else {
            out.error = ares_strerror(status);
        }
        if (result != nullptr) {
            ares_freeaddrinfo(result);
        }
        auto owner = pending->owner.lock();
        if (status == ARES_EDESTRUCTION || !owner || owner->destroying) {
            return;
        }
        // Deliver on the context, never from inside ares_process_fd.
        asio::post(owner->context, [cb = std::move(pending->callback),
                                    out = std::move(out)]() mutable { cb(std::move(out)); });
    }
};

Resolver::Resolver(asio::io_context& context, const DnsConfig& config)
    : impl_(std::make_shared<Impl>(context)) {
    static std::once_flag once;
    std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    ares_options options{};
    options.sock_state_cb = &Impl::on_socket_state;
    options.sock_state_cb_data = impl_.get();
    options.timeout = static_cast<int>(std::max<std::int64_t>(config.timeout.count() / 2, 50));
    options.tries = 2;
    const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (const int rc = ares_init_options(&impl_->channel, &options, mask); rc != ARES_SUCCESS) {
        impl_->error = std::string("c-ares init: ") + ares_strerror(rc);
        impl_->channel = nullptr;
        return;
    }
    if (!config.servers.empty()) {
        std::string csv;
        for (const auto& s : config.servers) {
            csv += (csv.empty() ? "" : ",") + s.to_string();
        }
        if (const int rc = ares_set_servers_ports_csv(impl_->channel, csv.c_str());
            rc != ARES_SUCCESS) {
            impl_->error = "dns.servers '" + csv + "': " + ares_strerror(rc);
        }
    }
}

Resolver::~Resolver() {
    impl_->shutdown();
}

const std::string& Resolver::init_error() const {
    return impl_->error;
}

void Resolver::resolve(const std::string& host, Callback callback) {
    if (impl_->channel == nullptr || !impl_->error.empty()) {
        asio::post(impl_->context, [cb = std::move(callback), e = impl_->error] {
            cb(Resolution{false, e, {}, {}});
        });
        return;
    }
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    auto* pending = new Impl::Pending{impl_, std::move(callback)};  // owned by on_result
    ares_getaddrinfo(impl_->channel, host.c_str(), nullptr, &hints, &Impl::on_result, pending);
    impl_->schedule_timeout();
}

}  // namespace lb
