// fake-h2-upstream: a small HTTP/2 server (h2c with prior knowledge; h2 by ALPN with
// --tls-cert FILE --tls-key FILE) on libnghttp2, standing in for an h2 cluster and a gRPC
// service in tandem-lb's tests.
//   POST /tandem.Echo/Unary    gRPC unary: the request's message back as "NAME: message", then
//                              trailers grpc-status 0
//   POST /tandem.Echo/Stream   gRPC bidirectional streaming: each message answered at once as
//                              "NAME: message" (so a client that waits for each answer before
//                              sending the next works only through a full-duplex proxy); the
//                              request's end → trailers grpc-status 0
//   POST /tandem.Echo/Fail     gRPC trailers-only answer: grpc-status 5, grpc-message "no such"
//   GET /health                200 "ok" (503 after GET /__sick, 200 again after GET /__well)
//   GET /__refuse?on=1         every other stream is refused (RST_STREAM REFUSED_STREAM; on=0:
//                              normal)
//   GET /__goaway              answered, then GOAWAY (no error) on that connection
//   GET /count                 requests served (excluding /health and these)
//   GET /slow?ms=N             answered after N ms
//   GET /big?bytes=N           a body of N bytes
//   anything else              200 "NAME\n", x-upstream: NAME, and x-echo-{authority,scheme,
//                              forwarded-for,request-id,te,method} showing what came; a body is
//                              counted into x-echo-body-bytes (the answer waits for its end)
// Prints "fake-h2-upstream NAME listening on HOST:PORT" once bound.
#include <charconv>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <nghttp2/nghttp2.h>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::string name = "h2upstream";
bool sick = false;
bool refusing = false;
std::uint64_t served = 0;

struct Stream {
    std::map<std::string, std::string> fields;
    std::string body;  // what arrived and is not answered yet
    std::uint64_t bytes = 0;
    std::string out;  // response body to send
    std::size_t sent = 0;
    bool out_eof = false;
    bool grpc_stream = false;
    bool responded = false;
    std::vector<std::pair<std::string, std::string>> trailers;
};

struct Conn {
    explicit Conn(const asio::any_io_executor& ex) : executor(ex), wake(ex) {}
    asio::any_io_executor executor;
    asio::steady_timer wake;  // the writer waits on it; cancel() wakes it
    std::weak_ptr<Conn> self;
    nghttp2_session* session = nullptr;
    std::map<std::int32_t, Stream> streams;
    bool goaway_after = false;
    bool done = false;
    ~Conn() { nghttp2_session_del(session); }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
};

std::string field(const Stream& s, const std::string& key) {
    const auto it = s.fields.find(key);
    return it == s.fields.end() ? "" : it->second;
}

std::vector<nghttp2_nv> nva(const std::vector<std::pair<std::string, std::string>>& fs) {
    std::vector<nghttp2_nv> out;
    for (const auto& [n, v] : fs) {
        out.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                       reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(),
                       v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return out;
}

ssize_t read_out(nghttp2_session* session,
                 std::int32_t id,
                 std::uint8_t* buf,
                 std::size_t length,
                 std::uint32_t* flags,
                 nghttp2_data_source* /*source*/,
                 void* user) {
    auto& c = *static_cast<Conn*>(user);
    const auto it = c.streams.find(id);
    if (it == c.streams.end()) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    auto& s = it->second;
    const std::size_t n = std::min(length, s.out.size() - s.sent);
    std::copy_n(s.out.data() + s.sent, n, buf);
    s.sent += n;
    if (s.sent == s.out.size()) {
        if (!s.out_eof) {
            if (n == 0) {
                return NGHTTP2_ERR_DEFERRED;
            }
            return static_cast<ssize_t>(n);
        }
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!s.trailers.empty()) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            auto t = nva(s.trailers);
            nghttp2_submit_trailer(session, id, t.data(), t.size());
        }
    }
    return static_cast<ssize_t>(n);
}

void respond(Conn& c,
             std::int32_t id,
             unsigned status,
             std::vector<std::pair<std::string, std::string>> fields,
             bool with_body) {
    auto& s = c.streams[id];
    s.responded = true;
    fields.insert(fields.begin(), {":status", std::to_string(status)});
    auto v = nva(fields);
    nghttp2_data_provider dp{};
    dp.read_callback = read_out;
    nghttp2_submit_response(c.session, id, v.data(), v.size(), with_body ? &dp : nullptr);
}

std::string grpc_message(std::string_view payload) {
    std::string m(5, '\0');
    const auto n = static_cast<std::uint32_t>(payload.size());
    m[1] = static_cast<char>(n >> 24);
    m[2] = static_cast<char>(n >> 16);
    m[3] = static_cast<char>(n >> 8);
    m[4] = static_cast<char>(n);
    return m + std::string(payload);
}

