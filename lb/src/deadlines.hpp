#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include <boost/intrusive/list.hpp>

#include "io.hpp"
#include "lb/headers.hpp"

namespace lb {

// Deadlines without a timer per operation: each session has one Watch (its current deadline and
// the socket to cancel when it passes) on its worker's list, and a ticker walks the list every
// kTick. The same walk parks connections idle for kParkAfter: their read is cancelled and they
// wait for the next request as a small Parked object, with no buffer and no coroutine frame.
inline constexpr auto kTick = std::chrono::milliseconds(50);
inline constexpr auto kParkAfter = std::chrono::seconds(1);

struct Watch
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    Clock::time_point deadline = Clock::time_point::max();
    Socket* target = nullptr;
    bool fired = false;
    bool idle = false;    // between requests: drain closes it at once
    bool linger = false;  // answered early (413, 400...): drain what the client still sends
    bool park = false;    // set by the ticker: an idle wait is to continue without a buffer
    bool parked = false;  // ... and was already moved (once per idle period)
    Clock::time_point idle_since{};
    void arm(Socket& socket, Clock::time_point at) {
        target = &socket;
        deadline = at;
        fired = false;
    }
    void disarm() {
        target = nullptr;
        deadline = Clock::time_point::max();
    }
};
using WatchList = boost::intrusive::list<Watch, boost::intrusive::constant_time_size<false>>;

// What the ticker does with a watch at `now`: fire it (its deadline passed: the socket's
// operation is cancelled and the session sees `fired`), park it (idle for kParkAfter, not
// parked yet in this idle period), or nothing. Pure.
enum class Due { kNothing, kFire, kPark };
Due due(const Watch& w, Clock::time_point now);

// The deadline of the next read of a request body that started arriving at `start` and has
// brought `received` bytes so far: `idle` from `now` (timeouts.clientBody), and, when
// `min_rate` (bytes per second) is not 0, no later than the rate allows after `grace` — as
// Apache's mod_reqtimeout: each `min_rate` bytes buy one more second. A body trickled one byte
// every few seconds is then cut after about `grace`, one at a legitimate rate never. Pure.
Clock::time_point body_read_deadline(Clock::time_point start,
                                     std::uint64_t received,
                                     Clock::time_point now,
                                     Clock::duration idle,
                                     std::uint64_t min_rate,
                                     Clock::duration grace);

// One tick: applies due() to every watch of the list.
void tick(WatchList& watches, Clock::time_point now);

// An idle keep-alive connection without a coroutine (Conn: Socket or TlsClientPtr).
template <class Conn>
struct Parked {
    Parked(Conn c, std::optional<Peer> p) : conn(std::move(c)), proxied(std::move(p)) {}
    Watch watch;
    Conn conn;
    std::optional<Peer> proxied;  // the PROXY protocol's addresses, when the connection had them
};

}  // namespace lb
