// The body mover (lb/src/byte_relay.*) over real loopback TCP connections: it moves exactly the
// bytes it is told to, by splice through a pipe or by copy, leaves what follows in the source,
// says what it waits for (after a read that came up short: the source, not another read), and
// tells a source that ended early from a sink that went away; the pipe pool is bounded and never
// hands out a pipe with bytes in it.
#include <cerrno>
#include <csignal>
#include <string>
#include <thread>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "byte_relay.hpp"
#include "support/loopback.hpp"

namespace lb {
namespace {

// A connected pair of non-blocking loopback TCP sockets: `a` writes, `b` reads (or both ways).
struct Tcp {
    int a = -1;
    int b = -1;
    Tcp() {
        const support::LoopbackTcp tcp = support::loopback_tcp();
        EXPECT_GE(tcp.server, 0);
        a = tcp.client;
        b = tcp.server;
        EXPECT_EQ(::fcntl(a, F_SETFL, ::fcntl(a, F_GETFL) | O_NONBLOCK), 0);
    }
    ~Tcp() {
        if (a >= 0) {
            ::close(a);
        }
        if (b >= 0) {
            ::close(b);
        }
    }
    Tcp(const Tcp&) = delete;
    Tcp& operator=(const Tcp&) = delete;
};

void send_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<std::size_t>(n);
        } else {
            pollfd p{fd, POLLOUT, 0};
            ASSERT_EQ(::poll(&p, 1, 5000), 1);
        }
    }
}

// `n` bytes from `fd` (fewer when nothing comes for 5 s).
std::string read_n(int fd, std::size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) {
            break;
        }
        const ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
        if (got <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(got));
    }
    return out;
}

// Runs the move to its end, waiting with poll() where it asks to.
Want run(int in, int out, Pipe* pipe, std::string& buf, ByteMove& m) {
    for (;;) {
        const Want w = move_some(in, out, pipe, buf.data(), buf.size(), m);
        if (w == Want::kDone || w == Want::kFailed) {
            return w;
        }
        pollfd p{w == Want::kRead ? in : out,
                 static_cast<short>(w == Want::kRead ? POLLIN : POLLOUT), 0};
        if (::poll(&p, 1, 5000) != 1) {
            return w;  // (stuck: the test fails on the result)
        }
    }
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    }
    return s;
}

class ByteRelay : public ::testing::TestWithParam<bool> {
protected:
    // (tandem-lb ignores SIGPIPE: a splice to a reset connection raises it, unlike send().)
    void SetUp() override { std::signal(SIGPIPE, SIG_IGN); }
    [[nodiscard]] bool spliced() const { return GetParam(); }
    Pipes pipes_{4, kPipeSize};
    std::string buf_ = std::string(16 * 1024, '\0');
};

TEST_P(ByteRelay, MovesExactlyItsBytesAndLeavesWhatFollowsInTheSource) {
    Tcp src;
    Tcp dst;
    const std::string body = pattern(3 * 1024 * 1024 + 17);  // larger than a pipe and a buffer
    const std::string next = "GET /next HTTP/1.1\r\n\r\n";
    std::string sent = body + next;
    std::thread writer([&] { send_all(src.a, sent); });
    std::string got;
    std::thread reader([&] { got = read_n(dst.b, body.size()); });
    Pipe pipe = spliced() ? pipes_.take() : Pipe();
    ASSERT_EQ(static_cast<bool>(pipe), spliced());
    ByteMove m(body.size());
    EXPECT_EQ(run(src.b, dst.a, spliced() ? &pipe : nullptr, buf_, m), Want::kDone);
    writer.join();
    reader.join();
    EXPECT_EQ(m.written, body.size());
    EXPECT_EQ(m.left, 0U);
    EXPECT_EQ(got.size(), body.size());
    EXPECT_TRUE(got == body) << "the bytes arrived changed or out of order";
    EXPECT_EQ(read_n(src.b, next.size()), next) << "the mover read past its body";
    EXPECT_EQ(pipe.held, 0U);
    pipes_.give(std::move(pipe));
    EXPECT_EQ(pipes_.idle(), spliced() ? 1U : 0U) << "an empty pipe goes back to the pool";
}

