#include "lb/headers.hpp"

#include <gtest/gtest.h>

namespace lb {
namespace {

namespace http = boost::beast::http;

TEST(Headers, RequestHeadDropsHopByHopFieldsAndTheOnesConnectionNames) {
    RequestHead h;
    h.method(http::verb::post);
    h.target("/v1/things?x=1");
    h.version(10);
    h.set(http::field::host, "api.example.com");
    h.insert(http::field::connection, "keep-alive, X-Secret-Hop");
    h.insert(http::field::connection, "Upgrade");
    h.set("X-Secret-Hop", "1");
    h.set(http::field::keep_alive, "timeout=5");
    h.set(http::field::transfer_encoding, "chunked");
    h.set(http::field::te, "trailers");
    h.set(http::field::trailer, "X-Checksum");
    h.set(http::field::upgrade, "websocket");
    h.set("Proxy-Connection", "keep-alive");
    h.set(http::field::expect, "100-continue");
    h.set("X-Keep", "yes");
    std::string out = "previous contents";
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "https",
                       Framing::kChunked, true, out);
    EXPECT_EQ(out,
              "POST /v1/things?x=1 HTTP/1.1\r\n"
              "Host: api.example.com\r\n"
              "X-Keep: yes\r\n"
              "X-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: https\r\n"
              "Forwarded: for=192.0.2.7;proto=https\r\n"
              "Transfer-Encoding: chunked\r\n"
              "\r\n");
    // Expect stays when it was not answered here.
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "https",
                       Framing::kAsIs, false, out);
    EXPECT_NE(out.find("Expect: 100-continue\r\n"), std::string::npos);
    EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
}

TEST(Headers, AWebSocketHandshakeAsksTheUpgradeOfTheNextHop) {
    RequestHead h;
    h.method(http::verb::get);
    h.target("/chat");
    h.set(http::field::host, "api.example.com");
    h.set(http::field::connection, "keep-alive, Upgrade");
    h.set(http::field::upgrade, "websocket");
    h.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    h.set(http::field::sec_websocket_version, "13");
    std::string out;
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "http",
                       Framing::kAsIs, false, out, "websocket");
    EXPECT_EQ(out,
              "GET /chat HTTP/1.1\r\n"
              "Host: api.example.com\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n"
              "X-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: http\r\n"
              "Forwarded: for=192.0.2.7;proto=http\r\n"
              "Connection: upgrade\r\n"
              "Upgrade: websocket\r\n"
              "\r\n");
    ResponseHead r;
    r.result(http::status::switching_protocols);
    r.set(http::field::connection, "Upgrade");
    r.set(http::field::upgrade, "websocket");
    r.set(http::field::sec_websocket_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    write_response_head(r, Framing::kAsIs, ConnectionToken::kNone, out, "websocket");
    EXPECT_EQ(out,
              "HTTP/1.1 101 Switching Protocols\r\n"
              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
              "Connection: upgrade\r\n"
              "Upgrade: websocket\r\n"
              "\r\n");
}

TEST(Headers, ForwardingFieldsAppendTheClientToEveryEarlierEntry) {
    RequestHead h;
    h.method(http::verb::get);
    h.target("/");
    h.insert("X-Forwarded-For", "198.51.100.1");
    h.insert("x-forwarded-for", "198.51.100.2, 198.51.100.3");
    h.insert("X-Forwarded-Proto", "http");
    h.insert(http::field::forwarded, "for=198.51.100.1");
    std::string out;
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("2001:db8::1")), "https",
                       Framing::kAsIs, false, out);
    EXPECT_EQ(out,
              "GET / HTTP/1.1\r\n"
              "X-Forwarded-For: 198.51.100.1, 198.51.100.2, 198.51.100.3, 2001:db8::1\r\n"
              "X-Forwarded-Proto: https\r\n"
              "Forwarded: for=198.51.100.1, for=\"[2001:db8::1]\";proto=https\r\n"
              "\r\n");
    // More earlier entries than the inline slots hold: none is lost, order kept.
    RequestHead many;
    many.method(http::verb::get);
    many.target("/");
    std::string expected = "X-Forwarded-For: ";
    for (int i = 1; i <= 7; ++i) {
        many.insert("X-Forwarded-For", "10.0.0." + std::to_string(i));
        expected += "10.0.0." + std::to_string(i) + ", ";
    }
    write_request_head(many, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "http",
                       Framing::kAsIs, false, out);
    EXPECT_NE(out.find(expected + "192.0.2.7\r\n"), std::string::npos) << out;
}

TEST(Headers, ResponseHeadKeepsTheReasonAndSetsFramingAndConnection) {
    ResponseHead h;
    h.result(http::status::not_found);
    h.reason("Nothing Here");
    h.version(10);
    h.set(http::field::server, "nginx");
    h.set(http::field::connection, "keep-alive");
    h.set(http::field::keep_alive, "timeout=65");
    h.set(http::field::content_length, "12");
    std::string out;
    write_response_head(h, Framing::kAsIs, ConnectionToken::kNone, out);
    EXPECT_EQ(out,
              "HTTP/1.1 404 Nothing Here\r\n"
              "Server: nginx\r\n"
              "Content-Length: 12\r\n"
              "\r\n");
    ResponseHead c;
    c.result(http::status::ok);  // no reason from upstream: the standard one
    c.set(http::field::transfer_encoding, "chunked");
    write_response_head(c, Framing::kChunked, ConnectionToken::kClose, out);
    EXPECT_EQ(out,
              "HTTP/1.1 200 OK\r\n"
              "Transfer-Encoding: chunked\r\n"
              "Connection: close\r\n"
              "\r\n");
    write_response_head(c, Framing::kAsIs, ConnectionToken::kKeepAlive, out);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
}

}  // namespace
}  // namespace lb
