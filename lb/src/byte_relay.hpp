#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lb {

// Moving a known number of body bytes from one plain TCP socket to another without parsing them:
// through a pipe with splice(2) (socket -> pipe -> socket: the bytes never enter user space), or
// through a relay buffer with recv/send. HTTP framing stays with the caller: it says how many
// bytes to move (a Content-Length's rest, a chunk's data); the mover never reads past them, so
// what follows on the connection (the next request, a chunk's CRLF) stays in the socket.

// A pipe for splice(2): both ends non-blocking and close-on-exec. Move-only; closes its ends.
class Pipe {
public:
    Pipe() = default;
    Pipe(int read_end, int write_end) : r_(read_end), w_(write_end) {}
    Pipe(Pipe&& o) noexcept : held(o.held), r_(o.r_), w_(o.w_) {
        o.r_ = o.w_ = -1;
        o.held = 0;
    }
    Pipe& operator=(Pipe&& o) noexcept;
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    ~Pipe() { close(); }

    explicit operator bool() const { return r_ >= 0; }
    [[nodiscard]] int read_end() const { return r_; }
    [[nodiscard]] int write_end() const { return w_; }
    void close();

    std::size_t held = 0;  // bytes in it (spliced in, not yet out)

private:
    int r_ = -1;
    int w_ = -1;
};

// A worker's pipes. A body takes one and gives it back empty; a pipe that still holds bytes (a
// body cut off mid-way) is closed instead, so no byte of one body can reach another. Bounded: at
// most `max_open` exist at once (two descriptors each); beyond that — or when the kernel refuses a
// pipe — take() gives an empty Pipe and the body is copied instead.
class Pipes {
public:
    // `size`: the capacity asked of each new pipe (F_SETPIPE_SZ; the kernel's default if refused).
    Pipes(std::uint32_t max_open, std::size_t size) : max_open_(max_open), size_(size) {}
    Pipes(const Pipes&) = delete;
    Pipes& operator=(const Pipes&) = delete;

    Pipe take();
    void give(Pipe pipe);
    [[nodiscard]] std::uint32_t open() const { return open_; }
    [[nodiscard]] std::size_t idle() const { return free_.size(); }

private:
    std::vector<Pipe> free_;
    std::uint32_t open_ = 0;  // taken or free
    std::uint32_t max_open_;
    std::size_t size_;
};

// What moving bytes needs next.
enum class Want {
    kDone,    // every byte was written
    kRead,    // wait until the source is readable
    kWrite,   // wait until the sink is writable
    kFailed,  // `error` says why: the source ended early (kEnded), or a socket's errno
};

// One move of `left` bytes, as far as it has gone. The buffer strategy keeps what it read in the
// caller's buffer (`buffered` bytes from `offset`); the pipe strategy in the pipe (`Pipe::held`).
struct ByteMove {
    static constexpr int kEnded = -1;  // `error` when the source closed before `left` came

    explicit ByteMove(std::uint64_t bytes) : left(bytes) {}
    std::uint64_t left;         // still to read from the source
    std::uint64_t written = 0;  // written to the sink so far
    std::size_t buffered = 0;   // (buffer strategy) read, not yet written
    std::size_t offset = 0;     // (buffer strategy) where the unwritten bytes start
    int error = 0;
    bool sink_failed = false;  // (kFailed) writing failed, not reading
    // The source's last read took all it had (it filled less than it asked for): the move waits
    // for the source before reading it again, instead of a read that would find nothing.
    bool drained = false;
};

// The capacity asked of each pipe: a 1 MiB body moves in 4 splices each way, not 16.
inline constexpr std::size_t kPipeSize = 256 * 1024;

// Moves as much as `in` has and `out` takes without waiting (both non-blocking sockets):
// through `pipe` when it is set (splice), else through `buf` of `buf_size` bytes. Returns what it
// waits for next. After kRead the pipe or buffer is empty (a caller may lend the buffer out
// while it waits); after kFailed the pipe may hold bytes (Pipes::give closes it).
Want move_some(int in, int out, Pipe* pipe, char* buf, std::size_t buf_size, ByteMove& m);

}  // namespace lb
