// The main context: listeners, DNS refreshes (c-ares), active health checks, snapshot
// publication to the workers, configuration reloads, the admin listener and graceful shutdown.
#include "lb/server.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <linux/filter.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/health_state.hpp"
#include "lb/resolver.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "snapshot.hpp"
#include "tls.hpp"
#include "worker.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Json = nlohmann::json;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

std::string endpoint_label(const tcp::endpoint& e) {
    const auto a = e.address();
    return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(e.port())
                     : a.to_string() + ":" + std::to_string(e.port());
}

std::string iso8601(std::chrono::system_clock::time_point t) {
    const auto secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

// What the file watcher compares: the configuration file and every file it names, each by a
// hash of its content (a Kubernetes volume swaps a symlink; an editor may keep the inode). A file
// that cannot be read hashes as such, so its return is a change too.
using FileHashes = std::vector<std::pair<std::string, std::size_t>>;
FileHashes hash_files(const std::string& config_path, const LbConfig& c) {
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
    constexpr std::streamsize kMaxBytes = 16 * 1024 * 1024;  // far beyond any PEM or YAML here
    FileHashes out;
    for (auto& path : paths) {
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
        out.emplace_back(std::move(path), std::hash<std::string>{}(content));
    }
    return out;
}
// The files of `now` that differ from `before` (added, removed or changed), comma-separated.
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

struct ProbeResult {
    bool ok = false;
    unsigned status = 0;
    double seconds = 0;
    std::string error;
};

// A health check's request and the response header, over a plain or a TLS stream: the stage
// that failed ("send" or "response") and why, or no error.
template <class Stream>
asio::awaitable<std::pair<const char*, error_code>> check_exchange(
    Stream& stream,
    const http::request<http::empty_body>& req,
    beast::flat_buffer& buffer,
    http::response_parser<http::empty_body>& parser) {
    auto [wec, wn] = co_await http::async_write(stream, req, kNoThrow);
    if (wec) {
        co_return std::pair<const char*, error_code>{"send", wec};
    }
    auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
    co_return std::pair<const char*, error_code>{"response", rec};
}

}  // namespace

struct Server::Impl {
    struct EndpointState {
        EndpointState(asio::io_context& ctx, tcp::endpoint a, const HealthCheckConfig& hc)
            : address(a),
              label(endpoint_label(a)),
              health(hc.rise, hc.fall, Health::kUp),
              timer(ctx) {}
        tcp::endpoint address;
        std::string label;
        HealthState health;
        asio::steady_timer timer;
        bool active = true;
        std::shared_ptr<beast::tcp_stream> probe;
        bool checked = false;
        ProbeResult last;
        std::chrono::system_clock::time_point last_at{};
        std::uint64_t checks = 0;
        std::uint64_t failures = 0;
    };
    using EndpointPtr = std::shared_ptr<EndpointState>;

    struct ClusterState {
        const ClusterConfig* config = nullptr;
        bool is_ip = false;
        bool resolved =
            false;  // has an answer (an IP address, or DNS, or the previous generation's)
        std::vector<EndpointPtr> endpoints;
        bool healthy = true;
        std::unique_ptr<asio::steady_timer> dns_timer;
        std::string dns_error;
        std::chrono::system_clock::time_point dns_at{};
        std::chrono::seconds dns_ttl{0};
        std::uint64_t dns_failures = 0;
        bool refresh_now = false;  // an answer inherited from other DNS servers: ask the new ones
    };

    // One configuration generation: its clusters with their DNS and health-check state, its
    // metrics view and its workers. A reload builds the next one beside it; the old one hands
    // its connections over and goes away when its last request has finished.
    struct Plane {
        Plane(asio::io_context& ctx,
              LbConfig c,
              std::uint64_t generation,
              const std::shared_ptr<MetricsRegistry>& registry,
              unsigned threads)
            : config(std::move(c)),
              id(generation),
              metrics(registry, cluster_names(config), threads),
              drain_timer(ctx),
              loaded_at(std::chrono::system_clock::now()) {}
        LbConfig config;  // never changed: workers and cluster states point into it
        std::uint64_t id;
        std::vector<TlsContextPtr> tls;  // per cluster; nullptr where TLS is off
        TlsContextPtr server_tls;        // the https listener's certificate (a reload renews it)
        // c-ares channel (dns.servers, dns.timeout): the previous generation's when those are
        // the same. A generation whose refresh is still resolving keeps its own alive.
        std::shared_ptr<Resolver> resolver;
        std::vector<ClusterState> clusters;
        Metrics metrics;
        std::vector<std::unique_ptr<Worker>> workers;
        asio::steady_timer drain_timer;
        std::vector<bool> done;      // per worker: no session left (drained or handed over)
        bool requests_done = false;  // every worker done
        bool retired = false;        // replaced by a reload: its checks and DNS refreshes stop
        std::chrono::system_clock::time_point loaded_at;
    };
    using PlanePtr = std::shared_ptr<Plane>;

    Impl(LbConfig c, std::string path)
        : config_path(std::move(path)),
          first(std::move(c)),
          signals(ctx, SIGTERM, SIGINT, SIGHUP),
          drain_timer(ctx),
          rng(std::random_device{}()) {}

    static std::vector<std::string> cluster_names(const LbConfig& c) {
        std::vector<std::string> out;
        for (const auto& cl : c.clusters) {
            out.push_back(cl.name);
        }
        return out;
    }

    static unsigned threads_of(const LbConfig& c) {
        return c.threads != 0 ? c.threads : std::max(1u, std::thread::hardware_concurrency());
    }

    // A listener: one SO_REUSEPORT socket per worker index, kept open here (each worker accepts
    // on a duplicate of its own).
    struct ListenGroup {
        HostPort where;       // as configured
        tcp::endpoint bound;  // what it got (port 0: the kernel's choice)
        std::vector<int> fds;
    };
    // What a generation listens on, and for a reload what to close if it is applied (`retired`)
    // or if it is not (`opened`).
    struct Listeners {
        ListenGroup http;
        std::optional<ListenGroup> https;
        HostPort admin_where;
        std::shared_ptr<tcp::acceptor> admin;
        std::vector<int> retired;
        std::vector<int> opened;
        bool admin_moved = false;
        bool http_moved = false;   // a new address (or https turned off): every socket of the
        bool https_moved = false;  // previous generation is given up, not only the extra ones
    };

