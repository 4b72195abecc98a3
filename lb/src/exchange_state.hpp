#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "attempt.hpp"
#include "chunk_tap.hpp"
#include "exchange.hpp"
#include "lb/request_id.hpp"
#include "wire.hpp"

namespace lb {

// The state and steps of one exchange (exchange.hpp), shared by its two files: exchange.cpp
// (the driver and the request side) and exchange_response.cpp (the response side).

// Client headers are read in small steps (an idle keep-alive connection then holds 1-4 KiB, not
// a body-sized buffer). Upstream connections are few (pooled): read a header and a whole chunk
// of body at once.
inline constexpr std::size_t kClientHeaderRead = 4096;
inline constexpr std::size_t kUpstreamRead = kChunk + 4096;

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// What a step leaves the exchange to do.
enum class Next {
    kOn,       // the next step
    kConnect,  // no pooled connection to the chosen endpoint: open one
    kWriting,  // the socket did not take the whole request head at once
    kInterim,  // a 1xx answer: relay it, then read the next head
    kSwitch,   // a 101 to the client's upgrade: tunnel
    kRetry,    // pick again (the state says what to exclude)
    kReply,    // answer locally with the state's reply
    kClose,    // end the connection without an answer (the client went away, or stopping)
};

// One request and its response, as named steps over one state:
//   1. read the request      request_read()
//   2. pick and connect      pick(), connect() for a new connection
//   3. send the request      send_head() (bodyless), send_with_body()
//   4. read the response head  expect_response(), next_response(), response_read()
//   5. relay the response    start_relay(), body_piece(), relay_done(); or switch_protocols()
// The steps decide; run() does the waiting. So the common path (a pooled connection, a request
// without a body, a response the client's socket takes at once) is one coroutine frame, and each
// step can be changed on its own. The slow paths (a new connection, a request body, a local
// answer, a tunnel) are coroutines of their own.
template <class Stream>
class Exchange {
public:
    static Task<bool> run(ExchangeContext& cx,
                          Stream& client,
                          boost::beast::flat_buffer& buffer,
                          Watch& watch,
                          const ClientAddress& client_address);

    Exchange(ExchangeContext& cx,
             Stream& client,
             boost::beast::flat_buffer& buffer,
             Watch& watch,
             const ClientAddress& client_address)
        : cx_(cx),
          to_(cx.config.timeouts),
          client_(client),
          buffer_(buffer),
          watch_(watch),
          client_address_(client_address),
          head_(cx.buffers.take_head()) {}
    ~Exchange() {
        if (cx_.log.sink) {
            record();
        }
        cx_.buffers.give_head(std::move(head_));
        cx_.buffers.give_chunk(std::move(chunk_));
        watch_.disarm();
    }
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

private:
    static constexpr bool kTls = !std::is_same_v<Stream, Socket>;
    using RequestParser =
        boost::beast::http::request_parser<boost::beast::http::buffer_body, PoolAllocator<char>>;
    using ResponseParser =
        boost::beast::http::response_parser<boost::beast::http::buffer_body, PoolAllocator<char>>;

    // The steps: 1-3 in exchange.cpp, 4-5 in exchange_response.cpp.
    Next request_read(boost::system::error_code ec);
    Next pick();
    Task<Next> connect();
    Next send_head();
    Task<Next> send_with_body();
    Task<boost::system::error_code> send(Out& out);
    bool client_ready();
    bool cluster_answered();
    Task<bool> client_or_cluster();
    Next sent(boost::system::error_code ec);
    void expect_response();
    ResponseParser& next_response();
    Next response_read(boost::system::error_code ec);
    Next response_head(boost::system::error_code ec);
    Task<bool> switch_protocols();
    // Steps 2-5 for a route whose clusters speak h2 (exchange_h2.cpp): the request becomes a
    // stream, the response comes back as HTTP/1.1 (chunked with its trailers when it has no
    // length).
    Task<bool> via_h2();
    template <class S>
    friend class H1Origin;
    void start_relay();
    bool body_piece(std::size_t len, bool last, boost::system::error_code& ec);
    bool relay_done();

