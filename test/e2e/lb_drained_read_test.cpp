// The drained read (lb/src/drained_read.hpp) over real loopback TCP connections: after a read
// that took less than its buffer, the next read of the socket does not try recv(2) before the
// reactor reports the socket readable — observable as a buffer still untouched when the read has
// been started although its bytes are in the socket — while a read that filled its buffer is
// followed by one that reads at once; read_now() marks a socket it found empty the same way, and
// mark_drained() one its caller knows is; no byte is ever left waiting, end of stream, errors
// and both kinds of cancellation complete the read as Asio's own would.
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drained_read.hpp"
#include "support/loopback.hpp"

namespace lb {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// A connected loopback TCP pair: `peer` is a plain descriptor the test writes with, `socket` the
// Asio socket under test (registered with the reactor while nothing is in it).
struct Pair {
    asio::io_context ctx;
    asio::executor_work_guard<asio::io_context::executor_type> work{ctx.get_executor()};
    Socket socket{ctx.get_executor()};
    int peer = -1;

    Pair() {
        const support::LoopbackTcp tcp = support::loopback_tcp();
        EXPECT_GE(tcp.server, 0);
        peer = tcp.client;
        socket.assign(asio::ip::tcp::v4(), tcp.server);
    }
    ~Pair() {
        if (peer >= 0) {
            ::close(peer);
        }
    }
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;

