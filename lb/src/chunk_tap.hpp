#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>

namespace lb {

// Lets a chunked body's data go around a Beast parser (with a buffer_body) while the parser keeps
// reading the framing — every chunk's size line and extensions, the CRLFs, the last chunk and
// the trailer section, with its limits. Attached, the parser reports each chunk's size here and
// hands chunk data over as buffer_body would (into body().data, up to body().size); left() says
// how much of the current chunk it has not seen. When that rest is moved socket to socket
// (spliced), skip() then walks the parser over it with placeholder bytes it drops, and the
// parser goes on with the chunk's CRLF.
class ChunkTap {
public:
    ChunkTap() = default;
    ChunkTap(const ChunkTap&) = delete;
    ChunkTap& operator=(const ChunkTap&) = delete;

    // Watches `parser` (once per parser, before its body; the tap must outlive it).
    template <class Parser>
    void attach(Parser& parser) {
        body_ = &parser.get().body();
        left_ = 0;
        parser.on_chunk_header(on_header_);
        parser.on_chunk_body(on_body_);
    }
    [[nodiscard]] bool attached() const { return body_ != nullptr; }
    // The current chunk's data bytes the parser has not seen yet.
    [[nodiscard]] std::uint64_t left() const { return left_; }

    // The parser takes `n` (<= left()) bytes of the current chunk as seen and dropped.
    template <class Parser>
    boost::system::error_code skip(Parser& parser, std::uint64_t n) {
        static const std::array<char, 64 * 1024> kPlaceholder{};
        boost::system::error_code ec;
        skipping_ = true;
        while (n > 0 && !ec) {
            const auto len =
                static_cast<std::size_t>(std::min<std::uint64_t>(n, kPlaceholder.size()));
            const std::size_t used = parser.put(boost::asio::buffer(kPlaceholder.data(), len), ec);
            if (used == 0 && !ec) {
                ec = boost::beast::http::error::bad_chunk;  // (the parser was not in a chunk)
            }
            n -= std::min<std::uint64_t>(n, used);
        }
        skipping_ = false;
        return ec;
    }

private:
    struct OnHeader {
        ChunkTap* tap;
        void operator()(std::uint64_t size,
                        boost::beast::string_view /*extensions*/,
                        boost::system::error_code& ec) const {
            tap->left_ = size;
            ec = {};
        }
    };
    struct OnBody {
        ChunkTap* tap;
        std::size_t operator()(std::uint64_t remain,
                               boost::beast::string_view data,
                               boost::system::error_code& ec) const {
            return tap->take(remain, data, ec);
        }
    };

    // As buffer_body's reader: copied into body().data as far as body().size allows, the rest
    // left to the next call (need_buffer); while skipping, dropped.
    std::size_t take(std::uint64_t remain,
                     boost::beast::string_view data,
                     boost::system::error_code& ec) {
        std::size_t n = data.size();
        ec = {};
        if (!skipping_) {
            if (body_->data == nullptr) {
                ec = boost::beast::http::error::need_buffer;
                return 0;
            }
            n = std::min(n, body_->size);
            std::memcpy(body_->data, data.data(), n);
            body_->data = static_cast<char*>(body_->data) + n;
            body_->size -= n;
            if (n < data.size()) {
                ec = boost::beast::http::error::need_buffer;
            }
        }
        left_ = remain - n;
        return n;
    }

    OnHeader on_header_{this};
    OnBody on_body_{this};
    boost::beast::http::buffer_body::value_type* body_ = nullptr;
    std::uint64_t left_ = 0;
    bool skipping_ = false;
};

}  // namespace lb
