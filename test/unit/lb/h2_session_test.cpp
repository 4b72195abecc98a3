// The HTTP/2 server session (H2Session) against libnghttp2's own client session, in memory:
// requests and their bodies and trailers come up as events, responses go down with bodies held
// for the flow-control window and trailers; an oversized header list resets only its stream;
// rapid resets, CONTINUATION floods and PING floods end the connection with a GOAWAY.
#include "h2_session.hpp"

#include <algorithm>
#include <map>

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

namespace lb {
namespace {

// What the client saw, by stream.
struct ClientSide {
    std::map<std::int32_t, std::vector<std::pair<std::string, std::string>>> headers;
    std::map<std::int32_t, std::string> bodies;
    std::map<std::int32_t, std::uint32_t> closed;
    bool goaway = false;
    std::uint32_t goaway_error = 0;
};

class Pair {
public:
    explicit Pair(H2Limits limits = {}) {
        H2Session::Events ev;
        ev.request = [this](H2RequestHead h) { requests.push_back(std::move(h)); };
        ev.body = [this](std::int32_t s, std::string_view d) { bodies[s] += d; };
        ev.trailers = [this](std::int32_t s, std::vector<H2Field> f) { trailers[s] = f; };
        ev.end = [this](std::int32_t s) { ended.push_back(s); };
        ev.closed = [this](std::int32_t s, std::uint32_t e) { closed[s] = e; };
        server = H2Session::server(limits, std::move(ev));
        nghttp2_session_callbacks* cb = nullptr;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_on_header_callback(
            cb, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
                   const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
                static_cast<ClientSide*>(u)->headers[f->hd.stream_id].emplace_back(
                    std::string(reinterpret_cast<const char*>(n), nl),
                    std::string(reinterpret_cast<const char*>(v), vl));
                return 0;
            });
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
            cb, [](nghttp2_session*, std::uint8_t, std::int32_t s, const std::uint8_t* d,
                   std::size_t l, void* u) {
                static_cast<ClientSide*>(u)->bodies[s].append(reinterpret_cast<const char*>(d), l);
                return 0;
            });
        nghttp2_session_callbacks_set_on_stream_close_callback(
            cb, [](nghttp2_session*, std::int32_t s, std::uint32_t e, void* u) {
                static_cast<ClientSide*>(u)->closed[s] = e;
                return 0;
            });
        nghttp2_session_callbacks_set_on_frame_recv_callback(
            cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
                if (f->hd.type == NGHTTP2_GOAWAY) {
                    static_cast<ClientSide*>(u)->goaway = true;
                    static_cast<ClientSide*>(u)->goaway_error = f->goaway.error_code;
                }
                return 0;
            });
        nghttp2_session_client_new(&client, cb, &seen);
        nghttp2_session_callbacks_del(cb);
        nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, nullptr, 0);
    }
    ~Pair() { nghttp2_session_del(client); }
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;

    // Client -> server -> client until neither has anything to send; the server's verdict.
    std::expected<void, std::string> pump() {
        std::expected<void, std::string> verdict;
        for (int round = 0; round < 100; ++round) {
            std::string to_server;
            for (;;) {
                const std::uint8_t* d = nullptr;
                const auto n = nghttp2_session_mem_send(client, &d);
                if (n <= 0) {
                    break;
                }
                to_server.append(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
            }
            if (!to_server.empty() && verdict) {
                verdict = server->receive(to_server);
            }
            const std::string to_client = server->output();
            if (!to_client.empty()) {
                nghttp2_session_mem_recv(client,
                                         reinterpret_cast<const std::uint8_t*>(to_client.data()),
                                         to_client.size());
            }
            if (to_server.empty() && to_client.empty()) {
                break;
            }
        }
        return verdict;
    }

    std::int32_t get(const std::string& path,
                     std::vector<std::pair<std::string, std::string>> extra = {},
                     nghttp2_data_provider* body = nullptr) {
        std::vector<std::pair<std::string, std::string>> fields = {
            {":method", body != nullptr ? "POST" : "GET"},
            {":scheme", "https"},
            {":authority", "api.example.com"},
            {":path", path}};
        fields.insert(fields.end(), extra.begin(), extra.end());
        std::vector<nghttp2_nv> nva;
        for (auto& [n, v] : fields) {
            nva.push_back({reinterpret_cast<std::uint8_t*>(n.data()),
                           reinterpret_cast<std::uint8_t*>(v.data()), n.size(), v.size(),
                           NGHTTP2_NV_FLAG_NONE});
        }
        return nghttp2_submit_request(client, nullptr, nva.data(), nva.size(), body, nullptr);
    }

    std::string status(std::int32_t stream) {
        for (const auto& [n, v] : seen.headers[stream]) {
            if (n == ":status") {
                return v;
            }
        }
        return "";
    }

    nghttp2_session* client = nullptr;
    ClientSide seen;
    std::unique_ptr<H2Session> server;
    std::vector<H2RequestHead> requests;
    std::map<std::int32_t, std::string> bodies;
    std::map<std::int32_t, std::vector<H2Field>> trailers;
    std::vector<std::int32_t> ended;
    std::map<std::int32_t, std::uint32_t> closed;
};