    void send(const std::string& s) {
        ASSERT_EQ(::send(peer, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
        // Until the bytes are in the socket under test (loopback: at once).
        pollfd p{socket.native_handle(), POLLIN, 0};
        ASSERT_EQ(::poll(&p, 1, 5000), 1);
    }
};

struct Result {
    error_code ec;
    std::size_t n = 0;
};

// Starts a drained read into `buf` (or Asio's async_read_some when `asio_own`); the result
// lands in `out` when the context runs its completion.
void start_read(Pair& p, std::string& buf, std::optional<Result>& out, bool asio_own = false) {
    out.reset();
    auto done = [&out](error_code ec, std::size_t n) { out = Result{ec, n}; };
    if (asio_own) {
        p.socket.async_read_some(asio::buffer(buf), done);
    } else {
        async_read_drained(p.socket, asio::buffer(buf), done);
    }
}

void run_until(Pair& p, const std::optional<Result>& out) {
    while (!out) {
        ASSERT_EQ(p.ctx.run_one_for(std::chrono::seconds(10)), 1U) << "the read never completed";
    }
}

// A first read, started while the socket is empty, completed by the reactor's event for `s`:
// the socket's readiness event has been consumed when it returns.
Result first_read(Pair& p, const std::string& s, std::size_t size, bool asio_own = false) {
    std::string buf(size, '\0');
    std::optional<Result> out;
    start_read(p, buf, out, asio_own);
    p.ctx.poll();  // (the read is queued, nothing has come)
    EXPECT_FALSE(out);
    p.send(s);
    run_until(p, out);
    EXPECT_EQ(buf.substr(0, out->n), s.substr(0, out->n));
    return *out;
}

// A drained read started after a first one emptied the socket: waiting (nothing has come).
void start_waiting_read(Pair& p, std::string& buf, std::optional<Result>& out) {
    ASSERT_EQ(first_read(p, "abc", 64).n, 3U);
    start_read(p, buf, out);
    p.ctx.poll();
    ASSERT_FALSE(out);
}

// Bytes arrive in a socket marked drained: the next read leaves its buffer untouched until the
// reactor has seen their event, then takes them.
void expect_next_read_waits(Pair& p) {
    p.send("next");  // in the socket now, its event not yet seen by the reactor
    std::string buf(64, '\0');
    std::optional<Result> out;
    start_read(p, buf, out);
    EXPECT_EQ(buf, std::string(64, '\0')) << "read at once: a speculative recv";
    run_until(p, out);
    ASSERT_FALSE(out->ec);
    EXPECT_EQ(buf.substr(0, out->n), "next");
}

TEST(DrainedRead, IsTheReadOnThisPlatform) {
    EXPECT_TRUE(kDrainedReads);  // Boost 1.81 on Linux (epoll): Debian 12
}

TEST(DrainedRead, AfterAShortReadTheNextReadWaitsForTheReactor) {
    Pair p;
    const Result first = first_read(p, "GET / HTTP/1.1\r\n\r\n", 64);
    ASSERT_FALSE(first.ec);
    ASSERT_EQ(first.n, 18U);
    expect_next_read_waits(p);
}

TEST(DrainedRead, AsioOwnReadReadsAtOnceInTheSameSituation) {
    // The control of the test above (the observation tells the two apart): Asio's reads only.
    Pair p;
    ASSERT_EQ(first_read(p, "GET / HTTP/1.1\r\n\r\n", 64, true).n, 18U);
    p.send("next");
    std::string buf(64, '\0');
    std::optional<Result> out;
    start_read(p, buf, out, true);
    EXPECT_EQ(buf.substr(0, 4), "next");
    run_until(p, out);
    EXPECT_EQ(out->n, 4U);
}

TEST(DrainedRead, ReadNowSaysWhetherItTookAllTheSocketHad) {
    Pair p;
    std::string buf(1000, '\0');
    bool drained = false;
    EXPECT_EQ(read_now(p.socket, asio::buffer(buf), drained), 0U);
    EXPECT_TRUE(drained) << "nothing there: the next bytes come with readiness";
    p.send(std::string(300, 'x'));
    EXPECT_EQ(read_now(p.socket, asio::buffer(buf, 100), drained), 100U);
    EXPECT_FALSE(drained) << "a full read: more may be there";
    EXPECT_EQ(read_now(p.socket, asio::buffer(buf), drained), 200U);
    EXPECT_TRUE(drained) << "short: it took all there was";
    EXPECT_EQ(buf.substr(0, 200), std::string(200, 'x'));
    ::shutdown(p.peer, SHUT_WR);
    pollfd w{p.socket.native_handle(), POLLIN, 0};
    ASSERT_EQ(::poll(&w, 1, 5000), 1);
    EXPECT_EQ(read_now(p.socket, asio::buffer(buf), drained), 0U);
    EXPECT_FALSE(drained) << "the end of the stream is the next read's to find, not a wait";
}

TEST(DrainedRead, AfterAShortReadNowTheNextReadWaitsForTheReactor) {
    Pair p;
    ASSERT_EQ(first_read(p, "0123456789", 4).n, 4U);  // full: reads may still be tried at once
    std::string now(64, '\0');
    bool drained = false;
    ASSERT_EQ(read_now(p.socket, asio::buffer(now), drained), 6U);  // short: marked
    ASSERT_TRUE(drained);
    expect_next_read_waits(p);
}

TEST(DrainedRead, AfterMarkDrainedTheNextReadWaitsForTheReactor) {
    Pair p;
    ASSERT_EQ(first_read(p, "0123456789", 4).n, 4U);  // full: reads may still be tried at once
    char rest[6];  // the rest taken outside the reactor (as a splice takes a body's)
    ASSERT_EQ(::recv(p.socket.native_handle(), rest, sizeof rest, 0), 6);
    mark_drained(p.socket);
    expect_next_read_waits(p);
}

TEST(DrainedRead, AfterAFullReadNowTheNextReadReadsAtOnce) {
    Pair p;
    ASSERT_EQ(first_read(p, "0123456789", 4).n, 4U);  // full: the socket may have more
    std::string now(4, '\0');
    bool drained = true;
    ASSERT_EQ(read_now(p.socket, asio::buffer(now), drained), 4U);
    EXPECT_FALSE(drained);
    EXPECT_EQ(now, "4567");
    std::string buf(4, '\0');
    std::optional<Result> out;
    start_read(p, buf, out);
    EXPECT_EQ(buf.substr(0, 2), "89");  // at once
    run_until(p, out);
    EXPECT_EQ(out->n, 2U);
}

TEST(DrainedRead, AReadThatFillsItsBufferIsFollowedByOneThatReadsAtOnce) {
    Pair p;
    const Result first = first_read(p, "0123456789", 4);
    ASSERT_EQ(first.n, 4U);  // full: more may be there (6 bytes are)
    std::string buf(4, '\0');
    std::optional<Result> out;
    start_read(p, buf, out);
    EXPECT_EQ(buf, "4567");  // at once
    run_until(p, out);
    EXPECT_EQ(out->n, 4U);
    std::string rest(4, '\0');
    start_read(p, rest, out);
    EXPECT_EQ(rest.substr(0, 2), "89");
    run_until(p, out);
    EXPECT_EQ(out->n, 2U);
}

TEST(DrainedRead, EndOfStreamAndResetCompleteTheRead) {
    {
        Pair p;
        std::string buf(64, '\0');
        std::optional<Result> out;
        start_waiting_read(p, buf, out);
        ::shutdown(p.peer, SHUT_WR);
        run_until(p, out);
        EXPECT_EQ(out->ec, asio::error::eof);
        EXPECT_EQ(out->n, 0U);
    }
    {
        Pair p;
        std::string buf(64, '\0');
        std::optional<Result> out;
        start_waiting_read(p, buf, out);
        const linger hard{1, 0};
        ::setsockopt(p.peer, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        ::close(p.peer);  // RST
        p.peer = -1;
        run_until(p, out);
        EXPECT_EQ(out->ec, asio::error::connection_reset);
    }
}

TEST(DrainedRead, CancelAndACancellationSlotAbortAWaitingRead) {
    Pair p;
    std::string buf(64, '\0');
    std::optional<Result> out;
    start_waiting_read(p, buf, out);
    p.socket.cancel();
    run_until(p, out);
    EXPECT_EQ(out->ec, asio::error::operation_aborted);

    asio::cancellation_signal signal;
    out.reset();
    async_read_drained(
        p.socket, asio::buffer(buf),
        asio::bind_cancellation_slot(signal.slot(), [&out](error_code ec, std::size_t n) {
            out = Result{ec, n};
        }));
    p.ctx.poll();
    ASSERT_FALSE(out);
    signal.emit(asio::cancellation_type::terminal);
    run_until(p, out);
    EXPECT_EQ(out->ec, asio::error::operation_aborted);

    // The socket still reads afterwards.
    p.send("later");
    start_read(p, buf, out);
    run_until(p, out);
    EXPECT_EQ(buf.substr(0, out->n), "later");
}

TEST(DrainedRead, NoByteIsLeftWaitingWhileAWriterSendsInRandomPieces) {
    // 4 MiB in pieces of 1 B to 40 KiB from another thread, read in buffers of 1 B to 64 KiB:
    // every byte arrives, in order, whatever lands between a short read and the next.
    Pair p;
    constexpr std::size_t kTotal = 4 << 20;
    std::string sent(kTotal, '\0');
    std::mt19937 rng(20261207);
    for (auto& c : sent) {
        c = static_cast<char>(rng());
    }
    std::thread writer([&p, &sent] {
        std::mt19937 r(7);
        std::size_t off = 0;
        while (off < sent.size()) {
            const std::size_t piece = std::min<std::size_t>(1 + r() % 40960, sent.size() - off);
            const ssize_t n = ::send(p.peer, sent.data() + off, piece, MSG_NOSIGNAL);
            if (n <= 0) {
                return;
            }
            off += static_cast<std::size_t>(n);
        }
    });
    std::string got;
    got.reserve(kTotal);
    std::array<char, 65536> buf{};
    std::optional<Result> out;
    while (got.size() < kTotal) {
        const std::size_t size = 1 + rng() % buf.size();
        out.reset();
        async_read_drained(p.socket, asio::buffer(buf.data(), size),
                           [&out](error_code ec, std::size_t n) {
                               out = Result{ec, n};
                           });
        run_until(p, out);
        ASSERT_FALSE(out->ec) << out->ec.message();
        got.append(buf.data(), out->n);
    }
    writer.join();
    EXPECT_TRUE(got == sent);
}

}  // namespace
}  // namespace lb
