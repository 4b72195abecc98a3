// Heads between HTTP/1.1 and HTTP/2 for h2 clusters (h2_heads.hpp): pure.
#include "h2_heads.hpp"

#include <gtest/gtest.h>

namespace {

TEST(H2Heads, RequestHeadFromTheRewrittenHttp11Head) {
    // What write_request_head() makes: request line, end-to-end fields, forwarding fields,
    // the request ID and the framing.
    const std::string http1 =
        "POST /tandem.Echo/Unary?x=1 HTTP/1.1\r\n"
        "Host: api.example.com\r\n"
        "Content-Type: application/grpc\r\n"
        "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-Request-Id: abc\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n";
    const auto h = lb::h2_request_head(http1, "https", true, false);
    EXPECT_EQ(h.method, "POST");
    EXPECT_EQ(h.path, "/tandem.Echo/Unary?x=1");
    EXPECT_EQ(h.scheme, "https");
    EXPECT_EQ(h.authority, "api.example.com");
    EXPECT_FALSE(h.end_stream);
    const std::vector<lb::H2Field> want = {{"content-type", "application/grpc"},
                                           {"x-forwarded-for", "10.0.0.1, 127.0.0.1"},
                                           {"x-forwarded-proto", "https"},
                                           {"x-request-id", "abc"},
                                           {"te", "trailers"}};
    EXPECT_EQ(h.fields, want) << "lower case, Host as :authority, no Transfer-Encoding";
    const auto get = lb::h2_request_head("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                                         "http", false, true);
    EXPECT_TRUE(get.end_stream);
    EXPECT_EQ(get.fields, (std::vector<lb::H2Field>{{"content-length", "0"}}));
}

TEST(H2Heads, ResponseFramingForHttp11Clients) {
    lb::H2ResponseHead h;
    h.status = 200;
    h.fields = {{"content-type", "application/grpc"}};
    // No length: chunked for HTTP/1.1 (trailers fit), the close for HTTP/1.0, nothing bodyless.
    EXPECT_TRUE(lb::h1_framing(h, 11, false).chunked);
    EXPECT_TRUE(lb::h1_framing(h, 10, false).close);
    EXPECT_FALSE(lb::h1_framing(h, 11, true).chunked);
    h.fields.push_back({"content-length", "12"});
    const auto f = lb::h1_framing(h, 11, false);
    EXPECT_FALSE(f.chunked || f.close);
}

TEST(H2Heads, Http11ResponseHeadAndLastChunk) {
    lb::H2ResponseHead h;
    h.status = 404;
    h.fields = {{"content-type", "text/plain"}, {"x-request-id", "theirs"}, {"connection", "x"}};
    std::string out;
    lb::write_h1_response_head(h, {true, false}, true, "X-Request-Id", "ours", out);
    EXPECT_EQ(out,
              "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nX-Request-Id: ours\r\n"
              "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
    lb::write_h1_response_head(h, {false, true}, true, "", "", out);
    EXPECT_NE(out.find("x-request-id: theirs\r\n"), std::string::npos);
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << "close-delimited";
    EXPECT_EQ(lb::last_chunk({{"grpc-status", "0"}, {"grpc-message", ""}, {"te", "x"}}),
              "0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n");
}

TEST(H2Heads, GrpcContentTypes) {
    EXPECT_TRUE(lb::is_grpc("application/grpc"));
    EXPECT_TRUE(lb::is_grpc("application/grpc+proto"));
    EXPECT_TRUE(lb::is_grpc("Application/GRPC+json"));
    EXPECT_TRUE(lb::is_grpc("application/grpc; charset=utf-8"));
    EXPECT_FALSE(lb::is_grpc("application/grpc-web"));
    EXPECT_FALSE(lb::is_grpc("application/json"));
    EXPECT_FALSE(lb::is_grpc(""));
}

}  // namespace
