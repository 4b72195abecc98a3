#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attempt.hpp"
#include "h2_session.hpp"

namespace lb {

// The client's side of a request to an h2 cluster, whatever it spoke: an HTTP/2 stream
// (h2_stream.cpp) or an HTTP/1.1 exchange (exchange_h2.cpp). forward_h2() calls it from two
// coroutines at once — one sends the request body on, one relays the response — so a gRPC
// stream flows both ways at the same time.
class H2Origin {
public:
    struct Piece {
        std::string_view data;  // valid until the next body()
        bool last = false;
        std::vector<H2Field> trailers;  // the request's (with `last`)
    };
    // The next piece of the request body, waiting for it; nullopt when there is none to send:
    // the client went away, or the body was refused here and answered (408, 413, 400), or
    // stop_body() was called.
    virtual Task<std::optional<Piece>> body() = 0;
    // The piece body() gave is sent on (an HTTP/2 client may send as much more).
    virtual void taken(std::size_t bytes) = 0;
    // The response is complete while the request body is not: body() ends now.
    virtual void stop_body() = 0;
    // The response head, its body piece by piece (`last` ends it) and its trailers (they end
    // it); each waits while the client is slow, bounded; false: the client is gone or stopped
    // taking it.
    virtual Task<bool> head(const H2ResponseHead& head, bool end) = 0;
    virtual Task<bool> data(std::string_view bytes, bool last) = 0;
    virtual Task<bool> trailers(const std::vector<H2Field>& fields) = 0;
    // The response broke off after its head: the client must learn it is incomplete.
    virtual void broke_off() = 0;
    // A local answer (nothing of the cluster's response reached the client).
    virtual Task<void> reply(unsigned status, std::string text) = 0;
    // The client is gone (reset, its connection over) or the balancer is stopping.
    [[nodiscard]] virtual bool gone() const = 0;
    // Woken when the client goes (while the response is awaited).
    virtual void watch_gone(Signal* signal) = 0;

protected:
    ~H2Origin() = default;
};

// One request for an h2 cluster and what became of it.
struct H2Forward {
    H2RequestHead head;  // for the cluster (h2_request_head())
    bool has_body = false;
    bool idempotent = false;
    // application/grpc…: never retried once any of it was sent, but refused streams (RFC 9113
    // 8.7: not processed) — what gRPC's own transparent retry does too.
    bool grpc = false;
    std::optional<std::size_t> route;
    Protocol protocol = Protocol::kHttp1;  // the client's (metrics)
    Clock::time_point started{};
    // Results:
    unsigned status = 0;  // the cluster's answer (0: none)
    std::uint64_t body_in = 0;
    std::uint64_t body_out = 0;
    Clock::time_point upstream_at{};
    std::string_view failure;  // why the response did not complete
};

// Picks, connects (or shares a connection) and retries as Attempt decides; the stream's request
// and response flow between the cluster and `origin`. A request body up to 64 KiB is kept until
// the response head comes, so a refused stream (GOAWAY, REFUSED_STREAM) is retried whole on
// another cluster; a gRPC call or a non-idempotent request is retried only then.
Task<void> forward_h2(
    ExchangeContext& cx, Attempt& at, const ClientAddress& client, H2Forward& f, H2Origin& origin);

}  // namespace lb