TEST(H2Session, ARequestComesUpAndItsResponseGoesDown) {
    Pair p;
    ASSERT_TRUE(p.server);
    const auto s = p.get("/pets?limit=2", {{"user-agent", "test"}, {"x-a", "1"}});
    ASSERT_TRUE(p.pump());
    ASSERT_EQ(p.requests.size(), 1u);
    const auto& r = p.requests[0];
    EXPECT_EQ(r.stream, s);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.scheme, "https");
    EXPECT_EQ(r.authority, "api.example.com");
    EXPECT_EQ(r.path, "/pets?limit=2");
    EXPECT_EQ(r.fields, (std::vector<H2Field>{{"user-agent", "test"}, {"x-a", "1"}}));
    EXPECT_TRUE(r.end_stream);
    EXPECT_EQ(p.ended, std::vector<std::int32_t>{s});
    ASSERT_TRUE(p.server->respond(s, 200, {{"content-type", "text/plain"}}, false));
    ASSERT_TRUE(p.server->body(s, "hello ", false));
    ASSERT_TRUE(p.pump());
    ASSERT_TRUE(p.server->body(s, "world", true));
    ASSERT_TRUE(p.pump());
    EXPECT_EQ(p.status(s), "200");
    EXPECT_EQ(p.seen.bodies[s], "hello world");
    EXPECT_EQ(p.seen.closed.at(s), 0u);
    EXPECT_EQ(p.closed.at(s), 0u);
    EXPECT_EQ(p.server->open_streams(), 0u);
}

TEST(H2Session, StreamsOfOneConnectionAreSeparateRequests) {
    Pair p;
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 10; ++i) {
        ids.push_back(p.get("/" + std::to_string(i)));
    }
    ASSERT_TRUE(p.pump());
    ASSERT_EQ(p.requests.size(), 10u);
    for (int i = 9; i >= 0; --i) {  // answered in any order
        ASSERT_TRUE(p.server->respond(ids[static_cast<std::size_t>(i)], 204, {}, true));
    }
    ASSERT_TRUE(p.pump());
    for (const auto id : ids) {
        EXPECT_EQ(p.status(id), "204");
    }
}

TEST(H2Session, ARequestBodyAndTrailersComeUpAndResponseTrailersGoDown) {
    Pair p;
    static const std::string kBody(100000, 'b');  // more than one frame
    struct Src {
        std::size_t off = 0;
    } src;
    nghttp2_data_provider provider{};
    provider.source.ptr = &src;
    provider.read_callback = [](nghttp2_session* session, std::int32_t stream, std::uint8_t* buf,
                                std::size_t len, std::uint32_t* flags, nghttp2_data_source* s,
                                void*) -> ssize_t {
        auto* o = static_cast<Src*>(s->ptr);
        const std::size_t n = std::min(len, kBody.size() - o->off);
        std::copy_n(kBody.data() + o->off, n, buf);
        o->off += n;
        if (o->off == kBody.size()) {
            *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            std::string n1 = "x-checksum";
            std::string v1 = "42";
            nghttp2_nv t{reinterpret_cast<std::uint8_t*>(n1.data()),
                         reinterpret_cast<std::uint8_t*>(v1.data()), n1.size(), v1.size(),
                         NGHTTP2_NV_FLAG_NONE};
            nghttp2_submit_trailer(session, stream, &t, 1);
        }
        return static_cast<ssize_t>(n);
    };
    const auto s = p.get("/upload", {{"content-type", "application/grpc"}}, &provider);
    ASSERT_TRUE(p.pump());
    ASSERT_EQ(p.requests.size(), 1u);
    EXPECT_FALSE(p.requests[0].end_stream);
    EXPECT_EQ(p.bodies[s], kBody);
    EXPECT_EQ(p.trailers[s], (std::vector<H2Field>{{"x-checksum", "42"}}));
    EXPECT_EQ(p.ended, std::vector<std::int32_t>{s});
    // gRPC's shape: 200, a body, then grpc-status in the trailers
    ASSERT_TRUE(p.server->respond(s, 200, {{"content-type", "application/grpc"}}, false));
    ASSERT_TRUE(p.server->body(s, "reply", false));
    ASSERT_TRUE(p.server->trailers(s, {{"grpc-status", "0"}, {"grpc-message", "ok"}}));
    ASSERT_TRUE(p.pump());
    EXPECT_EQ(p.seen.bodies[s], "reply");
    const auto& h = p.seen.headers[s];
    EXPECT_EQ(h.back(), (std::pair<std::string, std::string>{"grpc-message", "ok"}));
    EXPECT_EQ(p.seen.closed.at(s), 0u);
}