// Complete gRPC messages at the front of `body`, taken out of it.
std::vector<std::string> take_messages(std::string& body) {
    std::vector<std::string> out;
    while (body.size() >= 5) {
        std::uint32_t n = 0;
        for (std::size_t i = 1; i < 5; ++i) {
            n = (n << 8) | static_cast<std::uint8_t>(body[i]);
        }
        if (body.size() < 5 + n) {
            break;
        }
        out.push_back(body.substr(5, n));
        body.erase(0, 5 + n);
    }
    return out;
}

const std::vector<std::pair<std::string, std::string>> kGrpcOk = {{"grpc-status", "0"},
                                                                  {"grpc-message", ""}};

// The request's head is complete (`end`: and its body too).
void on_request(Conn& c, std::int32_t id, bool end) {
    auto& s = c.streams[id];
    const std::string path = field(s, ":path");
    if (path == "/tandem.Echo/Stream") {
        s.grpc_stream = true;
        respond(c, id, 200, {{"content-type", "application/grpc"}, {"x-upstream", name}}, true);
        return;
    }
    if (!end) {
        return;  // (the others answer once the body is in)
    }
    if (path == "/health") {
        s.out = sick ? "sick\n" : "ok\n";
        s.out_eof = true;
        respond(c, id, sick ? 503 : 200, {}, true);
        return;
    }
    if (path == "/__sick" || path == "/__well") {
        sick = path == "/__sick";
        respond(c, id, 200, {}, false);
        return;
    }
    if (path.starts_with("/__refuse")) {
        refusing = path.find("on=1") != std::string::npos;
        respond(c, id, 200, {}, false);
        return;
    }
    if (path == "/count") {
        s.out = std::to_string(served) + "\n";
        s.out_eof = true;
        respond(c, id, 200, {}, true);
        return;
    }
    if (refusing) {
        nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
        return;
    }
    ++served;
    if (path == "/__goaway") {
        c.goaway_after = true;
    }
    if (path == "/tandem.Echo/Unary") {
        std::string reply;
        for (const auto& m : take_messages(s.body)) {
            reply += grpc_message(name + ": " + m);
        }
        s.out = reply;
        s.out_eof = true;
        s.trailers = kGrpcOk;
        respond(c, id, 200, {{"content-type", "application/grpc"}, {"x-upstream", name}}, true);
        return;
    }
    if (path.starts_with("/slow")) {
        const auto pos = path.find("ms=");
        const long ms = pos == std::string::npos ? 0 : std::stol(path.substr(pos + 3));
        asio::co_spawn(
            c.executor,
            [self = c.self.lock(), id, ms]() -> asio::awaitable<void> {
                asio::steady_timer t(self->executor, std::chrono::milliseconds(ms));
                co_await t.async_wait(kNoThrow);
                if (!self->done && self->streams.contains(id)) {
                    self->streams[id].out = name + "\n";
                    self->streams[id].out_eof = true;
                    respond(*self, id, 200, {{"x-upstream", name}}, true);
                    self->wake.cancel();
                }
            },
            asio::detached);
        return;
    }
    if (path.starts_with("/big")) {
        const auto pos = path.find("bytes=");
        s.out.assign(pos == std::string::npos ? 0 : std::stoul(path.substr(pos + 6)), 'x');
        s.out_eof = true;
        respond(c, id, 200, {{"content-length", std::to_string(s.out.size())}}, true);
        return;
    }
    if (path == "/tandem.Echo/Fail") {
        respond(c, id, 200,
                {{"content-type", "application/grpc"},
                 {"grpc-status", "5"},
                 {"grpc-message", "no such"}},
                false);
        return;
    }
    s.out = name + "\n";
    s.out_eof = true;
    respond(c, id, 200,
            {{"content-type", "text/plain"},
             {"x-upstream", name},
             {"x-echo-authority", field(s, ":authority")},
             {"x-echo-scheme", field(s, ":scheme")},
             {"x-echo-method", field(s, ":method")},
             {"x-echo-forwarded-for", field(s, "x-forwarded-for")},
             {"x-echo-request-id", field(s, "x-request-id")},
             {"x-echo-te", field(s, "te")},
             {"x-echo-body-bytes", std::to_string(s.bytes)}},
            true);
}

int on_header(nghttp2_session* /*s*/,
              const nghttp2_frame* frame,
              const std::uint8_t* n,
              std::size_t nl,
              const std::uint8_t* v,
              std::size_t vl,
              std::uint8_t /*flags*/,
              void* user) {
    auto& c = *static_cast<Conn*>(user);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        c.streams[frame->hd.stream_id].fields[std::string(reinterpret_cast<const char*>(n), nl)] =
            std::string(reinterpret_cast<const char*>(v), vl);
    }
    return 0;
}

int on_frame(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto& c = *static_cast<Conn*>(user);
    const std::int32_t id = frame->hd.stream_id;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (!c.streams.contains(id)) {
        return 0;
    }
    auto& s = c.streams[id];
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        on_request(c, id, end);
    } else if (end && s.grpc_stream) {
        s.out_eof = true;
        s.trailers = kGrpcOk;
        nghttp2_session_resume_data(session, id);
    } else if (end && !s.responded) {
        on_request(c, id, true);
    }
    return 0;
}

