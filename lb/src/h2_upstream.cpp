// HTTP/2 connections to h2 clusters: the reader that feeds the client session and hands each
// stream's events to its call, the writer, and one worker's set of them per endpoint. Errors
// are values; nothing here throws on purpose.
#include "h2_upstream.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

namespace lb {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kWriteSize = 64 * 1024;
constexpr std::uint32_t kCancel = 8;

}  // namespace

H2Upstream::H2Upstream(const Executor& executor,
                       const LbConfig& config,
                       WorkerMetrics& metrics,
                       const Choice& where,
                       UpstreamPtr up)
    : config_(config),
      metrics_(metrics),
      where_(where),
      up_(std::move(up)),
      writer_(executor),
      writer_done_(executor),
      idle_since_(coarse_now()) {}

H2Upstream::~H2Upstream() = default;

std::shared_ptr<H2Upstream> H2Upstream::start(const Executor& executor,
                                              const LbConfig& config,
                                              WorkerMetrics& metrics,
                                              const Choice& where,
                                              UpstreamPtr up,
                                              std::function<void(H2Upstream*)> on_end) {
    auto c = std::make_shared<H2Upstream>(executor, config, metrics, where, std::move(up));
    c->session_ = H2Session::client(h2_limits(config.http2, request_id_field(config)), c->events());
    if (!c->session_) {
        return nullptr;
    }
    c->on_end_ = std::move(on_end);
    metrics.h2_upstream_connection(where.cluster, 1);
    asio::co_spawn(executor, c->write_loop(c), asio::detached);
    asio::co_spawn(executor, c->read_loop(c), asio::detached);
    return c;
}

H2Session::Events H2Upstream::events() {
    H2Session::Events ev;
    ev.response = [this](H2ResponseHead head) {
        if (const auto it = calls_.find(head.stream); it != calls_.end()) {
            it->second->head = std::move(head);
            it->second->signal.notify();
        }
    };
    ev.body = [this](std::int32_t id, std::string_view data) {
        const auto it = calls_.find(id);
        if (it == calls_.end()) {
            session_->consume(id, data.size());  // nobody wants it: the window reopens
            return;
        }
        it->second->body.append(data);
        it->second->signal.notify();
    };
    ev.trailers = [this](std::int32_t id, std::vector<H2Field> fields) {
        if (const auto it = calls_.find(id); it != calls_.end()) {
            it->second->trailers = std::move(fields);
        }
    };
    ev.end = [this](std::int32_t id) {
        if (const auto it = calls_.find(id); it != calls_.end()) {
            it->second->ended = true;
            it->second->signal.notify();
        }
    };
    ev.closed = [this](std::int32_t id, std::uint32_t error) {
        if (const auto it = calls_.find(id); it != calls_.end()) {
            it->second->closed = true;
            it->second->error = error;
            it->second->signal.notify();
            it->second->window.notify();
        }
    };
    return ev;
}

std::int32_t H2Upstream::open(const H2RequestHead& head, std::shared_ptr<H2Call> call) {
    if (over_ || going_away_) {
        return 0;
    }
    const std::int32_t id = session_->request(head);
    if (id <= 0) {
        return 0;
    }
    calls_[id] = std::move(call);
    writer_.notify();
    return id;
}

bool H2Upstream::body(std::int32_t stream, std::string_view data, bool last) {
    const bool ok = !over_ && session_->body(stream, data, last);
    writer_.notify();
    return ok;
}

bool H2Upstream::trailers(std::int32_t stream, const std::vector<H2Field>& fields) {
    const bool ok = !over_ && session_->trailers(stream, fields);
    writer_.notify();
    return ok;
}

std::size_t H2Upstream::buffered(std::int32_t stream) const {
    return session_->buffered(stream);
}

void H2Upstream::consume(std::int32_t stream, std::size_t bytes) {
    if (!over_ && bytes > 0) {
        session_->consume(stream, bytes);
        writer_.notify();
    }
}

