// An HTTP/2 connection's protocol state on libnghttp2, server or client: callbacks turn frames
// into request (or response) events, a data provider per outgoing body hands nghttp2 the bytes
// as the peer's window allows.
#include "h2_session.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include <nghttp2/nghttp2.h>

namespace lb {

namespace {

// A response body on its way out: what the caller gave, what nghttp2 took.
struct Outgoing {
    std::string data;
    std::size_t sent = 0;
    bool eof = false;
    bool deferred = false;  // nghttp2 waits for data (resume on the next body())
    bool has_trailers = false;
    std::vector<H2Field> trailers;
    [[nodiscard]] std::size_t pending() const { return data.size() - sent; }
};

// A message being received: its head (a server's request, a client's response) or trailers,
// and the bytes of fields seen so far.
struct Incoming {
    H2RequestHead head;
    H2ResponseHead response;
    std::vector<H2Field> trailers;
    std::size_t field_bytes = 0;
    bool head_done = false;
};

std::vector<nghttp2_nv> name_values(
    const std::vector<std::pair<std::string_view, std::string_view>>& fields,
    std::string_view unique = {}) {
    std::vector<nghttp2_nv> out;
    out.reserve(fields.size());
    for (const auto& [name, value] : fields) {
        // (nghttp2 copies them: NO_COPY is not set)
        out.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                       reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())),
                       name.size(), value.size(),
                       !unique.empty() && name == unique ? std::uint8_t{NGHTTP2_NV_FLAG_NO_INDEX}
                                                         : std::uint8_t{NGHTTP2_NV_FLAG_NONE}});
    }
    return out;
}

}  // namespace

struct H2Session::State {
    H2Limits limits;
    Events events;
    nghttp2_session* session = nullptr;
    std::map<std::int32_t, Incoming> incoming;
    std::map<std::int32_t, Outgoing> outgoing;
    bool ended_by_error = false;
    bool client = false;
    bool goaway_received = false;  // (libnghttp2's check_request_allowed does not look at it)

    ~State() {
        if (session != nullptr) {
            nghttp2_session_del(session);
        }
    }

    static State& of(void* user) { return *static_cast<State*>(user); }

