#include "byte_relay.hpp"

#include <algorithm>
#include <cerrno>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace lb {

Pipe& Pipe::operator=(Pipe&& o) noexcept {
    if (this != &o) {
        close();
        r_ = o.r_;
        w_ = o.w_;
        held = o.held;
        o.r_ = o.w_ = -1;
        o.held = 0;
    }
    return *this;
}

void Pipe::close() {
    if (r_ >= 0) {
        ::close(r_);
        ::close(w_);
    }
    r_ = w_ = -1;
    held = 0;
}

Pipe Pipes::take() {
    if (!free_.empty()) {
        Pipe p = std::move(free_.back());
        free_.pop_back();
        return p;
    }
    if (open_ >= max_open_) {
        return {};
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        return {};  // (EMFILE, ENFILE: the body is copied instead)
    }
    // A larger pipe moves a large body in fewer splices; refused (fs.pipe-max-size, the user's
    // pipe quota), the default 64 KiB pipe works as well.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size_));
    ++open_;
    return {fds[0], fds[1]};
}

void Pipes::give(Pipe pipe) {
    if (!pipe) {
        return;
    }
    if (pipe.held > 0) {
        pipe.close();  // what is left of a body cut off: never handed to another
        --open_;
        return;
    }
    free_.push_back(std::move(pipe));
}

namespace {

bool again(int e) {
    return e == EAGAIN || e == EWOULDBLOCK;
}

// One read from the source into the pipe or the buffer: false when it cannot go on now (`want`
// says why: kRead, or kFailed with m.error).
bool read_in(int in, Pipe* pipe, char* buf, std::size_t buf_size, ByteMove& m, Want& want) {
    ssize_t n = 0;
    if (pipe != nullptr) {
        // What the pipe has room for (its capacity is at least 64 KiB; a splice of more than the
        // room moves what fits).
        const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(m.left, 1U << 20));
        n = ::splice(in, nullptr, pipe->write_end(), nullptr, len,
                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } else {
        const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(m.left, buf_size));
        n = ::recv(in, buf, len, 0);
        // (Short: the socket had no more. A splice can stop short with more to come — the pipe
        // was full — so it says nothing about the source.)
        m.drained = n > 0 && static_cast<std::size_t>(n) < len;
    }
    if (n > 0) {
        m.left -= static_cast<std::uint64_t>(n);
        if (pipe != nullptr) {
            pipe->held += static_cast<std::size_t>(n);
        } else {
            m.buffered = static_cast<std::size_t>(n);
            m.offset = 0;
        }
        return true;
    }
    if (n == 0) {
        m.error = ByteMove::kEnded;
        want = Want::kFailed;
    } else if (again(errno)) {
        want = Want::kRead;
    } else if (errno != EINTR) {
        m.error = errno;
        want = Want::kFailed;
    } else {
        return true;  // (interrupted: try again)
    }
    return false;
}

// One write of what is held to the sink: false when it cannot go on now (kWrite or kFailed).
bool write_out(int out, Pipe* pipe, const char* buf, ByteMove& m, Want& want) {
    ssize_t n = 0;
    if (pipe != nullptr) {
        n = ::splice(pipe->read_end(), nullptr, out, nullptr, pipe->held,
                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } else {
        n = ::send(out, buf + m.offset, m.buffered, MSG_NOSIGNAL);
    }
    if (n > 0) {
        m.written += static_cast<std::uint64_t>(n);
        if (pipe != nullptr) {
            pipe->held -= static_cast<std::size_t>(n);
        } else {
            m.buffered -= static_cast<std::size_t>(n);
            m.offset += static_cast<std::size_t>(n);
        }
        return true;
    }
    if (n < 0 && again(errno)) {
        want = Want::kWrite;
    } else if (n < 0 && errno == EINTR) {
        return true;
    } else {
        m.error = n < 0 ? errno : EPIPE;
        m.sink_failed = true;
        want = Want::kFailed;
    }
    return false;
}

}  // namespace

Want move_some(int in, int out, Pipe* pipe, char* buf, std::size_t buf_size, ByteMove& m) {
    for (;;) {
        const std::size_t held = pipe != nullptr ? pipe->held : m.buffered;
        Want want = Want::kDone;
        if (held > 0) {
            if (!write_out(out, pipe, buf, m, want)) {
                return want;
            }
            continue;
        }
        if (m.left == 0) {
            return Want::kDone;
        }
        if (m.drained) {
            // Its next bytes come with readiness (nginx's and HAProxy's rule on edge-triggered
            // epoll): a read now would only find nothing.
            m.drained = false;
            return Want::kRead;
        }
        if (!read_in(in, pipe, buf, buf_size, m, want)) {
            return want;
        }
    }
}

}  // namespace lb
