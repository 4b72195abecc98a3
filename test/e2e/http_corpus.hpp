#pragma once

// The malformed-request and smuggling corpus tandem-lb is run through, side by side with HAProxy
// and nginx (lb_strict_http_test.cpp). Built from RFC 9110/9112 and the published smuggling
// research (CL.TE, TE.CL, TE.TE obfuscations, bare LF/CR, chunk extensions, Host confusion).
// `expect` is tandem-lb's answer: 0 when the request is forwarded (exactly once), else the
// status it answers itself — every case but the valid ones is refused before a byte of it
// reaches a cluster. Cases carrying kSmuggled would put a second request on the cluster's
// connection if a proxy framed them differently from the cluster.

#include <string>
#include <vector>

namespace corpus {

using namespace std::string_literals;  // ("..."s keeps an embedded NUL)

inline const std::string kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";

struct Case {
    std::string name;
    std::string bytes;
    int expect = 0;
};

inline std::vector<Case> requests() {
    const std::string post = "POST / HTTP/1.1\r\nHost: h\r\n";
    const std::string chunked = post + "Transfer-Encoding: chunked\r\n\r\n";
    return {
        // ---- valid: forwarded by all three
        {"valid GET", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        {"valid POST with Content-Length", post + "Content-Length: 5\r\n\r\nhello", 0},
        {"valid chunked POST", chunked + "5\r\nhello\r\n0\r\n\r\n", 0},
        {"valid chunk extension", chunked + "5;name=value\r\nhello\r\n0\r\n\r\n", 0},
        {"valid trailer", chunked + "5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", 0},
        {"valid absolute-form", "GET http://h/x HTTP/1.1\r\nHost: other\r\n\r\n", 0},
        {"valid absolute-form, same Host", "GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        {"valid OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        {"valid HTTP/1.0 with Host", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", 0},
        {"valid Transfer-Encoding case", post + "Transfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n", 0},
        {"valid Transfer-Encoding after a tab",
         post + "Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", 0},
        {"identical Content-Lengths", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
         0},
        {"Content-Length list of equal values", post + "Content-Length: 5, 5\r\n\r\nhello", 0},
        {"backslash in the path", "GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        // ---- Host
        {"no Host (HTTP/1.1)", "GET / HTTP/1.1\r\n\r\n", 400},
        {"no Host (HTTP/1.0)", "GET / HTTP/1.0\r\n\r\n", 400},
        {"two Hosts", "GET / HTTP/1.1\r\nHost: h\r\nHost: evil\r\n\r\n", 400},
        {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
        {"Host with a space", "GET / HTTP/1.1\r\nHost: h evil\r\n\r\n", 400},
        {"Host with a path", "GET / HTTP/1.1\r\nHost: h/admin\r\n\r\n", 400},
        {"Host with userinfo", "GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", 400},
        {"Host with a bad port", "GET / HTTP/1.1\r\nHost: h:80x\r\n\r\n", 400},
        {"absolute-form with userinfo", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"absolute-form of another scheme", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        // ---- Content-Length
        {"CL.CL: different lengths", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
         400},
        {"negative Content-Length", post + "Content-Length: -5\r\n\r\nhello", 400},
        {"Content-Length with a sign", post + "Content-Length: +5\r\n\r\nhello", 400},
        {"Content-Length with junk", post + "Content-Length: 5x\r\n\r\nhello", 400},
        {"Content-Length in hex", post + "Content-Length: 0x5\r\n\r\nhello", 400},
        {"Content-Length with inner space", post + "Content-Length: 5 5\r\n\r\nhello", 400},
        {"Content-Length overflow", post + "Content-Length: 99999999999999999999999\r\n\r\nhello",
         400},
        // ---- Transfer-Encoding: TE.TE obfuscations and CL.TE / TE.CL
        {"CL.TE", post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400},
        {"TE.CL",
         post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / "
                "HTTP/1.1\r\nHost: h\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n",
         400},
        {"TE: chunked, chunked",
         post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + kSmuggled, 400},
        {"TE: chunked twice on two lines",
         post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"TE: chunked then another coding",
         post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" +
             kSmuggled,
         400},
        {"TE: xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + kSmuggled, 400},
        {"TE: identity", post + "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n" + kSmuggled, 400},
        {"TE: gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"TE with a space before the colon",
         post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + kSmuggled, 400},
        {"TE after a vertical tab",
         post + "Transfer-Encoding: \x0b"
                "chunked\r\n\r\n0\r\n\r\n",
         400},
        {"TE folded onto a second line",
         post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + kSmuggled, 400},
        {"TE on HTTP/1.0",
         "POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"TE with a parameter", post + "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400},
        // ---- chunk framing
        {"bare LF after a chunk size", chunked + "5\nhello\r\n0\r\n\r\n" + kSmuggled, 400},
        {"bare LF after chunk data", chunked + "5\r\nhello\n0\r\n\r\n" + kSmuggled, 400},
        {"bare LF in the last chunk", chunked + "0\n\r\n" + kSmuggled, 400},
        {"bare LF ending the trailers", chunked + "0\r\n\n" + kSmuggled, 400},
        {"bare LF in a trailer", chunked + "0\r\nX-T: 1\n\r\n" + kSmuggled, 400},
        {"chunk size overflow", chunked + "fffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400},
        {"chunk size in 0x", chunked + "0x5\r\nhello\r\n0\r\n\r\n", 400},
        {"negative chunk size", chunked + "-5\r\nhello\r\n0\r\n\r\n", 400},
        {"chunk size with trailing space", chunked + "5 \r\nhello\r\n0\r\n\r\n", 400},
        {"chunk longer than its size", chunked + "5\r\nhelloEXTRA\r\n0\r\n\r\n" + kSmuggled, 400},
        {"huge chunk extension",
         chunked + "5;x=" + std::string(70000, 'a') + "\r\nhello\r\n0\r\n\r\n", 400},
        {"huge trailer", chunked + "0\r\nX-T: " + std::string(70000, 'a') + "\r\n\r\n", 400},
        {"last chunk without its CRLF", chunked + "0\r\n" + kSmuggled, 400},
        // ---- field syntax
        {"obsolete line folding", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", 400},
        {"space before a colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"NUL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"s, 400},
        {"bare CR in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400},
        {"control character in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400},
        {"DEL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n", 400},
        {"invalid field name", "GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n", 400},
        {"non-ASCII field name", "GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa4: 1\r\n\r\n", 400},
        {"field without a colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", 400},
        {"empty field name", "GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", 400},
        {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
        // ---- request line
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
        {"HTTP/2.0 on HTTP/1 framing", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"HTTP/0.9", "GET /\r\n\r\n", 400},
        {"lower-case protocol", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
        {"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"tab as a separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"relative target", "GET z/../admin HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"asterisk for GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"authority-form for GET", "GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501},
        {"fragment in the target", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"malformed %-escape", "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"bare LF line endings", "GET / HTTP/1.1\nHost: h\n\n", 400},
        {"bare CR line ending", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
        {"space in the target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    };
}

// Responses a cluster might send (the recorder answers /respond/NAME with them): `expect` is
// the status the client gets from tandem-lb (502: refused, never relayed).
inline std::vector<Case> responses() {
    const std::string ok = "HTTP/1.1 200 OK\r\n";
    return {
        {"valid", ok + "Content-Length: 2\r\n\r\nok", 200},
        {"valid chunked", ok + "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200},
        {"identical Content-Lengths", ok + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", 200},
        {"CL and TE",
         ok + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502},
        {"different Content-Lengths", ok + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
         502},
        {"negative Content-Length", ok + "Content-Length: -1\r\n\r\nok", 502},
        {"TE: chunked, chunked",
         ok + "Transfer-Encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502},
        {"TE: gzip", ok + "Transfer-Encoding: gzip\r\n\r\nok", 502},
        {"chunked on HTTP/1.0",
         "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502},
        {"bare LF line endings", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 502},
        {"obsolete line folding", ok + "X-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok", 502},
        {"space before a colon", ok + "Content-Length : 2\r\n\r\nok", 502},
        {"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok"s, 502},
        {"invalid field name", ok + "X(A): 1\r\nContent-Length: 2\r\n\r\nok", 502},
        {"four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", 502},
        {"status below 100", "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok", 502},
        {"HTTP/2.0 status line", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 502},
        {"bare LF in a chunk", ok + "Transfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n", 502},
        {"bad chunk size", ok + "Transfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", 502},
    };
}

}  // namespace corpus
