// fake-upstream: a small HTTP/1.1 server standing in for a cluster's router in tandem-lb's tests.
//   GET /health            200 "ok" (503 after GET /__sick, 200 again after GET /__well)
//   GET /__fail?status=N   every request but /health and these answers N (status=0: normal)
//   GET /__drop?on=1       every request but /health and these gets its connection closed
//                          unanswered (on=0: normal)
//   ANY /slow?ms=N         answers after N ms
//   ANY /echo              echoes the body; X-Echo-* headers show what the proxy forwarded
//   GET /chunked?bytes=N   a chunked response of N bytes (one chunk; &pieces=K: K chunks)
//   GET /bytes?n=N         N bytes of a pattern (byte i: 'a' + (7i + i/251) % 26), Content-Length
//   GET /partial?bytes=N&send=M&hold=MS  Content-Length N, M bytes of the pattern, then MS ms
//                          of silence, then the connection closes (a cluster failing mid-body)
//   GET /count             requests served so far (excluding /health); ?slow=1: inside /slow now
//   ANY /early?status=N    answers N before reading the body (close=1: then closes at once)
//   GET /ws (WebSocket)    accepts the upgrade, answers each message with "NAME: message"
//   anything else          200 "NAME\n" with X-Upstream: NAME
//   with --tls-cert FILE --tls-key FILE it speaks only TLS; /echo then shows the SNI it got
//   (X-Echo-SNI); with --tls-client-ca FILE it requires a client certificate signed by it and
//   /echo shows its subject CN (X-Echo-Client-CN); with --close-idle-ms N it closes keep-alive
//   connections idle N ms
// Prints "fake-upstream NAME listening on HOST:PORT" once bound.
#include <atomic>
#include <charconv>
#include <iostream>
#include <string>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::string name = "upstream";
unsigned close_idle_ms = 0;  // --close-idle-ms: close a keep-alive connection idle this long
bool sick = false;
unsigned failing = 0;   // GET /__fail?status=N: every other request answers N (0: off)
bool dropping = false;  // GET /__drop?on=1: every other request is closed unanswered
std::uint64_t served = 0;
std::uint64_t slow_now = 0;  // requests inside /slow now

