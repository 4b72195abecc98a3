// ChunkTap: a Beast parser with the tap attached fills its buffer_body as before, reports each
// chunk's size and what is left of it, and — once a chunk's rest has gone around it — walks over
// that rest with placeholder bytes and carries on with the framing: CRLF, the next chunks, the
// last chunk and its trailers, with the parser's own checks (a bad size line, the body limit).
#include "chunk_tap.hpp"

#include <string>

#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

namespace lb {
namespace {

namespace http = boost::beast::http;
using Parser = http::response_parser<http::buffer_body>;

// Feeds `text` to the parser with a `room`-byte body buffer each time, as the relay does;
// returns the body bytes it produced.
std::string feed(Parser& p,
                 std::string_view text,
                 std::size_t room,
                 boost::system::error_code& ec) {
    std::string body;
    std::string buf(room, '\0');
    while (!text.empty() && !ec) {
        p.get().body().data = buf.data();
        p.get().body().size = room;
        const std::size_t n = p.put(boost::asio::buffer(text.data(), text.size()), ec);
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        body.append(buf.data(), room - p.get().body().size);
        text.remove_prefix(n);
        if (n == 0 && room == p.get().body().size) {
            break;  // (needs more input)
        }
    }
    return body;
}

const std::string kHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

TEST(ChunkTap, FillsTheBodyBufferAsBufferBodyDoesAndTracksTheChunk) {
    Parser p;
    p.eager(true);
    ChunkTap tap;
    tap.attach(p);
    boost::system::error_code ec;
    EXPECT_EQ(feed(p, kHead + "a;x=1\r\n01234", 4, ec), "01234");
    EXPECT_FALSE(ec);
    EXPECT_EQ(tap.left(), 5u);
    EXPECT_EQ(feed(p, "56789\r\n3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n", 3, ec), "56789abc");
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(p.is_done());
    EXPECT_EQ(p.get()["X-Sum"], "9");
}

TEST(ChunkTap, SkipsAChunksRestAndTheParserReadsOn) {
    Parser p;
    p.eager(true);
    ChunkTap tap;
    tap.attach(p);
    boost::system::error_code ec;
    // A 300,000-byte chunk of which 10 came with the head; the rest goes around the parser.
    EXPECT_EQ(feed(p, kHead + "493e0\r\n0123456789", 64, ec), "0123456789");
    ASSERT_FALSE(ec);
    ASSERT_EQ(tap.left(), 300000u - 10);
    ASSERT_FALSE(tap.skip(p, tap.left()));
    EXPECT_EQ(tap.left(), 0u);
    EXPECT_FALSE(p.is_done());
    EXPECT_EQ(feed(p, "\r\n4\r\nlast\r\n0\r\n\r\n", 64, ec), "last");
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(p.is_done());
}

TEST(ChunkTap, TheParsersChecksStillApply) {
    {
        Parser p;
        p.eager(true);
        p.body_limit(1000);
        ChunkTap tap;
        tap.attach(p);
        boost::system::error_code ec;
        feed(p, kHead + "fffff\r\n", 16, ec);
        EXPECT_EQ(ec, http::error::body_limit) << "a chunk beyond the body limit";
    }
    {
        Parser p;
        p.eager(true);
        ChunkTap tap;
        tap.attach(p);
        boost::system::error_code ec;
        feed(p, kHead + "10\r\n", 16, ec);
        ASSERT_FALSE(tap.skip(p, 16));
        feed(p, "XX3\r\nabc\r\n", 16, ec);
        EXPECT_TRUE(ec) << "the chunk's CRLF is still checked after a skip";
    }
}

}  // namespace
}  // namespace lb
