#include "lb/headers.hpp"

#include <gtest/gtest.h>

namespace lb {
namespace {

namespace http = boost::beast::http;

ClientAddress client(const char* ip) {
    return ClientAddress(Peer{{boost::asio::ip::make_address(ip), 40000}, {}});
}

ResponseRewrite answer(Framing framing,
                       std::optional<std::uint64_t> length,
                       ConnectionToken connection,
                       std::string_view upgrade = {}) {
    ResponseRewrite how;
    how.framing = framing;
    how.content_length = length;
    how.connection = connection;
    how.upgrade = upgrade;
    return how;
}

RequestRewrite rewrite(const RequestHead& h,
                       std::string_view proto,
                       Framing framing,
                       bool drop_expect,
                       std::string_view upgrade = {}) {
    RequestRewrite how;
    how.proto = proto;
    how.framing = framing;
    how.drop_expect = drop_expect;
    how.target = h.target();
    how.upgrade = upgrade;
    return how;
}

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
    write_request_head(h, client("192.0.2.7"), rewrite(h, "https", Framing::kChunked, true), out);
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
    write_request_head(h, client("192.0.2.7"), rewrite(h, "https", Framing::kAsIs, false), out);
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
    write_request_head(h, client("192.0.2.7"),
                       rewrite(h, "http", Framing::kAsIs, false, "websocket"), out);
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
    write_response_head(
        r, answer(Framing::kAsIs, std::nullopt, ConnectionToken::kNone, "websocket"), out);
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
    write_request_head(h, client("2001:db8::1"), rewrite(h, "https", Framing::kAsIs, false), out);
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
    write_request_head(many, client("192.0.2.7"), rewrite(many, "http", Framing::kAsIs, false),
                       out);
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
    write_response_head(h, answer(Framing::kAsIs, 12, ConnectionToken::kNone), out);
    EXPECT_EQ(out,
              "HTTP/1.1 404 Nothing Here\r\n"
              "Server: nginx\r\n"
              "Content-Length: 12\r\n"
              "\r\n");
    ResponseHead c;
    c.result(http::status::ok);  // no reason from upstream: the standard one
    c.set(http::field::transfer_encoding, "chunked");
    write_response_head(c, answer(Framing::kChunked, std::nullopt, ConnectionToken::kClose), out);
    EXPECT_EQ(out,
              "HTTP/1.1 200 OK\r\n"
              "Transfer-Encoding: chunked\r\n"
              "Connection: close\r\n"
              "\r\n");
    write_response_head(c, answer(Framing::kAsIs, std::nullopt, ConnectionToken::kKeepAlive), out);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
}

TEST(Headers, ContentLengthIsWrittenOnceByTheBalancer) {
    // Beast folds "5" and "5, 5" into one length; the fields as received are never forwarded.
    RequestHead h;
    h.method(http::verb::post);
    h.target("/upload");
    h.set(http::field::host, "api.example.com");
    h.insert(http::field::content_length, "5");
    h.insert(http::field::content_length, "5, 5");
    RequestRewrite how = rewrite(h, "http", Framing::kAsIs, false);
    how.content_length = 5;
    std::string out;
    write_request_head(h, client("192.0.2.7"), how, out);
    EXPECT_EQ(out,
              "POST /upload HTTP/1.1\r\n"
              "Host: api.example.com\r\n"
              "X-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: http\r\n"
              "Forwarded: for=192.0.2.7;proto=http\r\n"
              "Content-Length: 5\r\n"
              "\r\n");
    ResponseHead r;
    r.result(http::status::ok);
    r.insert(http::field::content_length, "3");
    r.insert(http::field::content_length, "3");
    write_response_head(r, answer(Framing::kAsIs, 3, ConnectionToken::kNone), out);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
}

TEST(Headers, AnAbsoluteFormsAuthorityReplacesHostAndItsPathIsSent) {
    RequestHead h;
    h.method(http::verb::get);
    h.target("http://api.example.com:8080?user_key=1");
    h.set(http::field::host, "other.example.com");
    h.set("X-Keep", "yes");
    RequestRewrite how = rewrite(h, "http", Framing::kAsIs, false);
    how.target = "?user_key=1";  // (what check_request leaves of the absolute-form)
    how.host = "api.example.com:8080";
    std::string out;
    write_request_head(h, client("192.0.2.7"), how, out);
    EXPECT_EQ(out,
              "GET /?user_key=1 HTTP/1.1\r\n"
              "Host: api.example.com:8080\r\n"
              "X-Keep: yes\r\n"
              "X-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: http\r\n"
              "Forwarded: for=192.0.2.7;proto=http\r\n"
              "\r\n");
    how.target = "*";
    how.host = {};
    write_request_head(h, client("192.0.2.7"), how, out);
    EXPECT_EQ(out.rfind("GET * HTTP/1.1\r\nHost: other.example.com\r\n", 0), 0U) << out;
}

TEST(Headers, TheRequestIdReplacesWhatCameUnderItsName) {
    RequestHead h;
    h.method(http::verb::get);
    h.target("/");
    h.set(http::field::host, "h");
    h.insert("x-request-id", "from-the-client");
    h.insert("X-Other", "1");
    RequestRewrite how = rewrite(h, "http", Framing::kAsIs, false);
    how.id_header = "X-Request-Id";
    how.id = "abc-1";
    std::string out;
    write_request_head(h, client("192.0.2.7"), how, out);
    EXPECT_EQ(out.find("from-the-client"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Other: 1\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Request-Id: abc-1\r\n"), std::string::npos);
    // A name Beast knows works too (here Via, as an odd choice).
    h.insert(http::field::via, "1.1 front");
    how.id_header = "via";
    write_request_head(h, client("192.0.2.7"), how, out);
    EXPECT_EQ(out.find("1.1 front"), std::string::npos) << out;
    ResponseHead r;
    r.result(http::status::ok);
    r.insert("X-Request-Id", "the-cluster's");
    ResponseRewrite back = answer(Framing::kAsIs, 0, ConnectionToken::kNone);
    back.id_header = "X-Request-Id";
    back.id = "abc-1";
    write_response_head(r, back, out);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nX-Request-Id: abc-1\r\nContent-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace lb