std::uint64_t query_number(std::string_view target, std::string_view key) {
    const auto pos = target.find(std::string(key) + "=");
    if (pos == std::string_view::npos) {
        return 0;
    }
    std::uint64_t v = 0;
    const auto s = target.substr(pos + key.size() + 1);
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// n bytes of a pattern that shows a byte moved, lost or repeated.
std::string pattern(std::uint64_t n) {
    std::string s(n, '\0');
    for (std::uint64_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    }
    return s;
}

std::string sni(tcp::socket& /*plain*/) {
    return "-";
}
std::string sni(asio::ssl::stream<tcp::socket>& s) {
    const char* server_name = SSL_get_servername(s.native_handle(), TLSEXT_NAMETYPE_host_name);
    return server_name != nullptr ? server_name : "-";
}
std::string client_cn(tcp::socket& /*plain*/) {
    return "-";
}
std::string client_cn(asio::ssl::stream<tcp::socket>& s) {
    X509* cert = SSL_get1_peer_certificate(s.native_handle());
    if (cert == nullptr) {
        return "-";
    }
    char cn[256] = "-";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
}
tcp::socket& lowest(tcp::socket& s) {
    return s;
}
tcp::socket& lowest(asio::ssl::stream<tcp::socket>& s) {
    return s.next_layer();
}

template <class Stream>
asio::awaitable<void> session(Stream socket) {
    beast::flat_buffer buffer;
    asio::steady_timer idle(socket.get_executor());
    unsigned generation = 0;
    bool idled_out = false;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        // With --close-idle-ms, a connection with no request that long is closed (a TLS one with
        // close_notify first), as routers do to idle keep-alive connections.
        idled_out = false;
        if (close_idle_ms > 0 && buffer.size() == 0) {
            const unsigned armed = ++generation;
            idle.expires_after(std::chrono::milliseconds(close_idle_ms));
            idle.async_wait([&, armed](boost::system::error_code tec) {
                if (!tec && armed == generation) {  // not a fire left over from a request
                    idled_out = true;
                    lowest(socket).cancel();
                }
            });
        }
        auto [ec, n] = co_await http::async_read_header(socket, buffer, parser, kNoThrow);
        ++generation;
        idle.cancel();
        if (!ec && !idled_out && parser.get().target().starts_with("/early")) {
            // Answers before reading the body (as an upload endpoint, or a 413/401, does); with
            // close=1 closes at once, else reads and discards what the client still sends.
            const std::string target(parser.get().target());
            const auto status = static_cast<unsigned>(query_number(target, "status"));
            const std::string answer = "HTTP/1.1 " + std::to_string(status) +
                                       " Early\r\nContent-Length: 6\r\nConnection: close\r\n"
                                       "X-Upstream: " +
                                       name + "\r\n\r\nearly\n";
            auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(answer), kNoThrow);
            for (bool reading = !wec && query_number(target, "close") == 0; reading;) {
                std::array<char, 4096> sink{};
                auto [rec, rn] = co_await socket.async_read_some(asio::buffer(sink), kNoThrow);
                reading = !rec;
            }
            break;
        }
        if (!ec && !idled_out && !parser.is_done()) {
            std::tie(ec, n) = co_await http::async_read(socket, buffer, parser, kNoThrow);
        }
        if (idled_out) {
            if constexpr (!std::is_same_v<Stream, tcp::socket>) {
                // Sends close_notify; the peer's answer is not waited for long.
                asio::steady_timer bound(socket.get_executor());
                bound.expires_after(std::chrono::milliseconds(200));
                bound.async_wait([&](boost::system::error_code tec) {
                    if (!tec) {
                        lowest(socket).cancel();
                    }
                });
                co_await socket.async_shutdown(kNoThrow);
                bound.cancel();
            }
            break;
        }
        if (ec) {
            break;
        }
        auto req = parser.release();
        const std::string target(req.target());
        const std::string path = target.substr(0, target.find('?'));
        if (path == "/ws" && beast::websocket::is_upgrade(req)) {
            ++served;
            beast::websocket::stream<Stream&> ws(socket);
            ws.set_option(beast::websocket::stream_base::decorator(
                [](beast::websocket::response_type& r) { r.set("X-Upstream", name); }));
            auto [aec] = co_await ws.async_accept(req, kNoThrow);
            while (!aec) {
                beast::flat_buffer message;
                auto [rec, rn] = co_await ws.async_read(message, kNoThrow);
                if (rec) {
                    break;
                }
                const std::string answer = name + ": " + beast::buffers_to_string(message.data());
                auto [wec, wn] = co_await ws.async_write(asio::buffer(answer), kNoThrow);
                if (wec) {
                    break;
                }
            }
            co_return;
        }
        if (path == "/partial") {
            ++served;
            const auto bytes = query_number(target, "bytes");
            const std::string answer = "HTTP/1.1 200 OK\r\nX-Upstream: " + name +
                                       "\r\nContent-Length: " + std::to_string(bytes) + "\r\n\r\n" +
                                       pattern(query_number(target, "send"));
            auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(answer), kNoThrow);
            if (!wec) {
                asio::steady_timer t(socket.get_executor());
                t.expires_after(std::chrono::milliseconds(query_number(target, "hold")));
                co_await t.async_wait(kNoThrow);
            }
            break;
        }
        if (path == "/trailers") {
            // A chunked response ending with trailer fields (Beast's serializer writes none).
            const std::string answer = "HTTP/1.1 200 OK\r\nX-Upstream: " + name +
                                       "\r\nTransfer-Encoding: chunked\r\nTrailer: "
                                       "X-Checksum\r\n\r\n6\r\nhello\n\r\n0\r\n"
                                       "X-Checksum: 42\r\nGrpc-Status: 0\r\n\r\n";
            ++served;
            auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(answer), kNoThrow);
            if (wec) {
                break;
            }
            continue;
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.set("X-Upstream", name);
        res.set(http::field::content_type, "text/plain");
        if (path == "/health") {
            res.result(sick ? http::status::service_unavailable : http::status::ok);
            res.body() = sick ? "sick\n" : "ok\n";
        } else if (path == "/__sick" || path == "/__well") {
            sick = path == "/__sick";
            res.body() = "ok\n";
        } else if (path == "/__fail") {
            failing = static_cast<unsigned>(query_number(target, "status"));
            res.body() = "ok\n";
        } else if (path == "/__drop") {
            dropping = query_number(target, "on") != 0;
            res.body() = "ok\n";
        } else if (dropping) {
            ++served;
            break;  // closed unanswered: a reset before any response byte
        } else if (failing != 0) {
            ++served;
            res.result(static_cast<http::status>(failing));
            res.body() = name + " failing\n";
        } else {
            if (path != "/count") {
                ++served;
            }
            if (path == "/slow") {
                ++slow_now;
                asio::steady_timer t(socket.get_executor());
                t.expires_after(std::chrono::milliseconds(query_number(target, "ms")));
                co_await t.async_wait(kNoThrow);
                --slow_now;
                res.body() = name + "\n";
            } else if (path == "/echo") {
                const auto echo = [&](const char* out, std::string_view f) {
                    if (auto it = req.find(f); it != req.end()) {
                        res.set(out, it->value());
                    } else {
                        res.set(out, "-");
                    }
                };
                echo("X-Echo-XFF", "X-Forwarded-For");
                echo("X-Echo-XFP", "X-Forwarded-Proto");
                echo("X-Echo-Forwarded", "Forwarded");
                echo("X-Echo-Host", "Host");
                echo("X-Echo-Connection", "Connection");
                echo("X-Echo-TE", "Transfer-Encoding");
                echo("X-Echo-Expect", "Expect");
                res.set("X-Echo-Custom",
                        req["X-Custom"].empty() ? "-" : std::string(req["X-Custom"]));
                res.set("X-Echo-Hop", req["X-Hop"].empty() ? "-" : std::string(req["X-Hop"]));
                // (a chunked request's trailer fields: Beast adds them to the head's)
                res.set("X-Echo-Checksum",
                        req["X-Checksum"].empty() ? "-" : std::string(req["X-Checksum"]));
                res.set("X-Echo-Body-Bytes", std::to_string(req.body().size()));
                res.set("X-Echo-SNI", sni(socket));
                res.set("X-Echo-Client-CN", client_cn(socket));
                res.body() = std::move(req.body());
            } else if (path == "/count") {
                res.body() =
                    std::to_string(target.find("slow=1") != std::string::npos ? slow_now : served) +
                    "\n";
            } else if (path == "/chunked" && query_number(target, "pieces") > 1) {
                // K chunks of the pattern, written by hand (Beast's serializer makes one).
                const auto bytes = query_number(target, "bytes");
                const auto pieces = query_number(target, "pieces");
                const std::string body = pattern(bytes);
                std::string answer = "HTTP/1.1 200 OK\r\nX-Upstream: " + name +
                                     "\r\nTransfer-Encoding: chunked\r\n\r\n";
                for (std::uint64_t i = 0, at = 0; i < pieces; ++i) {
                    const std::uint64_t len = i + 1 == pieces ? bytes - at : bytes / pieces;
                    char size[20];
                    const auto end = std::to_chars(size, size + sizeof size, len, 16).ptr;
                    answer.append(size, end).append(";ext=1\r\n");
                    answer.append(body, at, len).append("\r\n");
                    at += len;
                }
                answer += "0\r\n\r\n";
                auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(answer), kNoThrow);
                if (wec) {
                    break;
                }
                continue;
            } else if (path == "/bytes") {
                res.body() = pattern(query_number(target, "n"));
            } else if (path == "/chunked") {
                const auto bytes = query_number(target, "bytes");
                res.body() = std::string(bytes, 'x');
                res.chunked(true);
            } else {
                res.body() = name + "\n";
            }
        }
        res.keep_alive(req.keep_alive());
        if (!res.chunked()) {
            res.prepare_payload();
        }
        auto [wec, wn] = co_await http::async_write(socket, res, kNoThrow);
        if (wec || !res.keep_alive()) {
            break;
        }
    }
    boost::system::error_code ignored;
    lowest(socket).shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> tls_session(tcp::socket socket, asio::ssl::context& tls) {
    asio::ssl::stream<tcp::socket> stream(std::move(socket), tls);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kNoThrow);
    if (!ec) {
        co_await session(std::move(stream));
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, asio::ssl::context* tls) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
        if (ec) {
            continue;
        }
        if (tls != nullptr) {
            asio::co_spawn(acceptor.get_executor(), tls_session(std::move(socket), *tls),
                           asio::detached);
        } else {
            asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    std::string cert;
    std::string key;
    std::string client_ca;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--name") {
            name = argv[i + 1];
        } else if (flag == "--host") {
            host = argv[i + 1];
        } else if (flag == "--port") {
            port = static_cast<unsigned short>(std::stoi(argv[i + 1]));
        } else if (flag == "--close-idle-ms") {
            close_idle_ms = static_cast<unsigned>(std::stoi(argv[i + 1]));
        } else if (flag == "--tls-cert") {
            cert = argv[i + 1];
        } else if (flag == "--tls-key") {
            key = argv[i + 1];
        } else if (flag == "--tls-client-ca") {
            client_ca = argv[i + 1];
        }
    }
    std::unique_ptr<asio::ssl::context> tls;
    if (!cert.empty()) {
        tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
        tls->use_certificate_chain_file(cert);
        tls->use_private_key_file(key, asio::ssl::context::pem);
        if (!client_ca.empty()) {
            tls->load_verify_file(client_ca);
            tls->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
        }
    }
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx);
    const tcp::endpoint ep(asio::ip::make_address(host), port);
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    boost::system::error_code ec;
    acceptor.bind(ep, ec);
    if (ec) {
        std::cerr << "fake-upstream: bind " << host << ":" << port << ": " << ec.message() << "\n";
        return 1;
    }
    acceptor.listen();
    std::cout << "fake-upstream " << name << " listening on " << host << ":"
              << acceptor.local_endpoint().port() << std::endl;
    asio::co_spawn(ctx, accept_loop(acceptor, tls.get()), asio::detached);
    asio::signal_set signals(ctx, SIGTERM, SIGINT);
    signals.async_wait([&](auto, int) { ctx.stop(); });
    ctx.run();
    return 0;
}
