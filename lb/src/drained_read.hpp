#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/version.hpp>
#include <boost/system/error_code.hpp>
#include <sys/socket.h>

#include "io.hpp"

// A read that remembers when it emptied its socket, so that the next read waits for the
// kernel's next readiness event instead of trying a recv(2) that would return EAGAIN.
//
// The epoll reactor of Asio 1.26 (Boost 1.81) keeps every socket registered edge-triggered and
// starts each read with a speculative recv; it stops speculating only after a read that returns end
// of stream (the reactor's done_and_exhausted), and its one non-speculative wait (async_wait)
// re-arms the descriptor with epoll_ctl(EPOLL_CTL_MOD) each time. On a proxy's request path both
// cost a system call per read that finds nothing: the client's next request has not arrived when
// the response left, an upstream's response has not when the request left (0.85-1.6 EAGAINs per
// request measured by bench/lb_syscalls.sh).
//
// This read is Asio's own receive operation with one rule added, the one nginx and HAProxy
// apply to their edge-triggered epoll: a read that filled less than its buffer has taken all the
// socket had, so it reports done_and_exhausted and the reactor waits for the next edge before
// reading the socket again (any read, Asio's own too). No data is ever left waiting: a segment
// that arrives after that recv — including one the kernel queued to the socket's backlog while
// the recv held it — wakes epoll again. The exception is TCP urgent data (MSG_OOB), at which a
// read stops short with bytes still queued: such a peer's connection waits for its next bytes or
// its timeout, as it does under nginx; HTTP never sends it.
//
// It reaches into Asio's reactor (the socket's descriptor state and the service's start_op,
// both protected): that is pinned to Asio 1.26 (Boost 1.81, Debian 12) on epoll; anywhere else
// async_read_drained() is the socket's async_read_some.

#if BOOST_ASIO_VERSION == 102600 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define TANDEM_LB_DRAINED_READ 1
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/conditionally_enabled_mutex.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactive_socket_service_base.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#else
#define TANDEM_LB_DRAINED_READ 0
#endif

namespace lb {

// Whether reads on this build skip the speculative recv after a short read (else they are
// Asio's async_read_some).
inline constexpr bool kDrainedReads = TANDEM_LB_DRAINED_READ != 0;

#if TANDEM_LB_DRAINED_READ
namespace drained_detail {

namespace ad = boost::asio::detail;

// The socket's implementation (its descriptor and reactor state): basic_socket::impl_.
struct SocketAccess : Socket {
    static auto& io(Socket& s) { return s.*(&SocketAccess::impl_); }
};

// The socket service's start_op (non-blocking mode, then the reactor) and its per-operation
// cancellation handler.
struct ServiceAccess : ad::reactive_socket_service_base {
    using ad::reactive_socket_service_base::reactor_op_cancellation;
    static auto start() { return &ServiceAccess::start_op; }
};

template <class Handler, class IoExecutor>
class RecvOp : public ad::reactor_op {
public:
    BOOST_ASIO_DEFINE_HANDLER_PTR(RecvOp);

    RecvOp(ad::socket_type fd,
           boost::asio::mutable_buffer buffer,
           Handler& handler,
           const IoExecutor& io_ex)
        : ad::reactor_op(boost::system::error_code(), &RecvOp::do_perform, &RecvOp::do_complete),
          fd_(fd),
          buffer_(buffer),
          handler_(std::move(handler)),
          work_(handler_, io_ex) {}

    static status do_perform(ad::reactor_op* base) {
        auto* o = static_cast<RecvOp*>(base);
        if (!ad::socket_ops::non_blocking_recv1(o->fd_, o->buffer_.data(), o->buffer_.size(), 0,
                                                true, o->ec_, o->bytes_transferred_)) {
            return not_done;  // EAGAIN: queued until the reactor reports the socket readable
        }
        if (o->ec_ == boost::asio::error::eof) {
            return done_and_exhausted;  // (as Asio's own)
        }
        if (o->ec_ || o->bytes_transferred_ == o->buffer_.size()) {
            return done;  // an error, or a full buffer: more may be there
        }
        return done_and_exhausted;  // short: the socket is empty until its next edge
    }