    static int on_begin_headers(nghttp2_session* /*s*/, const nghttp2_frame* frame, void* user) {
        auto& st = of(user);
        if (frame->hd.type != NGHTTP2_HEADERS) {
            return 0;
        }
        auto& in = st.incoming[frame->hd.stream_id];
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            in.head.stream = frame->hd.stream_id;
        } else if (st.client && !in.head_done) {
            in.response = H2ResponseHead{};  // (the final head after a 1xx starts afresh)
            in.response.stream = frame->hd.stream_id;
            in.field_bytes = 0;
        }
        return 0;
    }

    static int on_header(nghttp2_session* /*s*/,
                         const nghttp2_frame* frame,
                         const std::uint8_t* name,
                         std::size_t namelen,
                         const std::uint8_t* value,
                         std::size_t valuelen,
                         std::uint8_t /*flags*/,
                         void* user) {
        auto& st = of(user);
        const auto it = st.incoming.find(frame->hd.stream_id);
        if (it == st.incoming.end()) {
            return 0;
        }
        auto& in = it->second;
        in.field_bytes += namelen + valuelen + 32;
        if (in.field_bytes > st.limits.max_header_list_size) {
            // the stream is reset; what was decoded of the rest is dropped
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        const std::string_view n(reinterpret_cast<const char*>(name), namelen);
        std::string v(reinterpret_cast<const char*>(value), valuelen);
        if (in.head_done) {
            in.trailers.push_back({std::string(n), std::move(v)});
        } else if (st.client) {
            if (n == ":status") {
                unsigned status = 0;
                for (const char ch : v) {
                    status = status * 10 + static_cast<unsigned>(ch - '0');  // (checked by nghttp2)
                }
                in.response.status = status;
            } else if (!n.starts_with(":")) {
                in.response.fields.push_back({std::string(n), std::move(v)});
            }
        } else if (n == ":method") {
            in.head.method = std::move(v);
        } else if (n == ":scheme") {
            in.head.scheme = std::move(v);
        } else if (n == ":authority") {
            in.head.authority = std::move(v);
        } else if (n == ":path") {
            in.head.path = std::move(v);
        } else if (!n.starts_with(":")) {
            in.head.fields.push_back({std::string(n), std::move(v)});
        }
        return 0;
    }

    static int on_frame_recv(nghttp2_session* /*s*/, const nghttp2_frame* frame, void* user) {
        auto& st = of(user);
        const std::int32_t id = frame->hd.stream_id;
        const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (frame->hd.type == NGHTTP2_GOAWAY) {
            st.goaway_received = true;
        }
        if (frame->hd.type == NGHTTP2_HEADERS) {
            const auto it = st.incoming.find(id);
            if (it == st.incoming.end()) {
                return 0;
            }
            auto& in = it->second;
            if (!in.head_done && st.client) {
                if (in.response.status < 200) {
                    return 0;  // a 1xx: the final head follows
                }
                in.head_done = true;
                in.response.end_stream = end;
                if (st.events.response) {
                    st.events.response(std::move(in.response));
                }
            } else if (!in.head_done) {
                in.head_done = true;
                in.head.end_stream = end;
                if (st.events.request) {
                    st.events.request(std::move(in.head));
                }
            } else if (st.events.trailers) {
                st.events.trailers(id, std::move(in.trailers));
                in.trailers.clear();
            }
            if (end && st.events.end) {
                st.events.end(id);
            }
        } else if (frame->hd.type == NGHTTP2_DATA && end && st.events.end) {
            st.events.end(id);
        }
        return 0;
    }

    static int on_data_chunk(nghttp2_session* /*s*/,
                             std::uint8_t /*flags*/,
                             std::int32_t stream,
                             const std::uint8_t* data,
                             std::size_t len,
                             void* user) {
        auto& st = of(user);
        if (st.events.body) {
            st.events.body(stream, std::string_view(reinterpret_cast<const char*>(data), len));
        }
        return 0;
    }

    static int on_frame_send(nghttp2_session* /*s*/, const nghttp2_frame* frame, void* user) {
        if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
            of(user).ended_by_error = true;
        }
        return 0;
    }

    static int on_stream_close(nghttp2_session* /*s*/,
                               std::int32_t stream,
                               std::uint32_t error,
                               void* user) {
        auto& st = of(user);
        st.incoming.erase(stream);
        st.outgoing.erase(stream);
        if (st.events.closed) {
            st.events.closed(stream, error);
        }
        return 0;
    }

    static ssize_t read_body(nghttp2_session* session,
                             std::int32_t stream,
                             std::uint8_t* buf,
                             std::size_t length,
                             std::uint32_t* flags,
                             nghttp2_data_source* /*source*/,
                             void* user) {
        auto& st = of(user);
        const auto it = st.outgoing.find(stream);
        if (it == st.outgoing.end()) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        auto& out = it->second;
        const std::size_t n = std::min(length, out.pending());
        // (memcpy: std::copy_n from char to std::uint8_t is a byte-at-a-time loop in GCC 12's
        // -O2 code, 13% of the balancer's CPU at 16 KiB responses)
        std::memcpy(buf, out.data.data() + out.sent, n);
        out.sent += n;
        if (out.sent > 64 * 1024 && out.sent * 2 > out.data.size()) {
            out.data.erase(0, out.sent);  // (keep the buffer to what is still to go)
            out.sent = 0;
        }
        if (out.pending() == 0) {
            if (out.eof) {
                *flags |= NGHTTP2_DATA_FLAG_EOF;
                if (out.has_trailers) {
                    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                    std::vector<std::pair<std::string_view, std::string_view>> fields;
                    for (const auto& f : out.trailers) {
                        fields.emplace_back(f.name, f.value);
                    }
                    auto nva = name_values(fields);
                    if (nghttp2_submit_trailer(session, stream, nva.data(), nva.size()) != 0) {
                        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                    }
                }
            } else if (n == 0) {
                out.deferred = true;
                return NGHTTP2_ERR_DEFERRED;
            }
        }
        return static_cast<ssize_t>(n);
    }

    void resume(std::int32_t stream, Outgoing& out) {
        if (out.deferred) {
            out.deferred = false;
            nghttp2_session_resume_data(session, stream);
        }
    }
};