TEST(H2Session, ARequestBodyStopsAtTheWindowUntilItIsConsumed) {
    H2Limits limits;
    limits.initial_window = 64 * 1024;
    limits.connection_window = 128 * 1024;
    Pair p(limits);
    static const std::string kBody(300000, 'u');
    struct Src {
        std::size_t off = 0;
    } src;
    nghttp2_data_provider provider{};
    provider.source.ptr = &src;
    provider.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len,
                                std::uint32_t* flags, nghttp2_data_source* s, void*) -> ssize_t {
        auto* o = static_cast<Src*>(s->ptr);
        const std::size_t n = std::min(len, kBody.size() - o->off);
        std::copy_n(kBody.data() + o->off, n, buf);
        o->off += n;
        if (o->off == kBody.size()) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        }
        return static_cast<ssize_t>(n);
    };
    const auto s = p.get("/upload", {}, &provider);
    ASSERT_TRUE(p.pump());
    // nothing consumed: the client stopped at the stream's window
    EXPECT_GT(p.bodies[s].size(), 0u);
    EXPECT_LE(p.bodies[s].size(), 64u * 1024);
    ASSERT_TRUE(p.pump());
    EXPECT_LE(p.bodies[s].size(), 64u * 1024);
    std::size_t consumed = 0;
    for (int round = 0; round < 50 && consumed < kBody.size(); ++round) {
        p.server->consume(s, p.bodies[s].size() - consumed);
        consumed = p.bodies[s].size();
        ASSERT_TRUE(p.pump());
        EXPECT_LE(p.bodies[s].size() - consumed, 64u * 1024);
    }
    EXPECT_EQ(p.bodies[s], kBody);
    EXPECT_EQ(p.ended, std::vector<std::int32_t>{s});
}

TEST(H2Session, ABodyWaitsForTheClientsWindow) {
    Pair p;
    const auto s = p.get("/big");
    ASSERT_TRUE(p.pump());
    ASSERT_TRUE(p.server->respond(s, 200, {}, false));
    // the client's default window is 65,535 bytes; it reads (and so opens it) as it goes
    const std::string big(1 << 20, 'x');
    ASSERT_TRUE(p.server->body(s, big, true));
    ASSERT_TRUE(p.pump());
    EXPECT_EQ(p.seen.bodies[s].size(), big.size());
    EXPECT_EQ(p.server->buffered(s), 0u);
}

TEST(H2Session, AnOversizedHeaderListResetsOnlyItsStream) {
    H2Limits limits;
    limits.max_header_list_size = 4096;
    Pair p(limits);
    const auto big = p.get("/big", {{"x-big", std::string(5000, 'a')}});
    const auto ok = p.get("/ok");
    ASSERT_TRUE(p.pump());
    ASSERT_EQ(p.requests.size(), 1u);
    EXPECT_EQ(p.requests[0].path, "/ok");
    EXPECT_NE(p.seen.closed.at(big), 0u) << "reset";
    ASSERT_TRUE(p.server->respond(ok, 200, {}, true));
    ASSERT_TRUE(p.pump());
    EXPECT_EQ(p.status(ok), "200");
    EXPECT_FALSE(p.seen.goaway);
}

TEST(H2Session, AnHpackBombResetsOnlyItsStream) {
    Pair p;  // (64 KiB of header list)
    std::vector<std::pair<std::string, std::string>> bomb;
    for (int i = 0; i < 40; ++i) {
        bomb.emplace_back("x-bomb", std::string(3000, 'a'));  // indexed once, then referenced
    }
    const auto big = p.get("/big", bomb);
    const auto ok = p.get("/ok");
    ASSERT_TRUE(p.pump());
    ASSERT_EQ(p.requests.size(), 1u);
    EXPECT_EQ(p.requests[0].path, "/ok");
    EXPECT_NE(p.seen.closed.at(big), 0u) << "reset";
    EXPECT_FALSE(p.seen.goaway);
    (void)ok;
}

