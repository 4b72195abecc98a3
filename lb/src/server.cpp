// The main context: wires the listeners, the planes, the health checker, DNS refreshes, the
// admin listener and the configuration watch; runs startup, reloads (generations of workers),
// signals and the graceful shutdown.
#include "lb/server.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <unistd.h>

#include "access_log.hpp"
#include "admin.hpp"
#include "config_watch.hpp"
#include "dns_refresh.hpp"
#include "endpoint_label.hpp"
#include "health_checker.hpp"
#include "listeners.hpp"
#include "log.hpp"
#include "plane.hpp"
#include "worker.hpp"

namespace lb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct Server::Impl {
    // A configuration generation at work: its plane and the workers routing on it. A reload
    // starts the next one beside it; the old one hands its connections over and goes away when
    // its last request has finished.
    struct Generation {
        Generation(asio::io_context& ctx, PlanePtr p) : plane(std::move(p)), drain_timer(ctx) {}
        PlanePtr plane;  // (declared first: the workers point into it)
        std::vector<std::unique_ptr<Worker>> workers;
        asio::steady_timer drain_timer;
        std::vector<bool> done;      // per worker: no session left (drained or handed over)
        bool requests_done = false;  // every worker done
    };
    using GenerationPtr = std::shared_ptr<Generation>;

    Impl(LbConfig c, std::string path)
        : config_path(std::move(path)), first(std::move(c)), signals(ctx, SIGTERM, SIGINT, SIGHUP) {
        signals.add(SIGUSR1);  // (the constructor takes three)
    }

    std::string config_path;
    LbConfig first;  // the configuration at startup
    asio::io_context ctx{1};
    std::shared_ptr<MetricsRegistry> registry = make_metrics_registry();
    Listeners listeners{ctx};
    HealthChecker checker{ctx, [this](Plane& p) { publish(p); }};
    DnsRefresh dns{ctx,
                   [this](const PlanePtr& p, std::size_t c, const std::vector<EndpointPtr>& added) {
                       for (const auto& ep : added) {
                           checker.start(p, c, ep);
                       }
                       publish(*p);
                   }};
    Admin admin{ctx, [this] { return status(); },
                [this](const std::string& c, AdminState s) { return set_state(c, s); }};
    ConfigWatch watch{ctx, config_path, [this](std::string changed) { return reload(changed); }};
    // The access log's file and writer thread (once a configuration turns it on): it outlives
    // the generations, whose workers hold its buffers.
    std::unique_ptr<AccessLogWriter> access_log;
    std::atomic<std::uint64_t> access_log_errors{0};
    GenerationPtr current;
    std::vector<GenerationPtr> retiring;  // earlier generations still finishing requests
    // Workers of earlier generations still taking what arrives on a socket given up
    // (Worker::GiveUp::kAfterGrace); while there are, new connections are steered.
    std::size_t giving_up = 0;
    asio::signal_set signals;
    asio::steady_timer drain_timer{ctx};
    std::uint64_t snapshots = 0;          // snapshots published
    std::uint64_t config_generation = 0;  // configurations loaded
    bool draining = false;
    bool finished = false;
    bool reloading = false;
    bool reload_again = false;
    std::optional<ReloadOutcome> last_reload;
    std::uint64_t reloads = 0;  // reloads handled (applied or not)
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    int exit_code = 0;

    // ---- generations ------------------------------------------------------------------------