H2Limits h2_limits(const Http2Config& config, std::string_view unique_field) {
    H2Limits l;
    l.unique_field.resize(unique_field.size());
    std::transform(unique_field.begin(), unique_field.end(), l.unique_field.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    l.max_concurrent_streams = config.max_concurrent_streams;
    l.max_header_list_size = config.max_header_list_size;
    l.initial_window = config.initial_window;
    l.connection_window = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(4ULL * config.initial_window, 0x7fffffff));
    return l;
}

H2Session::H2Session(std::unique_ptr<State> state) : state_(std::move(state)) {}

H2Session::~H2Session() = default;

namespace {

// A session of either role: the callbacks, the limits as options and SETTINGS, the connection's
// window. nullptr when libnghttp2 cannot allocate it.
nghttp2_session* new_session(H2Session::State& st, bool client);

}  // namespace

std::unique_ptr<H2Session> H2Session::server(const H2Limits& limits, Events events) {
    auto st = std::make_unique<State>();
    st->limits = limits;
    st->events = std::move(events);
    st->session = new_session(*st, false);
    if (st->session == nullptr) {
        return nullptr;
    }
    return std::unique_ptr<H2Session>(new H2Session(std::move(st)));
}

std::unique_ptr<H2Session> H2Session::client(const H2Limits& limits, Events events) {
    auto st = std::make_unique<State>();
    st->limits = limits;
    st->events = std::move(events);
    st->client = true;
    st->session = new_session(*st, true);
    if (st->session == nullptr) {
        return nullptr;
    }
    return std::unique_ptr<H2Session>(new H2Session(std::move(st)));
}

namespace {

nghttp2_session* new_session(H2Session::State& st, bool client) {
    const H2Limits& limits = st.limits;
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return nullptr;
    }
    using State = H2Session::State;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &State::on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, &State::on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &State::on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &State::on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &State::on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, &State::on_frame_send);
    nghttp2_option* opt = nullptr;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return nullptr;
    }
    nghttp2_option_set_max_continuations(opt, limits.max_continuations);
    nghttp2_option_set_stream_reset_rate_limit(opt, limits.reset_burst, limits.reset_rate);
    nghttp2_option_set_max_settings(opt, limits.max_settings);
    nghttp2_option_set_max_outbound_ack(opt, limits.max_outbound_ack);
    // Bodies are acknowledged as they are sent on (consume()), not as they arrive: a slow
    // reader on the other side slows the sender down instead of growing a buffer here.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session* session = nullptr;
    const int rv = client ? nghttp2_session_client_new2(&session, cb, &st, opt)
                          : nghttp2_session_server_new2(&session, cb, &st, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        return nullptr;
    }
    std::vector<nghttp2_settings_entry> settings = {
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_size},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.initial_window},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    if (!client) {
        settings.push_back(
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams});
    }
    if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) !=
        0) {
        nghttp2_session_del(session);
        return nullptr;
    }
    // the connection's own window, beyond the 65,535 bytes every connection starts with
    if (limits.connection_window > 65535) {
        nghttp2_session_set_local_window_size(
            session, NGHTTP2_FLAG_NONE, 0,
            static_cast<std::int32_t>(
                std::min<std::uint32_t>(limits.connection_window, NGHTTP2_MAX_WINDOW_SIZE)));
    }
    return session;
}

}  // namespace

std::int32_t H2Session::request(const H2RequestHead& head) {
    if (!can_open()) {
        return 0;
    }
    std::vector<std::pair<std::string_view, std::string_view>> all = {
        {":method", head.method},
        {":scheme", head.scheme},
        {":authority", head.authority},
        {":path", head.path}};
    for (const auto& f : head.fields) {
        all.emplace_back(f.name, f.value);
    }
    auto nva = name_values(all, state_->limits.unique_field);
    nghttp2_data_provider provider{};
    provider.read_callback = &State::read_body;
    const std::int32_t id = nghttp2_submit_request(state_->session, nullptr, nva.data(), nva.size(),
                                                   head.end_stream ? nullptr : &provider, nullptr);
    if (id <= 0) {
        return 0;
    }
    if (!head.end_stream) {
        state_->outgoing[id] = Outgoing{};  // (read only when the session sends: later)
    }
    return id;
}

