// A request forwarded to an h2 cluster as a stream: the tries (Attempt's rules, plus what
// HTTP/2 says about refused streams), the request body pumped on by a coroutine of its own, the
// response relayed to the client as it comes. Errors are values; nothing here throws on purpose.
#include "h2_forward.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace lb {

namespace asio = boost::asio;

namespace {

// Request body bytes kept for a retry until the response head comes (a gRPC message, a small
// PUT); beyond it a request is retried only when nothing of its body went.
constexpr std::size_t kReplay = 64 * 1024;
// Request body bytes waiting for the cluster's window before the pump waits.
constexpr std::size_t kMaxBuffered = 64 * 1024;

// The request body's way to the cluster: the stream it goes to now (none between tries) and
// what was sent of it, for a retry.
struct Pump {
    explicit Pump(const Executor& executor) : wake(executor), done(executor) {}
    std::shared_ptr<H2Upstream> conn;
    std::int32_t id = 0;
    std::shared_ptr<H2Call> call;
    std::string replay;  // everything sent so far, while it fits kReplay
    std::vector<H2Field> replay_trailers;
    bool replay_last = false;
    bool replayable = true;
    bool sent = false;     // something of the body went to a cluster
    bool aborted = false;  // the origin has no more to give: the client went, or was answered
    bool stalled = false;  // the cluster did not take the body within timeouts.upstreamResponse
    bool stop = false;
    bool running = false;
    Signal wake;  // a stream to send to
    Signal done;
    // Whether the request can go again whole.
    [[nodiscard]] bool can_replay() const { return !sent || replayable; }
};

void send_piece(Pump& p, std::string_view data, bool last, const std::vector<H2Field>& trailers) {
    p.conn->body(p.id, data, last && trailers.empty());
    if (last && !trailers.empty()) {
        p.conn->trailers(p.id, trailers);
    }
    p.sent = true;
    if (p.replayable && p.replay.size() + data.size() <= kReplay) {
        p.replay.append(data);
        p.replay_last = last;
        p.replay_trailers = trailers;
    } else {
        p.replayable = false;
        std::string().swap(p.replay);
    }
}

// The next try's stream: what was sent on the last one goes again first.
void retarget(Pump& p,
              std::shared_ptr<H2Upstream> conn,
              std::int32_t id,
              std::shared_ptr<H2Call> call) {
    p.conn = std::move(conn);
    p.id = id;
    p.call = std::move(call);
    if (p.sent && p.replayable) {
        p.conn->body(p.id, p.replay, p.replay_last && p.replay_trailers.empty());
        if (p.replay_last && !p.replay_trailers.empty()) {
            p.conn->trailers(p.id, p.replay_trailers);
        }
    }
    p.wake.notify();
}

Task<void> pump(std::shared_ptr<Pump> p, H2Origin& origin, const LbConfig& config, H2Forward& f) {
    for (bool last = false; !last && !p->stop;) {
        auto piece = co_await origin.body();
        if (p->stop) {
            break;
        }
        if (!piece) {
            p->aborted = true;
            if (p->call) {
                p->call->signal.notify();
            }
            break;
        }
        while (!p->conn && !p->stop) {
            co_await p->wake.wait(Clock::time_point::max());
        }
        if (p->stop) {
            break;
        }
        last = piece->last;
        send_piece(*p, piece->data, last, piece->trailers);
        f.body_in += piece->data.size();
        origin.taken(piece->data.size());
        // The cluster's window decides how fast the client's body comes.
        while (!last && !p->stop && p->conn && p->conn->buffered(p->id) > kMaxBuffered) {
            const auto call = p->call;
            const bool woke =
                co_await call->window.wait(coarse_now() + config.timeouts.upstream_response);
            if (call->closed || p->call != call) {
                break;  // the try ended: the next one (if any) gets the body
            }
            if (!woke && p->conn->buffered(p->id) > kMaxBuffered) {
                p->stalled = true;
                call->signal.notify();
                p->running = false;
                p->done.notify();
                co_return;
            }
        }
    }
    p->running = false;
    p->done.notify();
}

std::string cluster_said(const H2Call& call, const std::string& cluster) {
    if (call.refused()) {
        return "cluster " + cluster + " refused the stream (REFUSED_STREAM or GOAWAY)";
    }
    if (call.lost) {
        return "upstream (cluster " + cluster + ") closed the connection before a response";
    }
    return "upstream (cluster " + cluster + ") reset the stream (HTTP/2 error " +
           std::to_string(call.error) + ") before a response";
}

}  // namespace