void H2Upstream::release(std::int32_t stream) {
    const auto it = calls_.find(stream);
    if (it == calls_.end()) {
        return;
    }
    auto call = std::move(it->second);
    calls_.erase(it);
    call->window.notify();  // (a body waiting for the window stops)
    if (!over_) {
        session_->consume(stream, call->body.size());
        if (!call->closed) {
            session_->reset(stream, kCancel);
        }
        writer_.notify();
    }
    if (calls_.empty()) {
        idle_since_ = coarse_now();
        if (retiring_) {
            go_away();
        }
    }
}

void H2Upstream::retire(bool idle_now) {
    retiring_ = true;
    if (idle_now && calls_.empty()) {
        go_away();
    }
}

bool H2Upstream::usable() const {
    if (over_ || going_away_ || !session_->can_open()) {
        return false;
    }
    const std::uint32_t max =
        std::min(session_->peer_max_streams(), config_.http2.max_concurrent_streams);
    return calls_.size() < max;
}

void H2Upstream::go_away() {
    if (!going_away_ && !over_) {
        going_away_ = true;
        session_->goaway(0);
        writer_.notify();
    }
}

void H2Upstream::stop() {
    if (!over_) {
        over_ = true;
        error_code ignored;
        up_->socket.cancel(ignored);
        writer_.notify();
    }
}

void H2Upstream::wake_senders() {
    for (auto& [id, call] : calls_) {
        call->window.notify();
    }
}

void H2Upstream::end_calls() {
    for (auto& [id, call] : calls_) {
        if (!call->closed) {
            call->closed = true;
            call->lost = true;
            call->signal.notify();
            call->window.notify();
        }
    }
}

// Reads until the connection breaks, the cluster closes it, or it went away with no stream
// left (then the GOAWAY was written: the writer ends first).
// (`self`, unnamed: the frame's copy keeps the connection alive while it reads)
Task<void> H2Upstream::read_loop(std::shared_ptr<H2Upstream> /*self*/) {
    std::string in(kReadSize, '\0');
    for (;;) {
        if (over_ || (going_away_ && calls_.empty()) || !session_->alive()) {
            break;
        }
        std::size_t n = 0;
        error_code ec;
        if (up_->tls) {
            auto [e, got] = co_await up_->tls->async_read_some(asio::buffer(in), kNoThrow);
            ec = e;
            n = got;
        } else {
            auto [e, got] = co_await up_->socket.async_read_some(asio::buffer(in), kNoThrow);
            ec = e;
            n = got;
        }
        if (ec == asio::error::operation_aborted && !over_) {
            continue;  // woken: going away with nothing open
        }
        if (ec) {
            break;
        }
        if (!session_->receive(std::string_view(in.data(), n))) {
            break;  // a protocol error: the GOAWAY is queued, the writer sends it
        }
        writer_.notify();
    }
    // What is left to send (a GOAWAY) goes within the write timeout, then the streams end.
    going_away_ = true;
    writer_.notify();
    co_await writer_done_.wait(coarse_now() + config_.timeouts.upstream_response);
    over_ = true;
    error_code ignored;
    up_->socket.cancel(ignored);
    end_calls();
    close_quietly(up_->socket);
    metrics_.h2_upstream_connection(where_.cluster, -1);
    if (on_end_) {
        auto on_end = std::move(on_end_);
        on_end(this);
    }
}

// Sends what the session produces; a cluster that stops reading for timeouts.upstreamResponse
// ends the connection (its streams fail).
Task<void> H2Upstream::write_loop(std::shared_ptr<H2Upstream> self) {
    Timer guard(up_->socket.get_executor());
    while (!over_) {
        session_->output(out_, kWriteSize);
        if (out_.empty()) {
            wake_senders();
            if (going_away_ && (calls_.empty() || !session_->alive())) {
                break;
            }
            if (calls_.empty() && out_.capacity() > 4096) {
                std::string().swap(out_);  // an idle connection holds no write buffer
            }
            co_await writer_.wait(Clock::time_point::max());
            continue;
        }
        // (a timer for the write: one per connection, not per request)
        guard.expires_after(config_.timeouts.upstream_response);
        write_timed_out_ = false;
        guard.async_wait([self](error_code e) {
            if (!e) {
                self->write_timed_out_ = true;
                error_code ignored;
                self->up_->socket.cancel(ignored);
            }
        });
        error_code ec;
        if (up_->tls) {
            auto [e, n] = co_await asio::async_write(*up_->tls, asio::buffer(out_), kNoThrow);
            ec = e;
        } else {
            auto [e, n] = co_await asio::async_write(up_->socket, asio::buffer(out_), kNoThrow);
            ec = e;
        }
        guard.cancel();
        if (ec || write_timed_out_) {
            over_ = true;  // the reader stops too, and the streams fail
            error_code ignored;
            up_->socket.cancel(ignored);
            break;
        }
        wake_senders();
    }
    if (going_away_ && calls_.empty() && !over_) {
        error_code ignored;
        up_->socket.cancel(ignored);  // the reader waits for nothing more
    }
    writer_done_.notify();
}