TEST_P(ByteRelay, WaitsForTheSourceThenForTheSink) {
    Tcp src;
    Tcp dst;
    Pipe pipe = spliced() ? pipes_.take() : Pipe();
    Pipe* p = spliced() ? &pipe : nullptr;
    ByteMove m(10);
    EXPECT_EQ(move_some(src.b, dst.a, p, buf_.data(), buf_.size(), m), Want::kRead);
    send_all(src.a, "12345");
    pollfd in{src.b, POLLIN, 0};
    ASSERT_EQ(::poll(&in, 1, 5000), 1);
    EXPECT_EQ(move_some(src.b, dst.a, p, buf_.data(), buf_.size(), m), Want::kRead);
    EXPECT_EQ(m.written, 5U);
    EXPECT_EQ(m.left, 5U);
    EXPECT_EQ(read_n(dst.b, 5), "12345");

    // A sink that takes nothing more: the move waits for it to become writable.
    int small = 4096;
    ::setsockopt(dst.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    const std::string big = pattern(1024 * 1024);  // (beyond the receiver's window: nobody reads)
    ByteMove m2(big.size());
    std::thread writer([&] { send_all(src.a, big); });
    Want w = Want::kRead;
    while (w == Want::kRead) {
        pollfd q{src.b, POLLIN, 0};
        ASSERT_EQ(::poll(&q, 1, 5000), 1);
        w = move_some(src.b, dst.a, p, buf_.data(), buf_.size(), m2);
    }
    EXPECT_EQ(w, Want::kWrite);
    EXPECT_LT(m2.written, big.size());
    // The reader comes back (and the sender's buffer grows again): everything arrives.
    int large = 4 * 1024 * 1024;
    ::setsockopt(dst.a, SOL_SOCKET, SO_SNDBUF, &large, sizeof large);
    std::string got;
    std::thread reader([&] { got = read_n(dst.b, big.size()); });
    EXPECT_EQ(run(src.b, dst.a, p, buf_, m2), Want::kDone);
    writer.join();
    reader.join();
    EXPECT_TRUE(got == big);
    pipes_.give(std::move(pipe));
}

TEST_P(ByteRelay, ASourceThatEndsEarlyIsNotTheSinksFault) {
    Tcp src;
    Tcp dst;
    Pipe pipe = spliced() ? pipes_.take() : Pipe();
    ByteMove m(1000);
    send_all(src.a, std::string(300, 'x'));
    ::shutdown(src.a, SHUT_WR);
    EXPECT_EQ(run(src.b, dst.a, spliced() ? &pipe : nullptr, buf_, m), Want::kFailed);
    EXPECT_EQ(m.error, ByteMove::kEnded);
    EXPECT_FALSE(m.sink_failed);
    EXPECT_EQ(m.written, 300U);
    EXPECT_EQ(read_n(dst.b, 300), std::string(300, 'x'));
    pipes_.give(std::move(pipe));
}

TEST_P(ByteRelay, ASinkThatWentAwayFailsTheMoveAndItsPipeIsNotReused) {
    Tcp src;
    Tcp dst;
    Pipe pipe = spliced() ? pipes_.take() : Pipe();
    const auto open_before = pipes_.open();
    ::close(dst.b);  // the client went away (its close seen as a reset on the next writes)
    dst.b = -1;
    const std::string body = pattern(512 * 1024);
    std::thread writer([&] {
        ::send(src.a, body.data(), body.size(), MSG_NOSIGNAL);  // (what fits; then closed)
    });
    ByteMove m(body.size());
    EXPECT_EQ(run(src.b, dst.a, spliced() ? &pipe : nullptr, buf_, m), Want::kFailed);
    writer.join();
    EXPECT_TRUE(m.sink_failed);
    EXPECT_TRUE(m.error == EPIPE || m.error == ECONNRESET) << m.error;
    if (spliced()) {
        const bool had_bytes = pipe.held > 0;
        pipes_.give(std::move(pipe));
        EXPECT_EQ(pipes_.open(), had_bytes ? open_before - 1 : open_before);
        EXPECT_EQ(pipes_.idle(), had_bytes ? 0U : 1U);
    }
}

INSTANTIATE_TEST_SUITE_P(SpliceAndCopy,
                         ByteRelay,
                         ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "Spliced" : "Copied"; });

