#pragma once

// One HTTP/2 connection's protocol state on libnghttp2 (framing, HPACK, flow control, stream
// states, the known floods), either end: as a server (a client connection of the balancer),
// the peer's bytes in, request events up through callbacks, responses down, bytes out; as a
// client (a connection to an h2 cluster), requests down and response events up. No socket and
// no clock: the connection's coroutine feeds it and writes what it produces. libnghttp2 stays
// in h2_session.cpp.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lb/config.hpp"

namespace lb {

// What a client may do on one connection. The defences are libnghttp2's where it has them
// (Debian's 1.52 carries the rapid-reset and CONTINUATION-flood limits): a client beyond one
// gets a GOAWAY and the connection closes; other connections are not affected.
struct H2Limits {
    std::uint32_t max_concurrent_streams = 100;
    // Decoded header fields of one request (name + value + 32 each, RFC 9113 6.5.2): beyond it
    // the stream is reset (an HPACK bomb expands into nothing kept).
    std::uint32_t max_header_list_size = 64 * 1024;
    // Request body bytes a stream may have sent and the caller not consume()d yet, and the
    // same for the whole connection: what a client can make the balancer hold.
    std::uint32_t initial_window = 256 * 1024;
    std::uint32_t connection_window = 1024 * 1024;
    std::size_t max_continuations = 8;    // CONTINUATION frames per header block
    std::uint64_t reset_burst = 200;      // client stream resets: a burst of this many,
    std::uint64_t reset_rate = 33;        // then this many per second (rapid reset)
    std::size_t max_settings = 32;        // entries in one SETTINGS frame
    std::size_t max_outbound_ack = 1000;  // PING/SETTINGS acks not yet sent (floods)
    // A field whose value is new in every message (the request ID, lower case): sent without
    // entering HPACK's dynamic table, where it would only push out what does repeat.
    std::string unique_field;
};

// The limits http2: configures (the connection window is 4× the stream window); `unique_field`:
// the request ID's name when request IDs are on.
H2Limits h2_limits(const Http2Config& config, std::string_view unique_field = {});
// The request ID field's name when request IDs are on, else "".
inline std::string_view request_id_field(const LbConfig& config) {
    return config.request_id.enabled ? std::string_view(config.request_id.header)
                                     : std::string_view();
}

struct H2Field {
    std::string name;  // lower case
    std::string value;
    friend bool operator==(const H2Field&, const H2Field&) = default;
};

// A request's head: its pseudo-header fields, then the regular ones in order.
struct H2RequestHead {
    std::int32_t stream = 0;
    std::string method;
    std::string scheme;
    std::string authority;
    std::string path;
    std::vector<H2Field> fields;
    bool end_stream = false;  // no body follows
};

// A final response's head (1xx answers are not reported).
struct H2ResponseHead {
    std::int32_t stream = 0;
    unsigned status = 0;
    std::vector<H2Field> fields;
    bool end_stream = false;  // no body follows
};

class H2Session {
public:
    // Called from receive(), on the caller's thread; any may be empty.
    struct Events {
        std::function<void(H2RequestHead)> request;    // (a server's)
        std::function<void(H2ResponseHead)> response;  // (a client's)
        std::function<void(std::int32_t stream, std::string_view data)> body;
        std::function<void(std::int32_t stream, std::vector<H2Field> fields)> trailers;
        std::function<void(std::int32_t stream)> end;  // the peer's message is complete
        // The stream is gone: complete both ways, or reset (`error` non-zero).
        std::function<void(std::int32_t stream, std::uint32_t error)> closed;
    };

    // A server session with its SETTINGS queued; nullptr when libnghttp2 cannot allocate one.
    static std::unique_ptr<H2Session> server(const H2Limits& limits, Events events);
    // A client session, its preface and SETTINGS queued (a cluster's connection).
    static std::unique_ptr<H2Session> client(const H2Limits& limits, Events events);

    // (A client) A request on a new stream: its number, or 0 when none can be opened (the
    // server sent GOAWAY). Its body follows through body() unless `head.end_stream`; beyond the
    // server's concurrency limit it waits in the session until a stream closes.
    std::int32_t request(const H2RequestHead& head);
    // (A client) Whether a request may still be opened (no GOAWAY from the server).
    [[nodiscard]] bool can_open() const;
    // (A client) The server's SETTINGS_MAX_CONCURRENT_STREAMS (unbounded until it says).
    [[nodiscard]] std::uint32_t peer_max_streams() const;
    ~H2Session();
    H2Session(const H2Session&) = delete;
    H2Session& operator=(const H2Session&) = delete;

    // Client bytes (the connection preface first). An error means the connection is over: a
    // GOAWAY is queued (a protocol error, a flood); send output() and close. A client that
    // ended the session itself (its GOAWAY) is no error: alive() turns false.
    std::expected<void, std::string> receive(std::string_view bytes);
    // The frames to send now, at most about `max` bytes (empty: nothing to send).
    std::string output(std::size_t max = 64 * 1024);
    // The same into `out` (replacing what it held).
    void output(std::string& out, std::size_t max);

    // (A server) The response head; its body follows through body() unless `end_stream`.
    bool respond(std::int32_t stream,
                 unsigned status,
                 const std::vector<H2Field>& fields,
                 bool end_stream);
    // A piece of the body this end sends (a server's response, a client's request), held until
    // the peer's flow-control window takes it; `last` ends it (unless trailers() follows: then
    // pass last = false).
    bool body(std::int32_t stream, std::string_view data, bool last);
    // The trailer fields of what this end sends; they end it.
    bool trailers(std::int32_t stream, const std::vector<H2Field>& fields);
    void reset(std::int32_t stream, std::uint32_t error);
    // A PING (its acknowledgement is a frame like any other).
    void ping();
    // GOAWAY: no new stream; with error 0 those already open finish (drain, reload).
    void goaway(std::uint32_t error = 0);

    // `bytes` of `stream`'s request body are dealt with (sent on, or dropped): the client may
    // send that much more (WINDOW_UPDATE). Every byte of body() must come back here, also for
    // a stream that is closed by now.
    void consume(std::int32_t stream, std::size_t bytes);

    // Response body bytes waiting for the client's window on `stream` (the caller stops reading
    // its upstream above a bound).
    [[nodiscard]] std::size_t buffered(std::int32_t stream) const;
    [[nodiscard]] std::size_t open_streams() const;
    // Whether a GOAWAY with an error went out: a protocol error, or one of the floods (libnghttp2
    // ends a rapid-reset client with INTERNAL_ERROR, the others with ENHANCE_YOUR_CALM).
    [[nodiscard]] bool ended_by_error() const;
    // False once the session has nothing more to read or write (after GOAWAY both ways).
    [[nodiscard]] bool alive() const;

    struct State;

private:
    explicit H2Session(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace lb