    // Bodies with a Content-Length between plain sockets on both sides go socket to socket
    // without the parser (exchange_direct.cpp): the buffered part with the head, the rest spliced
    // (config.splice) or copied through the relay buffer.
    [[nodiscard]] bool direct_request() const;
    [[nodiscard]] bool direct_response() const;
    Task<Next> send_direct();
    // False when the cluster broke off mid-body (the exchange is over, counted).
    Task<bool> relay_direct();
    enum class Moved { kDone, kReadTimeout, kWriteTimeout, kSourceFailed, kSinkFailed, kEarly };
    Task<Moved> move_body(Socket& in, Socket& out, ByteMove& m, bool request);
    // What a request or response becomes when moving its body did not finish: the request's next
    // step; for the response, false when the cluster broke off (the exchange is over, counted).
    Next request_move_failed(Moved end);
    bool response_move_failed(Moved end);
    // Chunked bodies between plain sockets: the parser reads the framing (ChunkTap), and the
    // rest of a chunk of at least splice.minBytes, none of it buffered, is moved socket to socket
    // as a chunk of its own (`prefix`: the request head when it has not gone yet).
    template <class Parser>
    [[nodiscard]] bool chunk_rest_due(const ChunkTap& tap,
                                      const Parser& parser,
                                      const boost::beast::flat_buffer& buffered) const {
        return tap.attached() && !at_.up().tls && !parser.is_done() && buffered.size() == 0 &&
               tap.left() >= cx_.config.splice.min_bytes;
    }
    Task<Moved> send_chunk_rest(std::string_view prefix);
    Task<Moved> relay_chunk_rest();
    template <class Parser>
    Task<Moved> move_chunk(Socket& in,
                           Socket& out,
                           ChunkTap& tap,
                           Parser& parser,
                           std::string_view prefix,
                           Framing framing,
                           bool request);
    Task<boost::system::error_code> write_body_bytes(Socket& out, Out& o, bool request);
    [[nodiscard]] bool request_done() const { return rp_.is_done() || request_moved_; }
    [[nodiscard]] bool response_done() const { return resp_->is_done() || response_moved_; }

    // The end of an exchange that did not relay a response.
    Task<bool> end(Next n) {
        if (n == Next::kReply) {
            co_return co_await reply();
        }
        co_return false;
    }
    // The access log's line for this exchange (a request, or what arrived of one).
    void record();
    // A local answer (nothing from a cluster): counted without a cluster; `linger` when the
    // connection closes after it, so what the client still sends does not turn it into a reset.
    Task<bool> reply();
    Next reply_with(unsigned status, std::string text, bool keep_alive) {
        reply_status_ = status;
        reply_text_ = std::move(text);
        reply_keep_ = keep_alive;
        return Next::kReply;
    }

    char* chunk() {
        if (!chunk_) {
            chunk_ = cx_.buffers.take_chunk();
        }
        return chunk_.get();
    }
    [[nodiscard]] bool stopping() const { return cx_.lifecycle.stopping; }
    [[nodiscard]] bool closing() const { return cx_.lifecycle.draining; }
    [[nodiscard]] const std::string& cluster_name() const { return at_.cluster_name(); }

    ExchangeContext& cx_;
    const TimeoutConfig& to_;
    Stream& client_;
    boost::beast::flat_buffer& buffer_;
    Watch& watch_;
    const ClientAddress& client_address_;
    const Clock::time_point started_ = Clock::now();
    std::string head_;  // the message head for the next hop: the request's, then the response's
    std::unique_ptr<char[]> chunk_;  // the relay buffer, taken when a body needs it
    Out out_;                        // what a write puts on the wire

    // The request, as read.
    RequestParser rp_;
    boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
    bool idempotent_ = false;
    bool client_ka_ = false;
    unsigned client_version_ = 11;
    bool has_body_ = false;
    bool expect_continue_ = false;
    std::string_view upgrade_;  // (into rp_'s fields)
    Framing req_framing_ = Framing::kAsIs;
    std::string_view host_;             // the authority it is for (Host, or the absolute-form's)
    std::optional<std::size_t> route_;  // the route its host takes (routes:, first match)
    std::string_view request_id_;       // kept from the client, or generated into id_buffer_
    RequestIdGenerator::Buffer id_buffer_;
    std::uint64_t body_in_ = 0;       // request body bytes read from the client
    Clock::time_point body_start_{};  // when sending its body began

    // The attempts.
    Attempt at_{cx_, watch_};
    bool body_sent_ = false;      // body bytes consumed from the client: it cannot be replayed
    bool early_ = false;          // the cluster answered before the whole body was sent
    bool request_moved_ = false;  // its body went whole without the parser (send_direct)
    ChunkTap req_tap_;            // (plain client connections with splice on)

    // The response.
    bool can_retry_ = false;
    Clock::time_point read_deadline_{};
    std::optional<ResponseParser> resp_;
    std::string interim_;  // a 1xx head (not head_: a retry may still send the request)
    unsigned status_ = 0;
    bool upstream_ka_ = false;
    bool bodyless_ = false;
    bool close_delimited_ = false;
    bool keep_ = false;
    Framing res_framing_ = Framing::kAsIs;
    bool head_sent_ = false;
    bool response_moved_ = false;      // its body went whole without the parser (relay_direct)
    ChunkTap resp_tap_;                // (plain both ways with splice on)
    Clock::time_point upstream_at_{};  // the response head arrived
    std::uint64_t body_out_ = 0;       // response body bytes relayed
    std::string_view failure_;         // why a relayed response did not end well

    // A local answer.
    unsigned reply_status_ = 0;
    std::string reply_text_;
    bool reply_keep_ = false;
};

}  // namespace lb