// A connected pair of non-blocking SOCK_SEQPACKET sockets: each read returns one record, so a
// source can come up short with more queued — which shows whether a move read it again.
struct Records {
    int fds[2] = {-1, -1};
    Records() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, fds), 0); }
    ~Records() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    Records(const Records&) = delete;
    Records& operator=(const Records&) = delete;
};

TEST(ByteRelayCopied, AShortReadEndsItsTurnUntilTheSourceIsReadyAgain) {
    Records src;
    Tcp dst;
    ASSERT_EQ(::send(src.fds[0], std::string(100, 'a').data(), 100, 0), 100);
    ASSERT_EQ(::send(src.fds[0], std::string(100, 'b').data(), 100, 0), 100);
    std::string buf(1000, '\0');
    ByteMove m(200);
    // 100 of the 1000 it asked for: the source had no more (for a stream socket), so the move
    // waits for readiness rather than read again — the second record stays queued.
    EXPECT_EQ(move_some(src.fds[1], dst.a, nullptr, buf.data(), buf.size(), m), Want::kRead);
    EXPECT_EQ(m.written, 100U);
    EXPECT_EQ(m.left, 100U);
    EXPECT_FALSE(m.drained) << "the wait it asked for ends the drained turn";
    EXPECT_EQ(move_some(src.fds[1], dst.a, nullptr, buf.data(), buf.size(), m), Want::kDone);
    EXPECT_EQ(read_n(dst.b, 200), std::string(100, 'a') + std::string(100, 'b'));
}

TEST(ByteRelayCopied, AReadThatFillsItsBufferReadsOnAtOnce) {
    Records src;
    Tcp dst;
    ASSERT_EQ(::send(src.fds[0], std::string(100, 'a').data(), 100, 0), 100);
    ASSERT_EQ(::send(src.fds[0], std::string(100, 'b').data(), 100, 0), 100);
    std::string buf(100, '\0');
    ByteMove m(200);
    EXPECT_EQ(move_some(src.fds[1], dst.a, nullptr, buf.data(), buf.size(), m), Want::kDone);
    EXPECT_EQ(read_n(dst.b, 200), std::string(100, 'a') + std::string(100, 'b'));
}

TEST(ByteRelayCopied, AMoveThatStartsDrainedWaitsBeforeItsFirstRead) {
    Tcp src;
    Tcp dst;
    send_all(src.a, "xyz");
    std::string buf(1000, '\0');
    ByteMove m(3);
    m.drained = true;  // (as send_direct sets it after its own read came up short)
    EXPECT_EQ(move_some(src.b, dst.a, nullptr, buf.data(), buf.size(), m), Want::kRead);
    EXPECT_EQ(m.written, 0U);
    std::string rest(1000, '\0');
    EXPECT_EQ(run(src.b, dst.a, nullptr, rest, m), Want::kDone);
    EXPECT_EQ(read_n(dst.b, 3), "xyz");
}

TEST(Pipes, AreBoundedAndReused) {
    Pipes pipes(2, kPipeSize);
    Pipe a = pipes.take();
    Pipe b = pipes.take();
    ASSERT_TRUE(a);
    ASSERT_TRUE(b);
    EXPECT_FALSE(pipes.take()) << "a third pipe beyond max_open";
    EXPECT_EQ(pipes.open(), 2U);
    const int fd = a.read_end();
    pipes.give(std::move(a));
    Pipe again = pipes.take();
    EXPECT_EQ(again.read_end(), fd) << "the free pipe is handed out again";
    again.held = 3;  // (as if a body had been cut off with bytes in it)
    pipes.give(std::move(again));
    EXPECT_EQ(pipes.open(), 1U);
    EXPECT_EQ(pipes.idle(), 0U);
    EXPECT_TRUE(pipes.take()) << "room again for a new one";
}

}  // namespace
}  // namespace lb