    std::string config_path;
    LbConfig first;  // the configuration at startup
    asio::io_context ctx{1};
    std::shared_ptr<MetricsRegistry> registry = make_metrics_registry();
    PlanePtr plane;                  // the current generation
    std::vector<PlanePtr> retiring;  // earlier generations still finishing requests
    Listeners live;                  // what the current generation listens on
    // Workers of earlier generations still taking what arrives on a socket given up
    // (Worker::GiveUp::kAfterGrace); while there are, new connections are steered.
    std::size_t giving_up = 0;
    asio::signal_set signals;
    asio::steady_timer drain_timer;
    std::mt19937 rng;
    std::uint64_t generation = 0;         // snapshots published
    std::uint64_t config_generation = 0;  // configurations loaded
    bool draining = false;
    bool finished = false;
    bool reloading = false;
    bool reload_again = false;
    FileHashes watched;  // the files as the last reload (or the start) read them
    asio::steady_timer watch_timer{ctx};
    struct ReloadResult {
        std::chrono::system_clock::time_point at{};
        bool ok = false;
        std::string error;
    };
    std::optional<ReloadResult> last_reload;
    std::uint64_t reloads = 0;  // SIGHUPs handled (applied or not)
    std::set<std::shared_ptr<beast::tcp_stream>> admin_sessions;
    std::set<asio::steady_timer*> resolving;  // resolutions in flight, woken at shutdown
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    int exit_code = 0;

    // ---- startup ----------------------------------------------------------------------------