TEST(H2Session, RapidResetsEndTheConnection) {
    H2Limits limits;
    limits.reset_burst = 20;
    limits.reset_rate = 1;
    Pair p(limits);
    std::expected<void, std::string> verdict;
    for (int i = 0; i < 100 && verdict; ++i) {
        const auto s = p.get("/");
        verdict = p.pump();  // (the request is sent, then cancelled)
        nghttp2_submit_rst_stream(p.client, NGHTTP2_FLAG_NONE, s, NGHTTP2_CANCEL);
        verdict = verdict ? p.pump() : verdict;
    }
    EXPECT_TRUE(p.seen.goaway);
    EXPECT_FALSE(p.server->alive());
    EXPECT_LE(p.requests.size(), 22u) << "stopped after the burst of 20 (and the first token)";
    EXPECT_GE(p.requests.size(), 20u);
}

TEST(H2Session, AContinuationFloodEndsTheConnection) {
    H2Limits limits;
    limits.max_continuations = 4;
    Pair p(limits);
    ASSERT_TRUE(p.pump());  // prefaces and SETTINGS
    // HEADERS without END_HEADERS on stream 1, then CONTINUATION frames (each a literal
    // header field without indexing: 0x00, name length 1 "a", value length 1 "b")
    const auto frame = [](std::uint8_t type, std::uint8_t flags, std::string payload) {
        std::string f;
        f.push_back(static_cast<char>((payload.size() >> 16) & 0xff));
        f.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
        f.push_back(static_cast<char>(payload.size() & 0xff));
        f.push_back(static_cast<char>(type));
        f.push_back(static_cast<char>(flags));
        f += std::string("\0\0\0\x01", 4);
        return f + payload;
    };
    const std::string field(
        "\x00\x01"
        "a\x01"
        "b",
        5);
    std::string flood = frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, "\x82" + field);
    for (int i = 0; i < 50; ++i) {
        flood += frame(NGHTTP2_CONTINUATION, 0, field);
    }
    EXPECT_FALSE(p.server->receive(flood));
    ASSERT_FALSE(p.server->output().empty());  // the GOAWAY
    EXPECT_TRUE(p.requests.empty());
}

TEST(H2Session, APingFloodEndsTheConnection) {
    H2Limits limits;
    limits.max_outbound_ack = 50;
    Pair p(limits);
    ASSERT_TRUE(p.pump());
    // PINGs whose acks are never read: the server stops at max_outbound_ack
    std::string pings;
    for (int i = 0; i < 200; ++i) {
        pings += std::string("\0\0\x08\x06\0\0\0\0\0", 9) + std::string(8, static_cast<char>(i));
    }
    EXPECT_FALSE(p.server->receive(pings));
}

TEST(H2Session, GoawayLetsOpenStreamsFinish) {
    Pair p;
    const auto s = p.get("/slow");
    ASSERT_TRUE(p.pump());
    p.server->goaway();
    ASSERT_TRUE(p.pump());
    EXPECT_TRUE(p.seen.goaway);
    EXPECT_EQ(p.seen.goaway_error, 0u);
    ASSERT_TRUE(p.server->respond(s, 200, {}, false));
    ASSERT_TRUE(p.server->body(s, "done", true));
    ASSERT_TRUE(p.pump());
    EXPECT_EQ(p.seen.bodies[s], "done");
}

// A client session and a server session of this class, in memory: what a cluster connection
// (client) and a client connection (server) of the balancer say to each other.
struct TwoEnds {
    std::vector<H2RequestHead> requests;
    std::map<std::int32_t, std::string> server_bodies;
    std::map<std::int32_t, std::vector<H2Field>> server_trailers;
    std::vector<H2ResponseHead> responses;
    std::map<std::int32_t, std::string> client_bodies;
    std::map<std::int32_t, std::vector<H2Field>> client_trailers;
    std::map<std::int32_t, std::uint32_t> client_closed;
    std::unique_ptr<H2Session> server;
    std::unique_ptr<H2Session> client;