bool H2Session::can_open() const {
    return !state_->goaway_received && nghttp2_session_check_request_allowed(state_->session) != 0;
}

std::uint32_t H2Session::peer_max_streams() const {
    return nghttp2_session_get_remote_settings(state_->session,
                                               NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

std::expected<void, std::string> H2Session::receive(std::string_view bytes) {
    auto* s = state_->session;
    const auto rv = nghttp2_session_mem_recv(s, reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                             bytes.size());
    if (rv < 0) {
        const auto code = static_cast<int>(rv);
        nghttp2_session_terminate_session(
            s, code == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
        return std::unexpected(std::string(nghttp2_strerror(code)));
    }
    return {};  // (the client may have ended it: alive() says)
}

std::string H2Session::output(std::size_t max) {
    std::string out;
    output(out, max);
    return out;
}

void H2Session::output(std::string& out, std::size_t max) {
    out.clear();  // (its capacity is kept: one buffer per connection, not one per write)
    while (out.size() < max) {
        const std::uint8_t* data = nullptr;
        const auto n = nghttp2_session_mem_send(state_->session, &data);
        if (n <= 0) {
            break;
        }
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
}

bool H2Session::respond(std::int32_t stream,
                        unsigned status,
                        const std::vector<H2Field>& fields,
                        bool end_stream) {
    const std::string code = std::to_string(status);
    std::vector<std::pair<std::string_view, std::string_view>> all = {{":status", code}};
    for (const auto& f : fields) {
        all.emplace_back(f.name, f.value);
    }
    auto nva = name_values(all, state_->limits.unique_field);
    if (end_stream) {
        return nghttp2_submit_response(state_->session, stream, nva.data(), nva.size(), nullptr) ==
               0;
    }
    state_->outgoing[stream] = Outgoing{};
    nghttp2_data_provider provider{};
    provider.read_callback = &State::read_body;
    if (nghttp2_submit_response(state_->session, stream, nva.data(), nva.size(), &provider) != 0) {
        state_->outgoing.erase(stream);
        return false;
    }
    return true;
}

bool H2Session::body(std::int32_t stream, std::string_view data, bool last) {
    const auto it = state_->outgoing.find(stream);
    if (it == state_->outgoing.end() || it->second.eof) {
        return false;
    }
    it->second.data.append(data);
    it->second.eof = last;
    state_->resume(stream, it->second);
    return true;
}

bool H2Session::trailers(std::int32_t stream, const std::vector<H2Field>& fields) {
    const auto it = state_->outgoing.find(stream);
    if (it == state_->outgoing.end() || it->second.eof) {
        return false;
    }
    it->second.eof = true;
    it->second.has_trailers = true;
    it->second.trailers = fields;
    state_->resume(stream, it->second);
    return true;
}

void H2Session::consume(std::int32_t stream, std::size_t bytes) {
    if (bytes > 0) {
        nghttp2_session_consume(state_->session, stream, bytes);
    }
}

void H2Session::reset(std::int32_t stream, std::uint32_t error) {
    nghttp2_submit_rst_stream(state_->session, NGHTTP2_FLAG_NONE, stream, error);
}

void H2Session::ping() {
    nghttp2_submit_ping(state_->session, NGHTTP2_FLAG_NONE, nullptr);
}

void H2Session::goaway(std::uint32_t error) {
    auto* s = state_->session;
    if (error == 0) {
        nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s),
                              NGHTTP2_NO_ERROR, nullptr, 0);
    } else {
        nghttp2_session_terminate_session(s, error);
    }
}

std::size_t H2Session::buffered(std::int32_t stream) const {
    const auto it = state_->outgoing.find(stream);
    return it == state_->outgoing.end() ? 0 : it->second.pending();
}

std::size_t H2Session::open_streams() const {
    return std::max(state_->incoming.size(), state_->outgoing.size());
}

bool H2Session::ended_by_error() const {
    return state_->ended_by_error;
}

bool H2Session::alive() const {
    return nghttp2_session_want_read(state_->session) != 0 ||
           nghttp2_session_want_write(state_->session) != 0;
}

}  // namespace lb