    // open, SO_REUSEADDR (and SO_REUSEPORT for the workers' sockets), bind; listen() comes once
    // every socket a configuration needs is bound (a socket bound but not listening receives
    // no connection, so one given up then loses none).
    static error_code open_listener(tcp::acceptor& a, const tcp::endpoint& ep, bool reuse_port) {
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

    // Grows `g` to `count` sockets in one SO_REUSEPORT group: the first on `g.where` (port 0:
    // the kernel picks one), the others on the port it got. Each new descriptor is also added
    // to `opened`.
    bool grow_group(ListenGroup& g, unsigned count, std::vector<int>& opened, std::string& error) {
        error_code ec;
        while (g.fds.size() < count) {
            tcp::endpoint ep = g.bound;
            if (g.fds.empty()) {
                ep = tcp::endpoint(asio::ip::make_address(g.where.host, ec), g.where.port);
            }
            tcp::acceptor a(ctx);
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

    // While sockets of a group are given up, new connections go only to the ones it keeps: a
    // classic BPF program on the group picks among its first `fds.size()` sockets (the kernel
    // lists a group's sockets in the order they began listening, and only the last ones are
    // given up) by the packet's flow hash, or where the NIC gave none, by the client's port.
    // Off again, the kernel's own hash spreads them.
    static void steer(const ListenGroup& g, bool on) {
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
    void steer_live(bool on) {
        steer(live.http, on);
        if (live.https) {
            steer(*live.https, on);
        }
    }

    static void close_fds(std::vector<int>& fds) {
        for (const auto fd : fds) {
            ::close(fd);
        }
        fds.clear();
    }

    // The listeners `c` needs with `count` workers. At startup (`current` null) every socket
    // is new. For a reload, a listener whose address did not change keeps its sockets (the
    // workers of both generations accept on the same ones: nothing is refused meanwhile) and
    // grows or shrinks to `count`; one that moved gets new sockets, and the old ones are
    // retired. Nothing is closed here: on failure `out.opened` is closed, nothing else changed.
    bool open_listeners(const LbConfig& c,
                        unsigned count,
                        const Listeners* current,
                        Listeners& out,
                        std::string& error) {
        const auto take = [&](const ListenGroup* now, const HostPort& where, ListenGroup& into,
                              bool& moved) {
            into.where = where;
            if (now != nullptr && now->where == where) {
                into.bound = now->bound;
                const auto keep = std::min<std::size_t>(count, now->fds.size());
                into.fds.assign(now->fds.begin(), now->fds.begin() + static_cast<long>(keep));
                out.retired.insert(out.retired.end(), now->fds.begin() + static_cast<long>(keep),
                                   now->fds.end());
            } else if (now != nullptr) {
                out.retired.insert(out.retired.end(), now->fds.begin(), now->fds.end());
                moved = true;
            }
            return grow_group(into, count, out.opened, error);
        };
        bool ok =
            take(current != nullptr ? &current->http : nullptr, c.listen, out.http, out.http_moved);
        const ListenGroup* now_https =
            current != nullptr && current->https ? &*current->https : nullptr;
        if (ok && c.https.enabled) {
            ok = take(now_https, c.https.listen, out.https.emplace(), out.https_moved);
        } else if (ok && now_https != nullptr) {
            out.retired.insert(out.retired.end(), now_https->fds.begin(), now_https->fds.end());
            out.https_moved = true;
        }
        out.admin_where = c.admin;
        if (ok && current != nullptr && current->admin_where == c.admin) {
            out.admin = current->admin;
        } else if (ok) {
            out.admin = std::make_shared<tcp::acceptor>(ctx);
            out.admin_moved = current != nullptr;
            error_code ec;
            const tcp::endpoint ep(asio::ip::make_address(c.admin.host, ec), c.admin.port);
            if (ec = open_listener(*out.admin, ep, false); ec) {
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
        if (ok && (current == nullptr || out.admin != current->admin)) {
            error_code ec;
            out.admin->listen(asio::socket_base::max_listen_connections, ec);
            if (ec) {
                error = "cannot listen on admin " + c.admin.to_string() + ": " + ec.message();
                ok = false;
            }
        }
        if (!ok) {
            discard(out, current);
        }
        return ok;
    }

    void close_listeners() {
        close_fds(live.http.fds);
        if (live.https) {
            close_fds(live.https->fds);
        }
    }

    // A generation for `c`: TLS contexts, the DNS channel (`prev`'s when its settings are the
    // same; throws std::runtime_error naming the problem) and cluster states; clusters given by
    // IP address have their endpoint already.
    PlanePtr make_plane(LbConfig c, const Plane* prev) {
        const auto workers = threads_of(c);
        auto p =
            std::make_shared<Plane>(ctx, std::move(c), config_generation + 1, registry, workers);
        p->tls = make_tls_contexts(p->config);
        p->server_tls = make_server_tls_context(p->config.https);
        for (const auto& cc : p->config.clusters) {
            ClusterState cl;
            cl.config = &cc;
            error_code ec;
            const auto ip = asio::ip::make_address(cc.address.host, ec);
            cl.is_ip = !ec;
            if (cl.is_ip) {
                cl.endpoints.push_back(std::make_shared<EndpointState>(
                    ctx, tcp::endpoint(ip, cc.address.port), p->config.health_check));
                cl.resolved = true;
            }
            p->clusters.push_back(std::move(cl));
        }
        const auto& dns = p->config.dns;
        if (prev != nullptr && prev->resolver && prev->config.dns.servers == dns.servers &&
            prev->config.dns.timeout == dns.timeout) {
            p->resolver = prev->resolver;
        } else {
            p->resolver = std::make_shared<Resolver>(ctx, dns);
            const bool needs_dns = std::any_of(p->clusters.begin(), p->clusters.end(),
                                               [](const ClusterState& cl) { return !cl.is_ip; });
            if (needs_dns && !p->resolver->init_error().empty()) {
                throw std::runtime_error("DNS: " + p->resolver->init_error());
            }
        }
        return p;
    }

    // A reload keeps what the previous generation knew about a cluster of the same name and
    // address: its DNS answer (no new lookup before serving; with new DNS servers, a lookup
    // right after) and, when the health check is
    // configured the same way, each endpoint's health and check history (no endpoint that is
    // down is tried again, none that is up waits for `rise` checks).
    void inherit(Plane& next, const Plane& prev) {
        for (std::size_t c = 0; c < next.clusters.size(); ++c) {
            auto& cl = next.clusters[c];
            const auto it = std::find_if(prev.clusters.begin(), prev.clusters.end(),
                                         [&](const ClusterState& o) {
                                             return o.config->name == cl.config->name &&
                                                    o.config->address == cl.config->address;
                                         });
            if (it == prev.clusters.end()) {
                continue;
            }
            const bool same_check = next.config.health_check == prev.config.health_check &&
                                    it->config->tls == cl.config->tls;
            cl.healthy = it->healthy;  // (logged as a change only when it changes)
            if (!cl.is_ip) {
                cl.dns_error = it->dns_error;
                cl.dns_at = it->dns_at;
                cl.dns_ttl = it->dns_ttl;
                cl.dns_failures = it->dns_failures;
                cl.resolved = it->resolved;
                cl.refresh_now = next.resolver != prev.resolver;  // (served meanwhile)
                cl.endpoints.clear();
                for (const auto& old : it->endpoints) {
                    cl.endpoints.push_back(std::make_shared<EndpointState>(
                        ctx, old->address, next.config.health_check));
                }
            }
            if (!same_check) {
                continue;
            }
            for (auto& ep : cl.endpoints) {
                for (const auto& old : it->endpoints) {
                    if (old->address == ep->address) {
                        ep->health = old->health;
                        ep->checked = old->checked;
                        ep->last = old->last;
                        ep->last_at = old->last_at;
                        ep->checks = old->checks;
                        ep->failures = old->failures;
                    }
                }
            }
        }
    }

    // One resolution as an awaitable: the callback (always posted, so it runs after this
    // coroutine is suspended) stores the result and wakes the timer.
    asio::awaitable<Resolution> resolve(Resolver& resolver, std::string host) {
        struct Wait {
            explicit Wait(asio::io_context& c) : timer(c, asio::steady_timer::time_point::max()) {}
            asio::steady_timer timer;
            std::optional<Resolution> result;
        };
        auto wait = std::make_shared<Wait>(ctx);
        resolver.resolve(host, [wait](Resolution r) {
            wait->result = std::move(r);
            wait->timer.cancel();
        });
        resolving.insert(&wait->timer);
        while (!wait->result && !finished) {
            co_await wait->timer.async_wait(kNoThrow);
        }
        resolving.erase(&wait->timer);
        if (!wait->result) {
            co_return Resolution{false, "shutting down", {}, {}};
        }
        co_return std::move(*wait->result);
    }

    // The first resolution of every hostname without an answer yet, all at once.
    asio::awaitable<void> resolve_plane(PlanePtr p) {
        std::size_t left = 0;
        asio::steady_timer wake(ctx, asio::steady_timer::time_point::max());
        for (std::size_t c = 0; c < p->clusters.size(); ++c) {
            if (p->clusters[c].resolved) {
                continue;
            }
            ++left;
            asio::co_spawn(
                ctx,
                [this, p, c, &left, &wake]() -> asio::awaitable<void> {
                    auto r = co_await resolve(*p->resolver, p->clusters[c].config->address.host);
                    apply_resolution(p, c, r, false);
                    if (--left == 0) {
                        wake.cancel();
                    }
                },
                asio::detached);
        }
        if (left > 0) {
            co_await wake.async_wait(kNoThrow);
        }
    }

    // Workers (on duplicates of `l`'s sockets), the first snapshot, checks and DNS refreshes.
    // Throws std::runtime_error when a socket cannot be duplicated.
    void start_plane(const PlanePtr& p, const Listeners& l) {
        for (unsigned i = 0; i < l.http.fds.size(); ++i) {
            const int fd = ::dup(l.http.fds[i]);
            const int https_fd = l.https ? ::dup(l.https->fds[i]) : -1;
            if (fd < 0 || (l.https && https_fd < 0)) {
                const std::string why = std::strerror(errno);
                for (const int f : {fd, https_fd}) {
                    if (f >= 0) {
                        ::close(f);
                    }
                }
                p->workers.clear();
                throw std::runtime_error("duplicating a listening socket: " + why);
            }
            p->workers.push_back(std::make_unique<Worker>(
                i, p->config, p->tls, p->metrics.worker(i), fd, l.http.bound.protocol(), https_fd,
                l.https ? l.https->bound.protocol() : tcp::v4(), p->server_tls.get()));
        }
        p->done.assign(p->workers.size(), false);
        auto snapshot = build_snapshot(*p);
        for (auto& w : p->workers) {
            w->start(snapshot);
        }
        for (std::size_t c = 0; c < p->clusters.size(); ++c) {
            for (const auto& ep : p->clusters[c].endpoints) {
                p->metrics.endpoint_state(c, ep->label, ep->health.up());  // (from the start)
                start_checks(p, c, ep);
            }
            if (!p->clusters[c].is_ip) {
                asio::co_spawn(ctx, dns_loop(p, c), asio::detached);
            }
        }
    }

    asio::awaitable<void> startup(std::ostream& ready) {
        config_generation = plane->id;
        co_await resolve_plane(plane);
        start_plane(plane, live);
        asio::co_spawn(ctx, admin_loop(live.admin), asio::detached);
        watched = hash_files(config_path, plane->config);
        asio::co_spawn(ctx, watch_files(), asio::detached);
        signals.async_wait([this](error_code ec, int sig) { on_signal(ec, sig); });
        ready << "tandem-lb ready listen=" << endpoint_label(live.http.bound)
              << " admin=" << endpoint_label(live.admin->local_endpoint())
              << " workers=" << plane->workers.size()
              << (live.https ? " https=" + endpoint_label(live.https->bound) : "") << std::endl;
        log_line(LogLevel::kInfo, "listening on " + describe_listeners(live) + ", " +
                                      std::to_string(plane->workers.size()) + " workers, " +
                                      std::to_string(plane->clusters.size()) + " clusters");
    }

    // ---- reload (SIGHUP, or a watched file changed) ---------------------------------------

    // reload.watchInterval: compares the files with what was loaded; a difference reloads.
    // With the watch off it still wakes each second, so a reload can turn it on.
    asio::awaitable<void> watch_files() {
        while (!draining && !finished) {
            const auto every = plane->config.reload.watch_interval;
            watch_timer.expires_after(every.count() > 0 ? every : std::chrono::seconds(1));
            auto [ec] = co_await watch_timer.async_wait(kNoThrow);
            if (ec || draining || finished) {
                co_return;
            }
            if (plane->config.reload.watch_interval.count() == 0 || reloading) {
                continue;
            }
            if (const auto now = hash_files(config_path, plane->config); now != watched) {
                co_await reload("changed: " + changed_files(watched, now));
            }
        }
    }

    void reload_failed(std::string why) {
        plane->metrics.reload(false);
        log_line(LogLevel::kError, "reload of " + config_path + " failed: " + why +
                                       "; still serving generation " + std::to_string(plane->id));
        last_reload = ReloadResult{std::chrono::system_clock::now(), false, std::move(why)};
        ++reloads;
    }

    // `why`: "SIGHUP", or the files the watcher saw change.
    asio::awaitable<void> reload(std::string why) {
        if (reloading) {
            reload_again = true;  // once the current one is done, read the file again
            co_return;
        }
        reloading = true;
        do {
            reload_again = false;
            co_await reload_once(why);
            why = "SIGHUP";
        } while (reload_again && !draining && !finished);
        reloading = false;
    }

    asio::awaitable<void> reload_once(const std::string& cause) {
        log_line(LogLevel::kInfo, cause + ": reloading " + config_path);
        // Read before the file is parsed: a change made meanwhile is seen by the next look.
        watched = hash_files(config_path, plane->config);
        auto loaded = load_lb_config(config_path);
        if (!loaded) {
            std::string why;
            for (const auto& d : loaded.error()) {
                if (d.severity == config::Diagnostic::Severity::kError) {
                    why += (why.empty() ? "" : "; ") + d.to_string();
                }
            }
            reload_failed(why.empty() ? "the file is not valid" : why);
            co_return;
        }
        PlanePtr next;
        try {
            next = make_plane(std::move(*loaded), plane.get());
        } catch (const std::runtime_error& e) {
            reload_failed(e.what());
            co_return;
        }
        inherit(*next, *plane);
        co_await resolve_plane(next);
        if (draining || finished) {
            co_return;  // SIGTERM meanwhile: nothing was started
        }
        Listeners l;
        std::string error;
        if (!open_listeners(next->config, threads_of(next->config), &live, l, error)) {
            reload_failed(error);
            co_return;
        }
        try {
            start_plane(next, l);
        } catch (const std::runtime_error& e) {
            discard(l, &live);
            reload_failed(e.what());
            co_return;
        }
        config_generation = next->id;
        watched = hash_files(config_path, next->config);  // the files it names now
        auto prev = std::exchange(plane, next);
        const auto moved = describe_moves(*prev, *next, live, l);
        // This context's descriptors of the sockets given up; the previous generation's workers
        // still hold theirs, take what is queued on them and then close them.
        close_fds(l.retired);
        if (l.admin_moved) {
            error_code ignored;
            live.admin->close(ignored);
            asio::co_spawn(ctx, admin_loop(l.admin), asio::detached);
        }
        const auto before = giving_up;
        retire(prev, *next, l);
        l.retired.clear();
        l.opened.clear();
        l.admin_moved = l.http_moved = l.https_moved = false;
        live = std::move(l);
        if (giving_up > 0 || before > 0) {
            steer_live(giving_up > 0);  // (the counts may have changed again)
        }
        next->metrics.reload(true);
        last_reload = ReloadResult{std::chrono::system_clock::now(), true, {}};
        ++reloads;
        log_line(LogLevel::kInfo, "reloaded " + config_path + ": generation " +
                                      std::to_string(next->id) + ", " +
                                      std::to_string(next->clusters.size()) + " clusters (" +
                                      describe_changes(*prev, *next) + ")" + moved +
                                      "; connections move over as they finish their requests");
    }

    // Undoes open_listeners() (for a reload that is not applied).
    static void discard(Listeners& l, const Listeners* current) {
        close_fds(l.opened);
        if (l.admin && (current == nullptr || l.admin != current->admin)) {
            error_code ignored;
            l.admin->close(ignored);
        }
    }

    static std::string admin_label(const Listeners& l) {
        error_code ec;
        const auto at = l.admin->local_endpoint(ec);
        return ec ? l.admin_where.to_string() : endpoint_label(at);
    }

    static std::string describe_listeners(const Listeners& l) {
        return endpoint_label(l.http.bound) +
               (l.https ? ", https on " + endpoint_label(l.https->bound) : std::string()) +
               ", admin on " + admin_label(l);
    }

    // What a reload changes besides the clusters: listeners, workers, the DNS channel.
    static std::string describe_moves(const Plane& prev,
                                      const Plane& next,
                                      const Listeners& before,
                                      const Listeners& after) {
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
        if (after.admin_moved) {
            out += "; admin " + admin_label(before) + " -> " + admin_label(after);
        }
        if (prev.workers.size() != next.workers.size()) {
            out += "; workers " + std::to_string(prev.workers.size()) + " -> " +
                   std::to_string(next.workers.size());
        }
        if (prev.resolver != next.resolver) {
            out += "; DNS resolver: new dns.servers/timeout";
        }
        return out;
    }

    static std::string describe_changes(const Plane& prev, const Plane& next) {
        std::vector<std::string> added, removed, changed;
        for (const auto& c : next.config.clusters) {
            const auto it = std::find_if(prev.config.clusters.begin(), prev.config.clusters.end(),
                                         [&](const ClusterConfig& o) { return o.name == c.name; });
            if (it == prev.config.clusters.end()) {
                added.push_back(c.name);
            } else if (!(it->address == c.address) || it->weight != c.weight ||
                       it->backup != c.backup || !(it->tls == c.tls)) {
                changed.push_back(c.name);
            }
        }
        for (const auto& c : prev.config.clusters) {
            if (std::none_of(next.config.clusters.begin(), next.config.clusters.end(),
                             [&](const ClusterConfig& o) { return o.name == c.name; })) {
                removed.push_back(c.name);
            }
        }
        const auto list = [](const char* what, const std::vector<std::string>& names) {
            std::string out = std::string(what) + ": ";
            if (names.empty()) {
                return out + "none";
            }
            for (std::size_t i = 0; i < names.size(); ++i) {
                out += (i ? ", " : "") + names[i];
            }
            return out;
        };
        return list("added", added) + "; " + list("removed", removed) + "; " +
               list("changed", changed);
    }

    // The previous generation: checks and DNS refreshes stop now; its workers stop accepting and
    // pass each connection on between requests; requests in flight get its drain timeout.
    // Its workers beyond the next generation's count, and all of them when a listener moved,
    // first take what is queued on the sockets given up (`l`) and pass it on.
    void retire(const PlanePtr& prev, Plane& next, const Listeners& l) {
        prev->retired = true;
        stop_loops(*prev);
        for (std::size_t c = 0; c < prev->clusters.size(); ++c) {
            const auto& name = prev->clusters[c].config->name;
            if (std::none_of(next.clusters.begin(), next.clusters.end(),
                             [&](const ClusterState& n) { return n.config->name == name; })) {
                std::vector<std::string> labels;
                for (const auto& ep : prev->clusters[c].endpoints) {
                    labels.push_back(ep->label);
                }
                prev->metrics.cluster_removed(c, labels);
            }
        }
        retiring.push_back(prev);
        using GiveUp = Worker::GiveUp;
        const auto n = next.workers.size();
        for (std::size_t i = 0; i < prev->workers.size(); ++i) {
            const auto how = [&](bool moved) {
                return moved ? GiveUp::kNow : i >= n ? GiveUp::kAfterGrace : GiveUp::kNo;
            };
            const auto http_how = how(l.http_moved);
            const auto https_how = how(l.https_moved);
            std::function<void()> given_up;
            if (http_how == GiveUp::kAfterGrace || https_how == GiveUp::kAfterGrace) {
                ++giving_up;
                given_up = [this] {
                    asio::post(ctx, [this] {
                        if (--giving_up == 0 && !finished) {
                            steer_live(false);
                        }
                    });
                };
            }
            prev->workers[i]->hand_over(*next.workers[i % n], worker_done(prev, i), http_how,
                                        https_how, std::move(given_up));
        }
        prev->drain_timer.expires_after(prev->config.timeouts.drain);
        prev->drain_timer.async_wait([this, prev](error_code ec) {
            if (ec || prev->requests_done) {
                return;
            }
            log_line(LogLevel::kWarn, "generation " + std::to_string(prev->id) +
                                          ": drain deadline passed after the reload; cancelling "
                                          "its remaining requests");
            for (auto& w : prev->workers) {
                w->stop_now();
            }
        });
    }

    // Called on a worker's thread when it has no session left; counted on the main context.
    std::function<void()> worker_done(const PlanePtr& p, std::size_t worker) {
        return [this, p, worker] {
            asio::post(ctx, [this, p, worker] { on_worker_done(p, worker); });
        };
    }

    void on_worker_done(const PlanePtr& p, std::size_t worker) {
        if (p->done[worker]) {
            return;  // (handed over, then drained at shutdown: reported twice)
        }
        p->done[worker] = true;
        if (std::find(p->done.begin(), p->done.end(), false) != p->done.end()) {
            return;
        }
        p->requests_done = true;
        p->drain_timer.cancel();
        // Generations go oldest first: an older one may still pass connections through a newer
        // one's workers, so those keep running until every older generation is gone.
        while (!retiring.empty() && retiring.front()->requests_done) {
            auto old = retiring.front();
            retiring.erase(retiring.begin());
            for (auto& w : old->workers) {
                w->finish();
            }
            for (auto& w : old->workers) {
                w->join();
            }
            log_line(LogLevel::kInfo,
                     "generation " + std::to_string(old->id) + " finished its last request");
        }
        if (draining && plane->requests_done && retiring.empty()) {
            finish();
        }
    }

    void stop_loops(Plane& p) {
        error_code ignored;
        for (auto& cl : p.clusters) {
            if (cl.dns_timer) {
                cl.dns_timer->cancel();
            }
            for (auto& ep : cl.endpoints) {
                ep->active = false;
                ep->timer.cancel();
                if (ep->probe) {
                    ep->probe->socket().cancel(ignored);
                }
            }
        }
    }

    // ---- DNS --------------------------------------------------------------------------------

    std::chrono::milliseconds next_refresh(const Plane& p, const ClusterState& cl, bool ok) const {
        if (!ok) {
            return p.config.dns.retry;
        }
        const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(cl.dns_ttl);
        return std::clamp(ttl, p.config.dns.min_ttl, p.config.dns.max_ttl);
    }

    asio::awaitable<void> dns_loop(PlanePtr p, std::size_t c) {
        auto& cl = p->clusters[c];
        cl.dns_timer = std::make_unique<asio::steady_timer>(ctx);
        auto delay = next_refresh(*p, cl, cl.dns_error.empty());
        if (cl.resolved && cl.dns_at != std::chrono::system_clock::time_point{}) {
            // Inherited from the previous generation: refresh when that answer is due.
            const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now() - cl.dns_at);
            delay = std::max(std::chrono::milliseconds(0), delay - age);
        }
        if (cl.refresh_now) {
            delay = std::chrono::milliseconds(0);
        }
        while (!finished && !p->retired) {
            cl.dns_timer->expires_after(delay);
            co_await cl.dns_timer->async_wait(kNoThrow);
            if (finished || p->retired) {
                break;
            }
            auto r = co_await resolve(*p->resolver, cl.config->address.host);
            if (finished || p->retired) {
                break;
            }
            apply_resolution(p, c, r, true);
            delay = next_refresh(*p, cl, r.ok);
        }
    }

    void apply_resolution(const PlanePtr& p,
                          std::size_t c,
                          const Resolution& r,
                          bool publish_changes) {
        auto& cl = p->clusters[c];
        p->metrics.dns_result(c, r.ok);
        cl.dns_at = std::chrono::system_clock::now();
        cl.resolved = true;
        if (!r.ok) {
            ++cl.dns_failures;
            cl.dns_error = r.error;
            log_line(LogLevel::kWarn, "cluster " + cl.config->name + ": resolving " +
                                          cl.config->address.host + " failed (" + r.error +
                                          "); keeping the last good answer (" +
                                          std::to_string(cl.endpoints.size()) + " endpoints)");
            return;
        }
        cl.dns_error.clear();
        cl.dns_ttl = r.ttl;
        std::set<tcp::endpoint> wanted;
        for (const auto& a : r.addresses) {
            wanted.emplace(a, cl.config->address.port);
        }
        bool changed = false;
        std::erase_if(cl.endpoints, [&](const EndpointPtr& ep) {
            if (wanted.contains(ep->address)) {
                return false;
            }
            retire_endpoint(*p, c, ep);
            changed = true;
            return true;
        });
        for (const auto& w : wanted) {
            const bool known = std::any_of(cl.endpoints.begin(), cl.endpoints.end(),
                                           [&](const EndpointPtr& ep) { return ep->address == w; });
            if (!known) {
                auto ep = std::make_shared<EndpointState>(ctx, w, p->config.health_check);
                cl.endpoints.push_back(ep);
                p->metrics.endpoint_state(c, ep->label, true);
                log_line(LogLevel::kInfo, "cluster " + cl.config->name + ": endpoint " + ep->label +
                                              " added (DNS, TTL " + std::to_string(r.ttl.count()) +
                                              "s)");
                if (publish_changes) {
                    start_checks(p, c, ep);
                }
                changed = true;
            }
        }
        if (changed && publish_changes) {
            publish(*p);
        }
    }

    void retire_endpoint(Plane& p, std::size_t c, const EndpointPtr& ep) {
        ep->active = false;
        ep->timer.cancel();
        if (ep->probe) {
            ep->probe->close();
        }
        p.metrics.endpoint_removed(c, ep->label);
        log_line(LogLevel::kInfo, "cluster " + p.clusters[c].config->name + ": endpoint " +
                                      ep->label + " removed (no longer in DNS)");
    }

    // ---- health checks ----------------------------------------------------------------------

    void start_checks(const PlanePtr& p, std::size_t c, const EndpointPtr& ep) {
        if (p->config.health_check.enabled) {
            asio::co_spawn(ctx, check_loop(p, c, ep), asio::detached);
        }
    }

    std::chrono::milliseconds jittered(const HealthCheckConfig& hc,
                                       std::chrono::milliseconds base) {
        const auto spread = base.count() * hc.jitter_percent / 100;
        if (spread <= 0) {
            return base;
        }
        std::uniform_int_distribution<std::int64_t> d(-spread, spread);
        return base + std::chrono::milliseconds(d(rng));
    }

    asio::awaitable<void> check_loop(PlanePtr p, std::size_t c, EndpointPtr ep) {
        const auto& hc = p->config.health_check;
        // Spread the first checks so endpoints are not probed in lockstep.
        std::uniform_int_distribution<std::int64_t> first_delay(
            0, std::min<std::int64_t>(hc.interval.count(), 100));
        auto delay = std::chrono::milliseconds(first_delay(rng));
        while (!finished && !p->retired && ep->active) {
            ep->timer.expires_after(delay);
            co_await ep->timer.async_wait(kNoThrow);
            if (finished || p->retired || !ep->active) {
                break;
            }
            ProbeResult result = co_await probe(p, c, ep);
            if (finished || p->retired || !ep->active) {
                break;
            }
            record(*p, c, *ep, result);
            delay = jittered(
                hc, ep->health.up() ? hc.interval : hc.down_interval.value_or(hc.interval));
        }
    }

    asio::awaitable<ProbeResult> probe(PlanePtr p, std::size_t c, EndpointPtr ep) {
        const auto& hc = p->config.health_check;
        const auto start = std::chrono::steady_clock::now();
        auto stream = std::make_shared<beast::tcp_stream>(ctx);
        ep->probe = stream;
        ProbeResult out;
        const auto elapsed = [&] {
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        const auto failed = [&](const char* stage, const error_code& ec, std::string detail = {}) {
            out.seconds = elapsed();
            out.error = std::string(stage) + ": " +
                        (ec == beast::error::timeout
                             ? "timed out after " + std::to_string(hc.timeout.count()) + "ms"
                         : detail.empty() ? ec.message()
                                          : std::move(detail));
            return out;
        };
        const ClusterConfig& cluster = *p->clusters[c].config;
        stream->expires_after(hc.timeout);  // one deadline for connect, handshake and exchange
        auto [cec] = co_await stream->async_connect(ep->address, kNoThrow);
        if (cec) {
            ep->probe.reset();
            co_return failed("connect", cec);
        }
        http::request<http::empty_body> req{http::string_to_verb(hc.method), hc.path, 11};
        req.set(http::field::host, hc.host.value_or(cluster.address.host));
        req.set(http::field::user_agent, "tandem-lb-health-check");
        req.set(http::field::connection, "close");
        beast::flat_buffer buffer(64 * 1024);
        http::response_parser<http::empty_body> parser;
        parser.skip(true);  // the status is all a check needs
        std::pair<const char*, error_code> sent;
        if (p->tls[c]) {
            asio::ssl::stream<beast::tcp_stream&> secure(*stream, *p->tls[c]);
            prepare_tls(secure, cluster);
            auto [hec] = co_await secure.async_handshake(asio::ssl::stream_base::client, kNoThrow);
            if (hec) {
                ep->probe.reset();
                co_return failed("tls", hec, tls_failure(hec, secure.native_handle(), cluster));
            }
            sent = co_await check_exchange(secure, req, buffer, parser);
        } else {
            sent = co_await check_exchange(*stream, req, buffer, parser);
        }
        const auto [stage, ec] = sent;
        error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream->close();
        ep->probe.reset();
        if (ec) {
            co_return failed(stage, ec);
        }
        out.status = parser.get().result_int();
        out.seconds = elapsed();
        out.ok = std::any_of(hc.expect.begin(), hc.expect.end(), [&](const StatusRange& r) {
            return out.status >= r.low && out.status <= r.high;
        });
        if (!out.ok) {
            out.error = "unexpected status " + std::to_string(out.status);
        }
        co_return out;
    }

    void record(Plane& p, std::size_t c, EndpointState& ep, const ProbeResult& result) {
        ep.checked = true;
        ep.last = result;
        ep.last_at = std::chrono::system_clock::now();
        ++ep.checks;
        if (!result.ok) {
            ++ep.failures;
        }
        p.metrics.health_check(c, ep.label, result.ok, result.seconds);
        const auto t = ep.health.record(result.ok);
        if (t == Transition::kNone) {
            return;
        }
        const bool up = t == Transition::kWentUp;
        p.metrics.endpoint_state(c, ep.label, up);
        p.metrics.endpoint_transition(c, ep.label, up);
        log_line(up ? LogLevel::kInfo : LogLevel::kWarn,
                 "cluster " + p.clusters[c].config->name + ": endpoint " + ep.label + " is " +
                     (up ? "UP" : "DOWN") + " (" +
                     (result.ok ? "check passed, status " + std::to_string(result.status)
                                : result.error) +
                     ")");
        publish(p);
    }

    // ---- snapshots --------------------------------------------------------------------------

    SnapshotPtr build_snapshot(Plane& p) {
        auto s = std::make_shared<Snapshot>();
        s->generation = ++generation;
        for (std::size_t c = 0; c < p.clusters.size(); ++c) {
            auto& cl = p.clusters[c];
            Snapshot::Cluster out;
            bool any = false;
            for (const auto& ep : cl.endpoints) {
                out.endpoints.push_back({ep->address, ep->health.up()});
                any = any || ep->health.up();
            }
            if (any != cl.healthy) {
                log_line(
                    any ? LogLevel::kInfo : LogLevel::kWarn,
                    "cluster " + cl.config->name +
                        (any ? " is healthy again" : " is DOWN: no endpoint passes its checks"));
            }
            cl.healthy = any;
            p.metrics.cluster_state(c, any, cl.endpoints.size());
            s->clusters.push_back(std::move(out));
        }
        return s;
    }

    void publish(Plane& p) {
        if (p.retired) {
            return;
        }
        auto s = build_snapshot(p);
        for (auto& w : p.workers) {
            w->publish(s);
        }
    }

    bool any_healthy() const {
        return std::any_of(plane->clusters.begin(), plane->clusters.end(),
                           [](const ClusterState& c) { return c.healthy; });
    }

    // ---- admin ------------------------------------------------------------------------------

    // Until `acceptor` is closed (shutdown, or a reload moved the admin listener).
    asio::awaitable<void> admin_loop(std::shared_ptr<tcp::acceptor> acceptor) {
        while (!finished && acceptor->is_open()) {
            auto [ec, socket] = co_await acceptor->async_accept(kNoThrow);
            if (ec) {
                if (finished || ec == asio::error::operation_aborted || !acceptor->is_open()) {
                    break;
                }
                continue;
            }
            auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
            admin_sessions.insert(stream);
            asio::co_spawn(ctx, admin_session(stream), asio::detached);
        }
    }

    asio::awaitable<void> admin_session(std::shared_ptr<beast::tcp_stream> stream) {
        beast::flat_buffer buffer(16 * 1024);
        for (;;) {
            http::request_parser<http::empty_body> parser;
            parser.header_limit(8 * 1024);
            stream->expires_after(std::chrono::seconds(10));
            auto [ec, n] = co_await http::async_read(*stream, buffer, parser, kNoThrow);
            if (ec) {
                break;
            }
            const auto& req = parser.get();
            auto res = route(req);
            res.keep_alive(req.keep_alive() && !finished);
            res.prepare_payload();
            stream->expires_after(std::chrono::seconds(10));
            auto [wec, wn] = co_await http::async_write(*stream, res, kNoThrow);
            if (wec || !res.keep_alive()) {
                break;
            }
        }
        error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream->close();
        admin_sessions.erase(stream);
    }

    http::response<http::string_body> route(const http::request<http::empty_body>& req) {
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::server, "tandem-lb");
        res.set(http::field::cache_control, "no-store");
        const auto target = std::string_view(req.target().data(), req.target().size());
        const auto path = target.substr(0, target.find('?'));
        const auto text = [&](http::status s, std::string body) {
            res.result(s);
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = std::move(body);
        };
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            text(http::status::method_not_allowed, "only GET and HEAD\n");
            res.set(http::field::allow, "GET, HEAD");
        } else if (path == "/healthz") {
            if (draining) {
                text(http::status::service_unavailable, "draining\n");
            } else if (any_healthy()) {
                text(http::status::ok, "ok\n");
            } else {
                text(http::status::service_unavailable, "no healthy cluster\n");
            }
        } else if (path == "/status") {
            res.set(http::field::content_type, "application/json");
            res.body() = status_json().dump(2) + "\n";
        } else if (path == "/metrics") {
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.body() = plane->metrics.serialize();
        } else {
            text(http::status::not_found, "not found: try /healthz, /status or /metrics\n");
        }
        if (req.method() == http::verb::head) {
            const auto size = res.body().size();
            res.body().clear();
            res.content_length(size);
        }
        return res;
    }

    Json status_json() {
        Json out;
        out["status"] = draining ? "draining" : any_healthy() ? "ok" : "no healthy cluster";
        out["uptime_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count();
        out["listen"] = endpoint_label(live.http.bound);
        out["https"] = live.https ? Json(endpoint_label(live.https->bound)) : Json();
        out["admin"] = admin_label(live);
        out["workers"] = plane->workers.size();
        out["generation"] = generation;
        Json cfg;
        cfg["file"] = config_path;
        cfg["generation"] = plane->id;
        cfg["loaded_at"] = iso8601(plane->loaded_at);
        cfg["previous_generations_finishing"] = retiring.size();
        cfg["watch_interval_ms"] = plane->config.reload.watch_interval.count();
        cfg["reloads"] = reloads;
        if (last_reload) {
            Json r;
            r["at"] = iso8601(last_reload->at);
            r["ok"] = last_reload->ok;
            r["error"] = last_reload->ok ? Json() : Json(last_reload->error);
            cfg["last_reload"] = r;
        } else {
            cfg["last_reload"] = nullptr;
        }
        out["config"] = cfg;
        std::int64_t connections = 0;
        for (const auto& p : retiring) {
            connections += p->metrics.client_connections();
        }
        out["client_connections"] = plane->metrics.client_connections() + connections;
        Json list = Json::array();
        for (std::size_t c = 0; c < plane->clusters.size(); ++c) {
            const auto& cl = plane->clusters[c];
            Json j;
            j["name"] = cl.config->name;
            j["address"] = cl.config->address.to_string();
            j["weight"] = cl.config->weight;
            j["backup"] = cl.config->backup;
            j["healthy"] = cl.healthy;
            j["in_flight"] = plane->metrics.in_flight(c);
            j["pool_idle"] = plane->metrics.pool_idle(c);
            if (!cl.is_ip) {
                Json dns;
                dns["host"] = cl.config->address.host;
                dns["last_resolution"] = iso8601(cl.dns_at);
                dns["ttl_seconds"] = cl.dns_ttl.count();
                dns["failures"] = cl.dns_failures;
                dns["error"] = cl.dns_error.empty() ? Json() : Json(cl.dns_error);
                j["dns"] = dns;
            }
            Json eps = Json::array();
            for (const auto& ep : cl.endpoints) {
                Json e;
                e["address"] = ep->label;
                e["healthy"] = ep->health.up();
                e["health_counter"] = ep->health.counter();
                e["checks"] = ep->checks;
                e["failed_checks"] = ep->failures;
                if (ep->checked) {
                    Json last;
                    last["at"] = iso8601(ep->last_at);
                    last["passed"] = ep->last.ok;
                    last["status"] = ep->last.status;
                    last["latency_ms"] = std::round(ep->last.seconds * 100000.0) / 100.0;
                    last["error"] = ep->last.error.empty() ? Json() : Json(ep->last.error);
                    e["last_check"] = last;
                } else {
                    e["last_check"] = nullptr;
                }
                eps.push_back(e);
            }
            j["endpoints"] = eps;
            list.push_back(j);
        }
        out["clusters"] = list;
        return out;
    }

    // ---- signals and shutdown ---------------------------------------------------------------

    std::vector<PlanePtr> planes() const {
        auto all = retiring;
        all.push_back(plane);
        return all;
    }

    void on_signal(const error_code& ec, int sig) {
        if (ec || finished) {
            return;
        }
        if (sig == SIGHUP) {
            if (!draining) {
                asio::co_spawn(ctx, reload("SIGHUP"), asio::detached);
            }
        } else if (draining) {
            log_line(LogLevel::kWarn, "second signal: cancelling in-flight requests now");
            for (const auto& p : planes()) {
                for (auto& w : p->workers) {
                    w->stop_now();
                }
            }
        } else {
            draining = true;
            log_line(LogLevel::kInfo,
                     std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                         ": draining; no new connections, in-flight requests get " +
                         std::to_string(plane->config.timeouts.drain.count()) + "ms to finish");
            for (const auto& p : planes()) {
                for (std::size_t i = 0; i < p->workers.size(); ++i) {
                    p->workers[i]->drain(worker_done(p, i));
                }
            }
            drain_timer.expires_after(plane->config.timeouts.drain);
            drain_timer.async_wait([this](error_code tec) {
                if (tec || finished) {
                    return;
                }
                log_line(LogLevel::kWarn, "drain deadline passed: cancelling what is left");
                for (const auto& p : planes()) {
                    for (auto& w : p->workers) {
                        w->stop_now();
                    }
                }
            });
        }
        signals.async_wait([this](error_code e, int s) { on_signal(e, s); });
    }

    void finish() {
        if (finished) {
            return;
        }
        finished = true;
        log_line(LogLevel::kInfo, "drained; exiting");
        error_code ignored;
        drain_timer.cancel();
        watch_timer.cancel();
        signals.cancel(ignored);
        live.admin->close(ignored);
        for (const auto& s : admin_sessions) {
            s->socket().cancel(ignored);
        }
        stop_loops(*plane);
        for (auto* t : resolving) {
            t->cancel();
        }
        for (const auto& p : planes()) {
            p->resolver.reset();  // (the resolutions in flight were woken above)
        }
    }
};

Server::Server(LbConfig config, std::string config_path)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(config_path))) {}

Server::~Server() = default;

int Server::run(std::ostream& ready) {
    auto& s = *impl_;
    std::string error;
    try {
        s.plane = s.make_plane(s.first, nullptr);
    } catch (const std::runtime_error& e) {
        log_line(LogLevel::kError, e.what());
        return 1;
    }
    if (!s.open_listeners(s.first, Impl::threads_of(s.first), nullptr, s.live, error)) {
        log_line(LogLevel::kError, error);
        return 1;
    }
    s.live.opened.clear();
    asio::co_spawn(s.ctx, s.startup(ready), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    s.ctx.run();
    for (const auto& p : s.planes()) {
        for (auto& w : p->workers) {
            w->join();
        }
    }
    s.close_listeners();
    return s.exit_code;
}

}  // namespace lb