    static void do_complete(void* owner,
                            ad::operation* base,
                            const boost::system::error_code& /*ec*/,
                            std::size_t /*bytes*/) {
        auto* o = static_cast<RecvOp*>(base);
        ptr p = {std::addressof(o->handler_), o, o};
        ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
        // The handler is moved out before the operation's memory is given back (Asio's order).
        ad::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                             o->bytes_transferred_);
        p.h = std::addressof(handler.handler_);
        p.reset();
        if (owner) {
            ad::fenced_block b(ad::fenced_block::half);
            w.complete(handler, handler.handler_);
        }
    }

private:
    ad::socket_type fd_;
    boost::asio::mutable_buffer buffer_;
    Handler handler_;
    ad::handler_work<Handler, IoExecutor> work_;
};

struct Initiate {
    template <class Handler>
    void operator()(Handler&& handler, Socket* socket, boost::asio::mutable_buffer buffer) const {
        using Op = RecvOp<std::decay_t<Handler>, Executor>;
        auto& io = SocketAccess::io(*socket);
        auto& impl = io.get_implementation();
        const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
        p.p = new (p.v) Op(impl.socket_, buffer, handler, socket->get_executor());
        if (slot.is_connected()) {
            auto& reactor = boost::asio::use_service<ad::reactor>(socket->get_executor().context());
            p.p->cancellation_key_ = &slot.template emplace<ServiceAccess::reactor_op_cancellation>(
                &reactor, &impl.reactor_data_, impl.socket_, ad::reactor::read_op);
        }
        // (An empty buffer completes at once without a read, as in Asio: recv would say 0.)
        (io.get_service().*ServiceAccess::start())(impl, ad::reactor::read_op, p.p, is_continuation,
                                                   true, buffer.size() == 0);
        p.v = p.p = nullptr;
    }
};

// The reactor's per-socket state keeps its lock, its registered events and whether a read may be
// tried before readiness private; pointers to those members are obtained the one way C++ allows
// naming them from outside (an explicit instantiation's arguments are not access-checked), so
// that read_now() can mark a socket drained the way the reactor itself does.
using State = ad::epoll_reactor::descriptor_state;

template <class Tag, typename Tag::type Member>
struct Expose {
    friend typename Tag::type member(Tag /*tag*/) { return Member; }
};
struct LockOf {
    using type = ad::conditionally_enabled_mutex State::*;
    friend type member(LockOf /*tag*/);
};
struct RegisteredOf {
    using type = std::uint32_t State::*;
    friend type member(RegisteredOf /*tag*/);
};
struct SpeculativeOf {
    using type = bool (State::*)[ad::epoll_reactor::max_ops];
    friend type member(SpeculativeOf /*tag*/);
};
template struct Expose<LockOf, &State::mutex_>;
template struct Expose<RegisteredOf, &State::registered_events_>;
template struct Expose<SpeculativeOf, &State::try_speculative_>;

using Lock = ad::conditionally_enabled_mutex::scoped_lock;

// The socket's reactor state; none for a socket that is not open.
inline State* state_of(Socket& socket) {
    return SocketAccess::io(socket).get_implementation().reactor_data_;
}

// What a read that came up short does in the reactor (under the state's lock): the socket's
// next read waits for readiness.
inline void mark(State& state) {
    if (state.*member(RegisteredOf{}) != 0) {
        (state.*member(SpeculativeOf{}))[ad::epoll_reactor::read_op] = false;
    }
}

}  // namespace drained_detail
#endif

// Reads what `socket` has into `buffer` (Asio's async_read_some, completion
// void(error_code, std::size_t)); a short read makes the next read of the socket wait for
// readiness (above).
template <class Token>
auto async_read_drained(Socket& socket, boost::asio::mutable_buffer buffer, Token&& token) {
#if TANDEM_LB_DRAINED_READ
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        drained_detail::Initiate{}, token, &socket, buffer);
#else
    return socket.async_read_some(buffer, std::forward<Token>(token));
#endif
}

// Reads what `socket` has now, up to `buffer`'s size, without waiting. Returns the bytes read: 0
// when there were none, or the peer ended or failed (the caller's next read finds out which).
// `drained` is set when the read took all the socket had (it came up short, or found nothing);
// the socket is then marked so for the reactor, as after a short async_read_drained(): its next
// read waits for readiness instead of trying a recv(2) first.
inline std::size_t read_now(Socket& socket, boost::asio::mutable_buffer buffer, bool& drained) {
    const int fd = socket.native_handle();
    const auto attempt = [&] {
        ssize_t n = 0;
        do {
            n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        drained = n < 0 ? errno == EAGAIN || errno == EWOULDBLOCK
                        : n > 0 && static_cast<std::size_t>(n) < buffer.size();
        return n > 0 ? static_cast<std::size_t>(n) : std::size_t{0};
    };
#if TANDEM_LB_DRAINED_READ
    namespace dd = drained_detail;
    if (dd::State* state = dd::state_of(socket)) {
        // Under the socket's reactor lock, as the reactor's own reads: a readiness event that
        // comes after the recv is handled after the mark, and undoes it.
        const dd::Lock lock(state->*member(dd::LockOf{}));
        const std::size_t n = attempt();
        if (drained) {
            dd::mark(*state);
        }
        return n;
    }
#endif
    return attempt();
}

// Marks `socket` drained for the reactor, as a short read would: its next read waits for
// readiness instead of trying a recv(2) first. For a socket the caller knows has nothing to read
// before an event of its own (an upstream connection after a whole response). Elsewhere than on
// Asio 1.26 with epoll, nothing.
inline void mark_drained(Socket& socket) {
#if TANDEM_LB_DRAINED_READ
    namespace dd = drained_detail;
    if (dd::State* state = dd::state_of(socket)) {
        const dd::Lock lock(state->*member(dd::LockOf{}));
        dd::mark(*state);
    }
#else
    (void)socket;
#endif
}

}  // namespace lb