int on_data(nghttp2_session* session,
            std::uint8_t /*flags*/,
            std::int32_t id,
            const std::uint8_t* data,
            std::size_t len,
            void* user) {
    auto& c = *static_cast<Conn*>(user);
    auto& s = c.streams[id];
    s.bytes += len;
    if (field(s, ":path").starts_with("/tandem.Echo/")) {
        s.body.append(reinterpret_cast<const char*>(data), len);
    }
    if (s.grpc_stream) {
        for (const auto& m : take_messages(s.body)) {
            s.out += grpc_message(name + ": " + m);
        }
        nghttp2_session_resume_data(session, id);
    }
    return 0;
}

int on_close(nghttp2_session* /*s*/, std::int32_t id, std::uint32_t /*error*/, void* user) {
    static_cast<Conn*>(user)->streams.erase(id);
    return 0;
}

tcp::socket& lowest(tcp::socket& s) {
    return s;
}
tcp::socket& lowest(asio::ssl::stream<tcp::socket>& s) {
    return s.next_layer();
}

// Sends what the session has until the connection is done.
template <class Socket>
asio::awaitable<void> write_loop(std::shared_ptr<Conn> c, std::shared_ptr<Socket> socket) {
    while (!c->done) {
        if (c->goaway_after) {
            c->goaway_after = false;
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->session),
                                  NGHTTP2_NO_ERROR, nullptr, 0);
        }
        std::string out;
        const std::uint8_t* d = nullptr;
        for (ssize_t n; (n = nghttp2_session_mem_send(c->session, &d)) > 0;) {
            out.append(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
        }
        if (out.empty()) {
            c->wake.expires_at(asio::steady_timer::time_point::max());
            co_await c->wake.async_wait(kNoThrow);
            continue;
        }
        auto [we, wn] = co_await asio::async_write(*socket, asio::buffer(out), kNoThrow);
        if (we) {
            break;
        }
    }
    c->done = true;
}

template <class Socket>
asio::awaitable<void> serve(Socket s) {
    auto socket = std::make_shared<Socket>(std::move(s));
    auto c = std::make_shared<Conn>(socket->get_executor());
    c->self = c;
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_server_new(&c->session, cb, c.get());
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 1);
    asio::co_spawn(c->executor, write_loop(c, socket), asio::detached);
    std::string in(16384, '\0');
    while (!c->done) {
        auto [re, n] = co_await socket->async_read_some(asio::buffer(in), kNoThrow);
        if (re || nghttp2_session_mem_recv(
                      c->session, reinterpret_cast<const std::uint8_t*>(in.data()), n) < 0) {
            break;
        }
        c->wake.cancel();
        if (nghttp2_session_want_read(c->session) == 0 &&
            nghttp2_session_want_write(c->session) == 0) {
            break;
        }
    }
    c->done = true;
    c->wake.cancel();
    boost::system::error_code ignored;
    lowest(*socket).cancel(ignored);  // (a write under way ends too)
}

int select_h2(SSL* /*ssl*/,
              const unsigned char** out,
              unsigned char* outlen,
              const unsigned char* in,
              unsigned int inlen,
              void* /*arg*/) {
    if (nghttp2_select_next_protocol(const_cast<unsigned char**>(out), outlen, in, inlen) != 1) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::string cert;
    std::string key;
    unsigned short port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--name") {
            name = argv[i + 1];
        } else if (a == "--port") {
            port = static_cast<unsigned short>(std::stoi(argv[i + 1]));
        } else if (a == "--tls-cert") {
            cert = argv[i + 1];
        } else if (a == "--tls-key") {
            key = argv[i + 1];
        }
    }
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address(host), port));
    std::optional<asio::ssl::context> tls;
    if (!cert.empty()) {
        tls.emplace(asio::ssl::context::tls_server);
        tls->use_certificate_chain_file(cert);
        tls->use_private_key_file(key, asio::ssl::context::pem);
        SSL_CTX_set_alpn_select_cb(tls->native_handle(), select_h2, nullptr);
    }
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto [ec, s] = co_await acceptor.async_accept(kNoThrow);
                if (ec) {
                    continue;
                }
                s.set_option(tcp::no_delay(true));
                if (!tls) {
                    asio::co_spawn(io, serve(std::move(s)), asio::detached);
                    continue;
                }
                asio::co_spawn(
                    io,
                    [&tls, sock = std::move(s)]() mutable -> asio::awaitable<void> {
                        asio::ssl::stream<tcp::socket> t(std::move(sock), *tls);
                        auto [he] =
                            co_await t.async_handshake(asio::ssl::stream_base::server, kNoThrow);
                        if (!he) {
                            co_await serve(std::move(t));
                        }
                    },
                    asio::detached);
            }
        },
        asio::detached);
    std::cout << "fake-h2-upstream " << name << " listening on " << host << ":"
              << acceptor.local_endpoint().port() << std::endl;
    io.run();
}