// ---- one worker's connections -------------------------------------------------------------------

std::shared_ptr<H2Upstream> H2Upstreams::find(const Choice& choice) const {
    const auto it = conns_.find(Key{choice.cluster, choice.address});
    if (it == conns_.end()) {
        return nullptr;
    }
    std::shared_ptr<H2Upstream> best;
    for (const auto& c : it->second) {
        if (c->usable() && (!best || c->streams() > best->streams())) {
            best = c;
        }
    }
    return best;
}

bool H2Upstreams::connecting(const Choice& choice) const {
    return connecting_.contains(Key{choice.cluster, choice.address});
}

Task<void> H2Upstreams::wait_for_connect(const Choice& choice) {
    const auto it = connecting_.find(Key{choice.cluster, choice.address});
    if (it != connecting_.end()) {
        const std::shared_ptr<Timer> timer = it->second;  // (the connector ends it: cancel())
        co_await timer->async_wait(kNoThrow);
    }
}

void H2Upstreams::begin_connect(const Choice& choice, Clock::time_point deadline) {
    auto timer = std::make_shared<Timer>(executor_);
    timer->expires_at(deadline);
    connecting_[Key{choice.cluster, choice.address}] = std::move(timer);
}

void H2Upstreams::end_connect(const Choice& choice) {
    const auto it = connecting_.find(Key{choice.cluster, choice.address});
    if (it != connecting_.end()) {
        it->second->cancel();
        connecting_.erase(it);
    }
}

std::shared_ptr<H2Upstream> H2Upstreams::add(const Choice& choice, UpstreamPtr up) {
    const Key key{choice.cluster, choice.address};
    auto c = H2Upstream::start(
        executor_, config_, metrics_, choice, std::move(up), [this, key](H2Upstream* gone) {
            const auto it = conns_.find(key);
            if (it == conns_.end()) {
                return;
            }
            std::erase_if(it->second, [gone](const auto& x) { return x.get() == gone; });
            if (it->second.empty()) {
                conns_.erase(it);
            }
        });
    if (c) {
        conns_[key].push_back(c);
        if (closed_) {
            c->retire(false);  // (opened for a request still under way: it goes after it)
        }
    }
    return c;
}

void H2Upstreams::apply(const Snapshot& snapshot) {
    for (auto& [key, list] : conns_) {
        bool keep = false;
        if (key.cluster < snapshot.clusters.size()) {
            const auto& cluster = snapshot.clusters[key.cluster];
            for (const auto& e : cluster.endpoints) {
                if (e.address == key.address) {
                    keep = e.healthy && cluster.admin != AdminState::kMaint;
                }
            }
        }
        if (!keep) {
            for (auto& c : list) {
                c->go_away();
            }
        }
    }
}

void H2Upstreams::drop(const Choice& choice) {
    if (const auto it = conns_.find(Key{choice.cluster, choice.address}); it != conns_.end()) {
        for (auto& c : it->second) {
            c->go_away();
        }
    }
}

void H2Upstreams::prune(Clock::time_point now) {
    for (auto& [key, list] : conns_) {
        for (auto& c : list) {
            if (c->streams() == 0 && now - c->idle_since() > config_.pool.idle_timeout) {
                c->go_away();
            }
        }
    }
}

void H2Upstreams::close() {
    closed_ = true;
    for (auto& [key, list] : conns_) {
        for (auto& c : list) {
            c->retire(true);
        }
    }
}

void H2Upstreams::stop() {
    closed_ = true;
    for (auto& [key, list] : conns_) {
        for (auto& c : list) {
            c->stop();
        }
    }
}

}  // namespace lb