    // Workers on duplicates of `l`'s sockets, the first snapshot, checks and DNS refreshes.
    std::expected<void, std::string> start(Generation& g, const ListenerSet& l) {
        const Plane& p = *g.plane;
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
                g.workers.clear();
                return std::unexpected("duplicating a listening socket: " + why);
            }
            const auto& log = p.config.access_log;
            g.workers.push_back(std::make_unique<Worker>(
                i, p.config, p.tls, g.plane->metrics.worker(i), fd, l.http.bound.protocol(),
                https_fd, l.https ? l.https->bound.protocol() : tcp::v4(), p.server_tls.get(),
                log.enabled ? access_log->sink(log.buffer_bytes) : nullptr));
        }
        g.done.assign(g.workers.size(), false);
        auto snapshot = g.plane->snapshot(++snapshots);
        for (auto& w : g.workers) {
            w->start(snapshot);
        }
        for (std::size_t c = 0; c < p.clusters.size(); ++c) {
            for (const auto& ep : p.clusters[c].endpoints) {
                g.plane->metrics.endpoint_state(c, ep->label, ep->health.up());  // (from the start)
                checker.start(g.plane, c, ep);
            }
        }
        dns.start(g.plane);
        return {};
    }

    // A new snapshot of the current generation's plane to its workers (a health transition, a
    // DNS answer that changed the endpoints).
    void publish(Plane& p) {
        if (p.retired || !current || &p != current->plane.get()) {
            return;
        }
        auto s = p.snapshot(++snapshots);
        for (auto& w : current->workers) {
            w->publish(s);
        }
    }

    std::vector<GenerationPtr> generations() const {
        auto all = retiring;
        all.push_back(current);
        return all;
    }

    // The previous generation: checks and DNS refreshes stop now; its workers stop accepting and
    // pass each connection on between requests; requests in flight get its drain timeout. Its
    // workers beyond the next generation's count, and all of them when a listener moved, first
    // take what is queued on the sockets given up and pass it on.
    void retire(const GenerationPtr& prev, Generation& next, bool http_moved, bool https_moved) {
        Plane& old = *prev->plane;
        old.stop();
        for (std::size_t c = 0; c < old.clusters.size(); ++c) {
            const auto& name = old.clusters[c].config->name;
            if (std::none_of(next.plane->clusters.begin(), next.plane->clusters.end(),
                             [&](const ClusterState& n) { return n.config->name == name; })) {
                std::vector<std::string> labels;
                for (const auto& ep : old.clusters[c].endpoints) {
                    labels.push_back(ep->label);
                }
                old.metrics.cluster_removed(c, labels);
            }
        }
        retiring.push_back(prev);
        using GiveUp = Worker::GiveUp;
        const auto n = next.workers.size();
        for (std::size_t i = 0; i < prev->workers.size(); ++i) {
            const auto how = [&](bool moved) {
                return moved ? GiveUp::kNow : i >= n ? GiveUp::kAfterGrace : GiveUp::kNo;
            };
            const auto http_how = how(http_moved);
            const auto https_how = how(https_moved);
            std::function<void()> given_up;
            if (http_how == GiveUp::kAfterGrace || https_how == GiveUp::kAfterGrace) {
                ++giving_up;
                given_up = [this] {
                    asio::post(ctx, [this] {
                        if (--giving_up == 0 && !finished) {
                            listeners.steer(false);
                        }
                    });
                };
            }
            prev->workers[i]->hand_over(*next.workers[i % n], worker_done(prev, i), http_how,
                                        https_how, std::move(given_up));
        }
        prev->drain_timer.expires_after(old.config.timeouts.drain);
        prev->drain_timer.async_wait([prev](error_code ec) {
            if (ec || prev->requests_done) {
                return;
            }
            log_line(LogLevel::kWarn, "generation " + std::to_string(prev->plane->id) +
                                          ": drain deadline passed after the reload; cancelling "
                                          "its remaining requests");
            for (auto& w : prev->workers) {
                w->stop_now();
            }
        });
    }

    // Called on a worker's thread when it has no session left; counted on the main context.
    std::function<void()> worker_done(const GenerationPtr& g, std::size_t worker) {
        return [this, g, worker] {
            asio::post(ctx, [this, g, worker] { on_worker_done(g, worker); });
        };
    }

    void on_worker_done(const GenerationPtr& g, std::size_t worker) {
        if (g->done[worker]) {
            return;  // (handed over, then drained at shutdown: reported twice)
        }
        g->done[worker] = true;
        if (std::find(g->done.begin(), g->done.end(), false) != g->done.end()) {
            return;
        }
        g->requests_done = true;
        g->drain_timer.cancel();
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
                     "generation " + std::to_string(old->plane->id) + " finished its last request");
        }
        if (draining && current->requests_done && retiring.empty()) {
            finish();
        }
    }

    // ---- startup ----------------------------------------------------------------------------

    asio::awaitable<void> startup(std::ostream& ready) {
        const auto& plane = current->plane;
        config_generation = plane->id;
        co_await dns.resolve_all(plane);
        if (auto ok = start(*current, listeners.live()); !ok) {
            log_line(LogLevel::kError, ok.error());
            exit_code = 1;
            co_return;
        }
        admin.serve(listeners.live().admin);
        watch.read(plane->config);
        watch.set_interval(plane->config.reload.watch_interval);
        watch.start();
        signals.async_wait([this](error_code ec, int sig) { on_signal(ec, sig); });
        const auto& live = listeners.live();
        ready << "tandem-lb ready listen=" << endpoint_label(live.http.bound)
              << " admin=" << endpoint_label(live.admin->local_endpoint())
              << " workers=" << current->workers.size()
              << (live.https ? " https=" + endpoint_label(live.https->bound) : "") << std::endl;
        log_line(LogLevel::kInfo, "listening on " + listeners.describe() + ", " +
                                      std::to_string(current->workers.size()) + " workers, " +
                                      std::to_string(plane->clusters.size()) + " clusters");
    }

    // ---- the access log ------------------------------------------------------------------------

    // The writer on `c`'s file from now on (started with the first configuration that has one).
    std::expected<void, std::string> use_access_log(const LbConfig& c) {
        if (!c.access_log.enabled) {
            return {};
        }
        if (!access_log) {
            access_log = std::make_unique<AccessLogWriter>([this](const std::string& why) {
                count_access_log_write_error(*registry);
                const auto n = ++access_log_errors;
                if (n == 1 || n % 1000 == 0) {
                    log_line(LogLevel::kError, "writing the access log failed (" +
                                                   std::to_string(n) + " times so far): " + why);
                }
            });
        }
        if (c.access_log.path == access_log->path()) {
            return access_log->reopen();  // (a reload reopens it, as SIGUSR1 does: logrotate)
        }
        return access_log->open(c.access_log.path);
    }

    // ---- reload (SIGHUP, or a watched file changed) ---------------------------------------

    void reload_failed(std::string why) {
        current->plane->metrics.reload(false);
        log_line(LogLevel::kError, "reload of " + config_path + " failed: " + why +
                                       "; still serving generation " +
                                       std::to_string(current->plane->id));
        last_reload = ReloadOutcome{std::chrono::system_clock::now(), false, std::move(why)};
        ++reloads;
    }

    // `why`: "SIGHUP", or the files the watcher saw change.
    asio::awaitable<void> reload(std::string why) {
        if (reloading) {
            reload_again = true;  // once the current one is done, read the file again
            co_return;
        }
        reloading = true;
        watch.pause(true);
        do {
            reload_again = false;
            co_await reload_once(why);
            why = "SIGHUP";
        } while (reload_again && !draining && !finished);
        reloading = false;
        watch.pause(false);
    }

    asio::awaitable<void> reload_once(const std::string& cause) {
        log_line(LogLevel::kInfo, cause + ": reloading " + config_path);
        // Read before the file is parsed: a change made meanwhile is seen by the next look.
        watch.read(current->plane->config);
        auto loaded = load_lb_config(config_path);
        if (!loaded) {
            const auto why = config::errors_in_one_line(loaded.error());
            reload_failed(why.empty() ? "the file is not valid" : why);
            co_return;
        }
        auto made = make_plane(ctx, std::move(*loaded), config_generation + 1, registry,
                               current->plane.get());
        if (!made) {
            reload_failed(made.error());
            co_return;
        }
        auto next = std::make_shared<Generation>(ctx, std::move(*made));
        Plane& plane = *next->plane;
        inherit(ctx, plane, *current->plane);
        co_await dns.resolve_all(next->plane);
        if (draining || finished) {
            co_return;  // SIGTERM meanwhile: nothing was started
        }
        if (auto ok = check_access_log(plane.config); !ok) {
            reload_failed(ok.error());
            co_return;
        }
        if (plane.config.access_log.enabled && !access_log) {
            (void)use_access_log(plane.config);  // (the writer, for start() to take buffers of)
        }
        auto change = listeners.prepare(plane.config, threads_of(plane.config));
        if (!change) {
            reload_failed(change.error());
            co_return;
        }
        if (auto ok = start(*next, change->next); !ok) {
            listeners.abandon(*change);
            reload_failed(ok.error());
            co_return;
        }
        config_generation = plane.id;
        if (auto ok = use_access_log(plane.config); !ok) {
            log_line(LogLevel::kError,
                     ok.error() + "; the access log stays at " + access_log->path());
        }
        watch.read(plane.config);  // the files it names now
        watch.set_interval(plane.config.reload.watch_interval);
        auto prev = std::exchange(current, next);
        std::string moved = listeners.describe_moves(*change);
        if (prev->workers.size() != next->workers.size()) {
            moved += "; workers " + std::to_string(prev->workers.size()) + " -> " +
                     std::to_string(next->workers.size());
        }
        if (prev->plane->resolver != plane.resolver) {
            moved += "; DNS resolver: new dns.servers/timeout";
        }
        const bool http_moved = change->http_moved;
        const bool https_moved = change->https_moved;
        if (listeners.commit(std::move(*change))) {
            admin.serve(listeners.live().admin);
        }
        const auto before = giving_up;
        retire(prev, *next, http_moved, https_moved);
        if (giving_up > 0 || before > 0) {
            listeners.steer(giving_up > 0);  // (the counts may have changed again)
        }
        plane.metrics.reload(true);
        last_reload = ReloadOutcome{std::chrono::system_clock::now(), true, {}};
        ++reloads;
        log_line(LogLevel::kInfo, "reloaded " + config_path + ": generation " +
                                      std::to_string(plane.id) + ", " +
                                      std::to_string(plane.clusters.size()) + " clusters (" +
                                      describe_changes(*prev->plane, plane) + ")" + moved +
                                      "; connections move over as they finish their requests");
    }

    // ---- admin ------------------------------------------------------------------------------

    StatusView status() const {
        StatusView v{draining,        std::chrono::steady_clock::now() - started,
                     *current->plane, {},
                     listeners,       snapshots,
                     config_path,     reloads,
                     last_reload};
        for (const auto& g : retiring) {
            v.finishing.push_back(g->plane.get());
        }
        return v;
    }

    // The runtime API: a cluster's state on the current plane (a reload carries it over by
    // name), published to the workers at once.
    AdminState set_state(const std::string& cluster, AdminState state) {
        Plane& plane = *current->plane;
        for (auto& cl : plane.clusters) {
            if (cl.config->name != cluster) {
                continue;
            }
            const auto previous = std::exchange(cl.admin, state);
            if (previous != state) {
                log_line(LogLevel::kInfo, "cluster " + cluster + " set to " +
                                              std::string(admin_state_name(state)) + " (was " +
                                              std::string(admin_state_name(previous)) +
                                              ") through the admin API");
                publish(plane);
            }
            return previous;
        }
        return AdminState::kReady;
    }

    // ---- signals and shutdown ---------------------------------------------------------------

    void stop_now() {
        for (const auto& g : generations()) {
            for (auto& w : g->workers) {
                w->stop_now();
            }
        }
    }

    void on_signal(const error_code& ec, int sig) {
        if (ec || finished) {
            return;
        }
        if (sig == SIGHUP) {
            if (!draining) {
                asio::co_spawn(ctx, reload("SIGHUP"), asio::detached);
            }
        } else if (sig == SIGUSR1) {
            // logrotate moved the access log away: a new file under the same name.
            if (access_log) {
                if (auto ok = access_log->reopen(); !ok) {
                    log_line(LogLevel::kError, ok.error() + "; still writing the previous file");
                } else {
                    log_line(LogLevel::kInfo,
                             "SIGUSR1: reopened the access log " + access_log->path());
                }
            }
        } else if (draining) {
            log_line(LogLevel::kWarn, "second signal: cancelling in-flight requests now");
            stop_now();
        } else {
            draining = true;
            watch.stop();
            // New connections are refused from now on: the server's descriptors of the
            // listening sockets close, and each worker takes what is queued on its own and
            // closes it when the drain reaches it.
            listeners.close();
            log_line(LogLevel::kInfo,
                     std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                         ": draining; no new connections, in-flight requests get " +
                         std::to_string(current->plane->config.timeouts.drain.count()) +
                         "ms to finish");
            for (const auto& g : generations()) {
                for (std::size_t i = 0; i < g->workers.size(); ++i) {
                    g->workers[i]->drain(worker_done(g, i));
                }
            }
            drain_timer.expires_after(current->plane->config.timeouts.drain);
            drain_timer.async_wait([this](error_code tec) {
                if (tec || finished) {
                    return;
                }
                log_line(LogLevel::kWarn, "drain deadline passed: cancelling what is left");
                stop_now();
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
        watch.stop();
        signals.cancel(ignored);
        admin.stop();
        checker.stop();
        current->plane->stop();
        dns.stop();  // (wakes the resolutions in flight)
        for (const auto& g : generations()) {
            g->plane->resolver.reset();
        }
    }
};

Server::Server(LbConfig config, std::string config_path)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(config_path))) {}

Server::~Server() = default;

int Server::run(std::ostream& ready) {
    auto& s = *impl_;
    auto plane = make_plane(s.ctx, s.first, 1, s.registry, nullptr);
    if (!plane) {
        log_line(LogLevel::kError, plane.error());
        return 1;
    }
    s.current = std::make_shared<Impl::Generation>(s.ctx, std::move(*plane));
    if (auto ok = s.use_access_log(s.first); !ok) {
        log_line(LogLevel::kError, ok.error());
        return 1;
    }
    auto change = s.listeners.prepare(s.first, threads_of(s.first));
    if (!change) {
        log_line(LogLevel::kError, change.error());
        return 1;
    }
    s.listeners.commit(std::move(*change));
    asio::co_spawn(s.ctx, s.startup(ready), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    s.ctx.run();
    for (const auto& g : s.generations()) {
        for (auto& w : g->workers) {
            w->join();
        }
    }
    s.listeners.close();
    return s.exit_code;
}

}  // namespace lb