// GCC 12 warns that the frame's sized operator delete mismatches Asio's aligned allocation: a
// false positive (both are Asio's own pair).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
Task<void> forward_h2(
    ExchangeContext& cx, Attempt& at, const ClientAddress& client, H2Forward& f, H2Origin& origin) {
    auto p = std::make_shared<Pump>(cx.executor);
    std::shared_ptr<H2Call> call;
    std::shared_ptr<H2Upstream> conn;
    std::int32_t id = 0;
    // The try's stream is over for this request (the call it watched goes with it).
    const auto release = [&] {
        origin.watch_gone(nullptr);
        if (conn && id != 0) {
            conn->release(id);
        }
        p->conn.reset();
        p->call.reset();
        id = 0;
    };
    bool relay = false;
    for (;;) {
        const auto picked = at.pick(f.route.value_or(0), !f.idempotent, client);
        if (picked == Attempt::Picked::kNone) {
            co_await origin.reply(503,
                                  "no healthy cluster: every cluster is failing its health checks "
                                  "(see /status on the admin listener)");
            break;
        }
        if (picked == Attempt::Picked::kConnect) {
            const auto connected = co_await at.connect(!p->can_replay());
            if (connected == Attempt::Connected::kRetry) {
                continue;
            }
            if (connected == Attempt::Connected::kStopping || origin.gone()) {
                break;
            }
            if (connected == Attempt::Connected::kFailed) {
                const unsigned st = at.failure_status();
                co_await origin.reply(st, at.take_failure());
                break;
            }
        }
        conn = at.h2_shared();
        call = std::make_shared<H2Call>(cx.executor);
        id = conn->open(f.head, call);
        if (id == 0) {  // it went away since it was picked (a GOAWAY came): not sent at all
            conn.reset();
            if (at.retry_elsewhere(p->can_replay())) {
                continue;
            }
            co_await origin.reply(502, "cluster " + at.cluster_name() + " takes no new stream");
            break;
        }
        origin.watch_gone(&call->signal);
        retarget(*p, conn, id, call);
        if (f.has_body && !p->running && !p->aborted && !p->stop) {
            p->running = true;
            asio::co_spawn(cx.executor, pump(p, origin, cx.config, f), asio::detached);
        }
        const bool can_retry = f.idempotent && !f.grpc && p->can_replay();
        const auto deadline = at.response_deadline(can_retry);
        bool timed_out = false;
        while (!call->head && !call->closed && !p->aborted && !p->stalled && !origin.gone()) {
            if (!co_await call->signal.wait(deadline)) {
                timed_out = !call->head && !call->closed;
                break;
            }
        }
        if (call->head) {
            relay = true;
            break;
        }
        if (origin.gone() || p->aborted || cx.lifecycle.stopping) {
            f.failure = "no answer: the client went away or was answered";
            break;
        }
        release();
        if (p->stalled) {
            co_await origin.reply(502, "upstream (cluster " + at.cluster_name() +
                                           ") stopped taking the request body");
            break;
        }
        if (timed_out) {
            if (at.per_try() && p->can_replay() && at.retry_after_timeout()) {
                continue;
            }
            co_await origin.reply(504,
                                  "upstream response timeout (cluster " + at.cluster_name() + ")");
            break;
        }
        at.outlier(true);
        const bool allowed = p->can_replay() && (call->refused() || (f.idempotent && !f.grpc));
        if (at.retry_elsewhere(allowed)) {
            continue;
        }
        co_await origin.reply(502, cluster_said(*call, at.cluster_name()));
        break;
    }
    if (relay) {
        p->replayable = false;  // (no try after a response head: the copy goes)
        std::string().swap(p->replay);
        const auto& head = *call->head;
        f.status = head.status;
        f.upstream_at = Clock::now();
        at.outlier(head.status == 502 || head.status == 503 || head.status == 504);
        const bool bodyless = head.end_stream;
        bool ok = co_await origin.head(head, bodyless);
        std::string piece;
        while (ok && !bodyless) {
            if (!call->body.empty()) {
                piece.swap(call->body);
                call->body.clear();
                const bool last = call->ended && call->trailers.empty();
                ok = co_await origin.data(piece, last);
                f.body_out += piece.size();
                conn->consume(id, piece.size());
                if (last) {
                    break;
                }
                continue;
            }
            if (call->ended) {
                if (call->trailers.empty()) {  // (if/else, not ?: around co_await: GCC 12)
                    ok = co_await origin.data({}, true);
                } else {
                    ok = co_await origin.trailers(call->trailers);
                }
                break;
            }
            if (call->closed || origin.gone()) {
                break;
            }
            if (!co_await call->signal.wait(coarse_now() + cx.config.timeouts.upstream_response) &&
                call->body.empty() && !call->ended) {
                break;  // the cluster went silent mid-body
            }
        }
        if (!ok || origin.gone()) {
            f.failure = "the client went away or stopped taking the response";
        } else if (!bodyless && !call->ended) {
            f.failure = "the cluster's response broke off mid-body";
            origin.broke_off();
        }
        cx.metrics.request(at.cluster(), f.status,
                           std::chrono::duration<double>(Clock::now() - f.started).count(),
                           f.protocol);
    }
    release();
    if (p->running) {
        p->stop = true;
        origin.stop_body();
        p->wake.notify();
        co_await p->done.wait(Clock::time_point::max());
    }
}
#pragma GCC diagnostic pop

}  // namespace lb
