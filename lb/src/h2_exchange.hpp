#pragma once

// One HTTP/2 client stream's exchange (h2_stream.cpp: towards HTTP/1.1 clusters;
// h2_stream_to_h2.cpp: towards h2 clusters, as forward_h2's origin).

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http.hpp>

#include "attempt.hpp"
#include "h2_connection.hpp"
#include "h2_forward.hpp"
#include "h2_heads.hpp"
#include "lb/request_id.hpp"
#include "wire.hpp"

namespace lb::h2x {

namespace http = boost::beast::http;
using boost::system::error_code;

// Response body bytes a stream may have waiting for the client's window before it stops reading
// from the cluster.
inline constexpr std::size_t kMaxBuffered = 4 * kChunk;
inline constexpr std::uint32_t kCancel = 8;

inline bool is_idempotent(std::string_view m) {
    return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" ||
           m == "DELETE";
}

using ResponseParser = http::response_parser<http::buffer_body, PoolAllocator<char>>;

class H2Exchange final : public H2Origin {
public:
    H2Exchange(std::shared_ptr<H2Conn> c, std::shared_ptr<H2StreamState> s)
        : conn_(std::move(c)),
          st_(std::move(s)),
          c_(*conn_),
          s_(*st_),
          cx_(c_.cx),
          id_(s_.head.stream),
          head_(cx_.buffers.take_head()) {
        cx_.watches.push_back(watch_);
    }
    ~H2Exchange() {
        if (cx_.log.sink) {
            record();
        }
        s_.upstream = nullptr;
        cx_.buffers.give_head(std::move(head_));
        cx_.buffers.give_chunk(std::move(chunk_));
        watch_.unlink();
        // What the client sent that nobody took: its window reopens.
        c_.consume(id_, s_.body.size());
        s_.body.clear();
        s_.answered = true;
        c_.streams.erase(id_);
        cx_.metrics.h2_stream(-1);
        if (c_.streams.empty()) {
            c_.streams_done.notify();
        }
        c_.writer.notify();  // (which also arms the idle timeout once all is written)
    }
    H2Exchange(const H2Exchange&) = delete;
    H2Exchange& operator=(const H2Exchange&) = delete;

    Task<void> run();

    // As forward_h2's origin (h2_stream_to_h2.cpp).
    Task<std::optional<Piece>> body() override;
    void taken(std::size_t bytes) override { c_.consume(id_, bytes); }
    void stop_body() override {
        stop_body_ = true;
        s_.signal.notify();
    }
    Task<bool> head(const H2ResponseHead& head, bool end) override;
    Task<bool> data(std::string_view bytes, bool last) override;
    Task<bool> trailers(const std::vector<H2Field>& fields) override;
    void broke_off() override;
    Task<void> reply(unsigned status, std::string text) override;
    [[nodiscard]] bool gone() const override { return stopped(); }
    void watch_gone(Signal* signal) override { s_.also = signal; }

private:
    // The request to an h2 cluster: a stream of its own there (h2_stream_to_h2.cpp).
    Task<void> via_h2();
    // Waits while the client's window holds more than kMaxBuffered of the response; false when
    // the stream is over (failure_ says why).
    Task<bool> wait_for_window();
    bool build();
    Task<error_code> send(Out& out);
    Task<bool> send_request(error_code& ec);
    Task<error_code> read_head();
    Task<void> relay();
    std::vector<H2Field> response_trailers(std::size_t head_fields);
    void record();
    bool stopped() const { return s_.gone || c_.over || cx_.lifecycle.stopping; }
    // Whether the cluster sent something (an answer, or its close) on the request's connection.
    bool cluster_answered() {
        error_code ec;
        return at_.up().buffer.size() > 0 || at_.up().socket.available(ec) > 0;
    }
    char* chunk() {
        if (!chunk_) {
            chunk_ = cx_.buffers.take_chunk();
        }
        return chunk_.get();
    }
    // Waits for something on the stream (body, end, reset, window) until `deadline`.
    Task<bool> wait(Clock::time_point deadline) { co_return co_await s_.signal.wait(deadline); }

    std::shared_ptr<H2Conn> conn_;  // (kept alive while the stream runs)
    std::shared_ptr<H2StreamState> st_;
    H2Conn& c_;
    H2StreamState& s_;
    ExchangeContext& cx_;
    const std::int32_t id_;
    const Clock::time_point started_ = Clock::now();
    Watch watch_;
    Attempt at_{cx_, watch_};
    std::string head_;
    std::unique_ptr<char[]> chunk_;
    RequestHead req_;
    std::string host_;
    std::optional<std::size_t> route_;
    std::string_view request_id_;
    RequestIdGenerator::Buffer id_buffer_;
    bool idempotent_ = false;
    bool has_body_ = false;
    Framing framing_ = Framing::kAsIs;
    bool body_sent_ = false;
    std::uint64_t body_in_ = 0;
    std::uint64_t body_out_ = 0;
    std::optional<ResponseParser> resp_;
    unsigned status_ = 0;
    Clock::time_point upstream_at_{};
    unsigned reply_status_ = 0;
    std::string reply_text_;
    std::string_view failure_;
    std::string trailer_block_;  // the request's trailers as the last chunk
    std::string piece_;          // (body(): the request body piece being sent on)
    bool stop_body_ = false;
    bool relayed_ = false;  // the response head went to the client
};

}  // namespace lb::h2x