    explicit TwoEnds(const H2Limits& server_limits = {}) {
        H2Session::Events s;
        s.request = [this](H2RequestHead h) { requests.push_back(std::move(h)); };
        s.body = [this](std::int32_t id, std::string_view d) {
            server_bodies[id] += d;
            server->consume(id, d.size());
        };
        s.trailers = [this](std::int32_t id, std::vector<H2Field> f) { server_trailers[id] = f; };
        server = H2Session::server(server_limits, std::move(s));
        H2Session::Events c;
        c.response = [this](H2ResponseHead h) { responses.push_back(std::move(h)); };
        c.body = [this](std::int32_t id, std::string_view d) {
            client_bodies[id] += d;
            client->consume(id, d.size());
        };
        c.trailers = [this](std::int32_t id, std::vector<H2Field> f) { client_trailers[id] = f; };
        c.closed = [this](std::int32_t id, std::uint32_t e) { client_closed[id] = e; };
        client = H2Session::client({}, std::move(c));
    }
    bool pump() {
        for (int round = 0; round < 100; ++round) {
            const std::string up = client->output();
            if (!up.empty() && !server->receive(up)) {
                return false;
            }
            const std::string down = server->output();
            if (!down.empty() && !client->receive(down)) {
                return false;
            }
            if (up.empty() && down.empty()) {
                return true;
            }
        }
        return true;
    }
};

TEST(H2Session, AClientSessionCarriesAGrpcShapedCallBothWays) {
    TwoEnds e;
    ASSERT_TRUE(e.client && e.server);
    H2RequestHead req;
    req.method = "POST";
    req.scheme = "http";
    req.authority = "grpc.test";
    req.path = "/pkg.Service/Method";
    req.fields = {{"content-type", "application/grpc"}, {"te", "trailers"}};
    const auto id = e.client->request(req);
    ASSERT_GT(id, 0);
    ASSERT_TRUE(e.client->body(id, std::string("\0\0\0\0\5hello", 10), false));
    ASSERT_TRUE(e.client->trailers(id, {{"x-end", "1"}}));
    ASSERT_TRUE(e.pump());
    ASSERT_EQ(e.requests.size(), 1u);
    EXPECT_EQ(e.requests[0].path, "/pkg.Service/Method");
    EXPECT_EQ(e.requests[0].fields[0], (H2Field{"content-type", "application/grpc"}));
    EXPECT_EQ(e.server_bodies[id].size(), 10u);
    EXPECT_EQ(e.server_trailers[id], (std::vector<H2Field>{{"x-end", "1"}}));
    ASSERT_TRUE(e.server->respond(id, 200, {{"content-type", "application/grpc"}}, false));
    ASSERT_TRUE(e.server->body(id, "reply", false));
    ASSERT_TRUE(e.server->trailers(id, {{"grpc-status", "0"}}));
    ASSERT_TRUE(e.pump());
    ASSERT_EQ(e.responses.size(), 1u);
    EXPECT_EQ(e.responses[0].status, 200u);
    EXPECT_FALSE(e.responses[0].end_stream);
    EXPECT_EQ(e.client_bodies[id], "reply");
    EXPECT_EQ(e.client_trailers[id], (std::vector<H2Field>{{"grpc-status", "0"}}));
    EXPECT_EQ(e.client_closed.at(id), 0u);
    // after the server's GOAWAY no request opens
    e.server->goaway();
    ASSERT_TRUE(e.pump());
    EXPECT_FALSE(e.client->can_open());
    EXPECT_EQ(e.client->request(req), 0);
}

// The request ID is new in every response: it goes out as a never-indexed literal (the second
// response's header block is as long as the first), where other fields compress to an index.
TEST(H2Session, TheRequestIdIsNotIndexedInHpack) {
    const auto second_block = [](const std::string& unique) {
        H2Limits limits;
        limits.unique_field = unique;
        TwoEnds e(limits);
        H2RequestHead req;
        req.method = "GET";
        req.scheme = "http";
        req.authority = "a.test";
        req.path = "/";
        req.end_stream = true;
        std::vector<std::size_t> sizes;
        for (int i = 0; i < 2; ++i) {
            const auto id = e.client->request(req);
            EXPECT_TRUE(e.pump());
            EXPECT_TRUE(e.server->respond(
                id, 200, {{"x-request-id", "0123456789abcdef0123456789abcdef"}}, true));
            sizes.push_back(e.server->output().size());
        }
        return std::pair{sizes[0], sizes[1]};
    };
    const auto [first, second] = second_block("x-request-id");
    EXPECT_EQ(second, first) << "a literal each time";
    const auto [indexed_first, indexed_second] = second_block("");
    EXPECT_LT(indexed_second + 20, indexed_first) << "indexed: the second is a byte or two";
}

}  // namespace
}  // namespace lb
