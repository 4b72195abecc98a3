// The PROXY protocol's headers, v1 and v2, both ways (HAProxy's spec, proxy-protocol.txt).
#include "lb/proxy_protocol.hpp"

#include <gtest/gtest.h>

namespace lb {
namespace {

using tcp = boost::asio::ip::tcp;
using namespace std::string_literals;

tcp::endpoint ep(const char* ip, unsigned short port) {
    return {boost::asio::ip::make_address(ip), port};
}

TEST(ProxyProtocol, V1Lines) {
    const std::string line = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
    auto r = parse_proxy_header(line, ProxyVersion::kAny);
    ASSERT_EQ(r.status, ProxyParse::kOk) << r.error;
    EXPECT_EQ(r.header.length, line.find("GET"));
    EXPECT_FALSE(r.header.local);
    EXPECT_EQ(r.header.source, ep("192.0.2.7", 56324));
    EXPECT_EQ(r.header.destination, ep("10.0.0.1", 443));
    r = parse_proxy_header("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", ProxyVersion::kV1);
    ASSERT_EQ(r.status, ProxyParse::kOk);
    EXPECT_EQ(r.header.source, ep("2001:db8::1", 1));
    r = parse_proxy_header("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ProxyVersion::kV1);
    ASSERT_EQ(r.status, ProxyParse::kOk);
    EXPECT_TRUE(r.header.local);
    EXPECT_EQ(r.header.length, 35U);
    // Arriving piece by piece: more is needed until the CRLF.
    EXPECT_EQ(parse_proxy_header("PRO", ProxyVersion::kV1).status, ProxyParse::kNeedMore);
    EXPECT_EQ(parse_proxy_header("PROXY TCP4 192.0.2.7", ProxyVersion::kV1).status,
              ProxyParse::kNeedMore);
    for (const std::string& bad : {
             "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\n"s,     // LF alone
             "PROXY TCP4 192.0.2.7  10.0.0.1 56324 443\r\n"s,  // two spaces
             "PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n"s,       // family mismatch
             "PROXY TCP4 192.0.2.7 10.0.0.1 65536 443\r\n"s,   // port range
             "PROXY TCP4 192.0.2.7 10.0.0.1 056324 443\r\n"s,  // leading zero
             "PROXY TCP4 192.0.2.7 10.0.0.1 1 2 3\r\n"s,       // extra field
             "PROXY UDP4 192.0.2.7 10.0.0.1 1 2\r\n"s,         // protocol
             "PROXY TCP4 192.0.2.777 10.0.0.1 1 2\r\n"s,       // address
             "GET / HTTP/1.1\r\nHost: x\r\n\r\n"s,             // no header at all
             "PROXY TCP4 " + std::string(120, '1') + "\r\n",   // too long
         }) {
        EXPECT_EQ(parse_proxy_header(bad, ProxyVersion::kAny).status, ProxyParse::kInvalid) << bad;
    }
    // A v1 header where only v2 is accepted.
    EXPECT_EQ(parse_proxy_header(line, ProxyVersion::kV2).status, ProxyParse::kInvalid);
}

TEST(ProxyProtocol, V2RoundTripsAndIsBounded) {
    for (const auto& [src, dst] : {std::pair{ep("192.0.2.7", 56324), ep("10.0.0.1", 443)},
                                   std::pair{ep("2001:db8::1", 1), ep("2001:db8::2", 2)}}) {
        const std::string h = proxy_header(ProxyVersion::kV2, src, dst) + "GET";
        auto r = parse_proxy_header(h, ProxyVersion::kV2);
        ASSERT_EQ(r.status, ProxyParse::kOk) << r.error;
        EXPECT_EQ(r.header.length, h.size() - 3);
        EXPECT_EQ(r.header.source, src);
        EXPECT_EQ(r.header.destination, dst);
        // Every shorter prefix needs more.
        for (std::size_t n = 1; n < r.header.length; ++n) {
            EXPECT_EQ(parse_proxy_header(h.substr(0, n), ProxyVersion::kAny).status,
                      ProxyParse::kNeedMore)
                << n;
        }
        // And v1 the same way.
        const std::string v1 = proxy_header(ProxyVersion::kV1, src, dst);
        r = parse_proxy_header(v1, ProxyVersion::kV1);
        ASSERT_EQ(r.status, ProxyParse::kOk) << v1;
        EXPECT_EQ(r.header.source, src);
    }
    // LOCAL (an L4 balancer's health check), and TLVs skipped.
    auto r = parse_proxy_header(proxy_header_local(ProxyVersion::kV2), ProxyVersion::kAny);
    ASSERT_EQ(r.status, ProxyParse::kOk);
    EXPECT_TRUE(r.header.local);
    EXPECT_EQ(r.header.length, 16U);
    std::string with_tlv = proxy_header(ProxyVersion::kV2, ep("192.0.2.7", 1), ep("10.0.0.1", 2));
    with_tlv[15] = static_cast<char>(12 + 7);  // addresses + one TLV
    with_tlv += "\x04\x00\x04"s + "abcd";      // PP2_TYPE_NOOP, 4 bytes
    r = parse_proxy_header(with_tlv, ProxyVersion::kV2);
    ASSERT_EQ(r.status, ProxyParse::kOk);
    EXPECT_EQ(r.header.length, 16U + 19U);
    EXPECT_EQ(r.header.source, ep("192.0.2.7", 1));
    // Bounded: a declared length beyond 4 KiB is refused before it is read.
    std::string huge = proxy_header_local(ProxyVersion::kV2);
    huge[14] = static_cast<char>(0x20);  // 8 KiB
    EXPECT_EQ(parse_proxy_header(huge, ProxyVersion::kV2).status, ProxyParse::kInvalid);
    // A wrong version nibble, an unknown command.
    std::string bad = proxy_header_local(ProxyVersion::kV2);
    bad[12] = static_cast<char>(0x30);
    EXPECT_EQ(parse_proxy_header(bad, ProxyVersion::kV2).status, ProxyParse::kInvalid);
    bad[12] = static_cast<char>(0x2f);
    EXPECT_EQ(parse_proxy_header(bad, ProxyVersion::kV2).status, ProxyParse::kInvalid);
    // IPv4 family with too short an address block.
    std::string short4 = proxy_header(ProxyVersion::kV2, ep("192.0.2.7", 1), ep("10.0.0.1", 2));
    short4[15] = 4;
    short4.resize(20);
    EXPECT_EQ(parse_proxy_header(short4, ProxyVersion::kV2).status, ProxyParse::kInvalid);
    EXPECT_EQ(proxy_header_local(ProxyVersion::kV1), "PROXY UNKNOWN\r\n");
}

}  // namespace
}  // namespace lb
