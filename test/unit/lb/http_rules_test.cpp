// The RFC 9110/9112 rules tandem-lb adds to Beast's parser, on heads Beast itself parsed from
// raw bytes (what a client or a cluster sends).
#include "lb/http_rules.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

namespace lb {
namespace {

namespace http = boost::beast::http;

// Beast's verdict on a raw head, then ours: 0 when accepted, the status when refused, -1 when
// Beast refused it already.
template <bool isRequest>
int verdict(const std::string& raw, std::string* detail = nullptr) {
    http::parser<isRequest, http::empty_body, PoolAllocator<char>> p;
    if constexpr (!isRequest) {
        p.skip(true);
    }
    p.eager(false);
    boost::system::error_code ec;
    const std::size_t n = p.put(boost::asio::buffer(raw), ec);
    if constexpr (isRequest) {
        if (ec == http::error::bad_version && names_unsupported_version(raw)) {
            return 505;
        }
    }
    if (ec || !p.is_header_done()) {
        if (detail) {
            *detail = ec.message();
        }
        return -1;
    }
    if (check_head_lines(std::string_view(raw).substr(0, n)) != HeadLines::kOk) {
        return 400;
    }
    if constexpr (isRequest) {
        const auto shape = check_request(p.get());
        if (!shape) {
            if (detail) {
                *detail = shape.error().reason;
            }
            return static_cast<int>(shape.error().status);
        }
        if (detail) {
            *detail = std::string(shape->host) + " " + std::string(shape->target);
        }
        return 0;
    } else {
        const auto refusal = check_response(p.get());
        return refusal ? static_cast<int>(refusal->status) : 0;
    }
}

int request(const std::string& raw, std::string* detail = nullptr) {
    return verdict<true>(raw, detail);
}
int response(const std::string& raw) {
    return verdict<false>(raw);
}

TEST(HttpRules, WellFormedRequestsPass) {
    std::string d;
    EXPECT_EQ(request("GET /a/b?c=%20d HTTP/1.1\r\nHost: api.example.com\r\n\r\n", &d), 0);
    EXPECT_EQ(d, "api.example.com /a/b?c=%20d");
    EXPECT_EQ(request("GET / HTTP/1.0\r\nHost: api.example.com:8080\r\n\r\n"), 0);
    EXPECT_EQ(request("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"), 0);
    EXPECT_EQ(request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"), 0);
    EXPECT_EQ(request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked , \r\n\r\n"), 0);
    EXPECT_EQ(request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"), 0);
    EXPECT_EQ(request("M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
}

TEST(HttpRules, AnAbsoluteFormTargetReplacesHost) {
    std::string d;
    EXPECT_EQ(request("GET http://api.example.com/v1?k=1 HTTP/1.1\r\nHost: evil\r\n\r\n", &d), 0);
    EXPECT_EQ(d, "api.example.com /v1?k=1");
    EXPECT_EQ(request("GET HTTPS://a.example:8443 HTTP/1.1\r\nHost: x\r\n\r\n", &d), 0);
    EXPECT_EQ(d, "a.example:8443 ");
    EXPECT_EQ(request("GET http://u:p@a.example/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);  // userinfo
    EXPECT_EQ(request("GET ftp://a.example/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(request("GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);  // no authority
    EXPECT_EQ(request("GET http://a.example/ HTTP/1.1\r\n\r\n"), 400);     // still needs Host
}

TEST(HttpRules, HostMustBeThereOnceAndWellFormed) {
    EXPECT_EQ(request("GET / HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.0\r\n\r\n"), 400);  // not upgraded to 1.1 without Host
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: [zz::1]\r\n\r\n"), 400);
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n"), 0);  // a legal reg-name
}

TEST(HttpRules, TheRequestTargetMustHaveOneOfTheForms) {
    EXPECT_EQ(request("GET z/../admin HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(request("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(request("GET h.example:80 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(request("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n"), 501);
    EXPECT_EQ(request("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(request("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(request("GET /a% HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(request("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(HttpRules, VersionsAndMethods) {
    EXPECT_EQ(request("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
    EXPECT_EQ(request("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
    EXPECT_EQ(request("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
    EXPECT_EQ(request("GET /\r\n\r\n"), -1);  // HTTP/0.9: Beast refuses it (400)
    EXPECT_EQ(request("GET / HTTP/1.x\r\nHost: h\r\n\r\n"), -1);
    EXPECT_EQ(request("GET / http/1.1\r\nHost: h\r\n\r\n"), -1);
    EXPECT_EQ(request("GET HTTP/1.2\r\nHost: h\r\n\r\n"), -1);
    EXPECT_EQ(request("get / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    EXPECT_EQ(request("G.T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(HttpRules, TransferEncodingOnlyAsASingleFinalChunked) {
    const std::string head = "POST / HTTP/1.1\r\nHost: h\r\n";
    EXPECT_EQ(request(head + "Transfer-Encoding: chunked, chunked\r\n\r\n"), 400);
    EXPECT_EQ(request(head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
              -1);  // (Beast: duplicate)
    EXPECT_EQ(request(head + "Transfer-Encoding: chunked, gzip\r\n\r\n"), 400);
    EXPECT_EQ(request(head + "Transfer-Encoding: gzip\r\n\r\n"), 400);
    EXPECT_EQ(request(head + "Transfer-Encoding: xchunked\r\n\r\n"), 400);
    EXPECT_EQ(request(head + "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    EXPECT_EQ(request(head + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n"),
              501);
    EXPECT_EQ(request(head + "Transfer-Encoding: chunked;x=1\r\n\r\n"), 400);
    EXPECT_EQ(request(head + "Transfer-Encoding: ,\r\n\r\n"), 400);
    EXPECT_EQ(request("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    // Both framings: Beast refuses either order.
    EXPECT_EQ(request(head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), -1);
    EXPECT_EQ(request(head + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), -1);
    // Several Content-Lengths: one value when they agree (written once), else Beast refuses.
    EXPECT_EQ(request(head + "Content-Length: 3\r\nContent-Length: 3\r\n\r\n"), 0);
    EXPECT_EQ(request(head + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n"), -1);
    EXPECT_EQ(request(head + "Content-Length: +3\r\n\r\n"), -1);
}

TEST(HttpRules, HeadLinesEndInCrlfAndNeverFold) {
    EXPECT_EQ(check_head_lines("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), HeadLines::kOk);
    EXPECT_EQ(check_head_lines("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), HeadLines::kObsFold);
    EXPECT_EQ(check_head_lines("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"), HeadLines::kObsFold);
    EXPECT_EQ(check_head_lines("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), HeadLines::kObsFold);
    EXPECT_EQ(check_head_lines("GET / HTTP/1.1\nHost: h\r\n\r\n"), HeadLines::kBareLf);
    EXPECT_EQ(check_head_lines("GET / HTTP/1.1\r\nHost: h\r\n\n"), HeadLines::kBareLf);
    // Through the parser: a folded request is refused whichever field it continues.
    EXPECT_EQ(request("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n"), 400);
}

TEST(HttpRules, ResponsesTheBalancerCanRelay) {
    EXPECT_EQ(response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0);
    EXPECT_EQ(response("HTTP/1.0 404 Nope\r\n\r\n"), 0);
    EXPECT_EQ(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
    EXPECT_EQ(response("HTTP/2.0 200 OK\r\n\r\n"), -1);  // (Beast: bad version)
    EXPECT_EQ(response("HTTP/1.1 099 Low\r\n\r\n"), 502);
    EXPECT_EQ(response("HTTP/1.1 600 High\r\n\r\n"), 502);
    EXPECT_EQ(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 502);
    EXPECT_EQ(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 502);
    EXPECT_EQ(response("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 502);
}

TEST(HttpRules, Authorities) {
    EXPECT_TRUE(valid_authority("api.example.com"));
    EXPECT_TRUE(valid_authority("127.0.0.1:8080"));
    EXPECT_TRUE(valid_authority("[::1]"));
    EXPECT_TRUE(valid_authority("x%41y"));
    EXPECT_FALSE(valid_authority(""));
    EXPECT_FALSE(valid_authority(":80"));
    EXPECT_FALSE(valid_authority("[::1"));
    EXPECT_FALSE(valid_authority("[::1]x"));
    EXPECT_FALSE(valid_authority("x%4"));
    EXPECT_FALSE(valid_authority("a\"b"));
}

}  // namespace
}  // namespace lb
