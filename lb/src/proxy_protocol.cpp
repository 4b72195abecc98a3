#include "lb/proxy_protocol.hpp"

#include <array>
#include <charconv>
#include <cstring>

namespace lb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kV1Max = 107;  // the spec's longest line, CRLF included
constexpr std::array<unsigned char, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                        0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

ProxyResult invalid(std::string_view why) {
    ProxyResult r;
    r.status = ProxyParse::kInvalid;
    r.error = why;
    return r;
}

// A decimal port, no sign, no leading zero (the spec's form), 0-65535.
bool parse_port(std::string_view s, unsigned short& out) {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s.front() == '0')) {
        return false;
    }
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v > 65535) {
        return false;
    }
    out = static_cast<unsigned short>(v);
    return true;
}

ProxyResult parse_v1(std::string_view bytes) {
    const auto eol = bytes.substr(0, kV1Max).find("\r\n");
    if (eol == std::string_view::npos) {
        if (bytes.size() >= kV1Max) {
            return invalid("PROXY v1 line longer than 107 bytes");
        }
        if (bytes.substr(0, std::min(bytes.size(), kV1Max)).find('\n') != std::string_view::npos) {
            return invalid("PROXY v1 line not ended by CRLF");
        }
        return {};
    }
    ProxyResult r;
    r.status = ProxyParse::kOk;
    r.header.length = eol + 2;
    std::string_view rest = bytes.substr(kV1Prefix.size(), eol - kV1Prefix.size());
    // TCP4|TCP6 SP src SP dst SP sport SP dport, single spaces; or UNKNOWN and anything.
    std::array<std::string_view, 5> f;
    for (std::size_t i = 0; i < f.size(); ++i) {
        const auto sp = rest.find(' ');
        f[i] = rest.substr(0, sp);
        if (i == 0 && f[0] == "UNKNOWN") {
            return r;  // (local: the connection's own addresses)
        }
        if (f[i].empty() || (i < 4 && sp == std::string_view::npos)) {
            return invalid("malformed PROXY v1 line");
        }
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    if (!rest.empty() || (f[0] != "TCP4" && f[0] != "TCP6")) {
        return invalid("malformed PROXY v1 line (expected TCP4, TCP6 or UNKNOWN)");
    }
    boost::system::error_code e1;
    boost::system::error_code e2;
    asio::ip::address src;
    asio::ip::address dst;
    if (f[0] == "TCP4") {
        src = asio::ip::make_address_v4(std::string(f[1]), e1);
        dst = asio::ip::make_address_v4(std::string(f[2]), e2);
    } else {
        src = asio::ip::make_address_v6(std::string(f[1]), e1);
        dst = asio::ip::make_address_v6(std::string(f[2]), e2);
    }
    unsigned short sport = 0;
    unsigned short dport = 0;
    if (e1 || e2 || !parse_port(f[3], sport) || !parse_port(f[4], dport)) {
        return invalid("malformed address or port in the PROXY v1 line");
    }
    r.header.local = false;
    r.header.source = tcp::endpoint(src, sport);
    r.header.destination = tcp::endpoint(dst, dport);
    return r;
}

unsigned short port_at(const unsigned char* p) {
    return static_cast<unsigned short>((p[0] << 8) | p[1]);
}

ProxyResult parse_v2(std::string_view bytes) {
    if (bytes.size() < 16) {
        return {};
    }
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const unsigned version = p[12] >> 4;
    const unsigned command = p[12] & 0xf;
    const unsigned family = p[13] >> 4;
    const unsigned transport = p[13] & 0xf;
    const std::size_t len = (static_cast<std::size_t>(p[14]) << 8) | p[15];
    if (version != 2 || command > 1) {
        return invalid("PROXY v2 header with an unknown version or command");
    }
    if (16 + len > kMaxProxyHeader) {
        return invalid("PROXY v2 header longer than 4096 bytes");
    }
    if (bytes.size() < 16 + len) {
        return {};
    }
    ProxyResult r;
    r.status = ProxyParse::kOk;
    r.header.length = 16 + len;
    if (command == 0 || transport != 1 || (family != 1 && family != 2)) {
        return r;  // LOCAL, or not TCP over IP: the connection's own addresses
    }
    const unsigned char* a = p + 16;
    if (family == 1) {
        if (len < 12) {
            return invalid("PROXY v2 header too short for IPv4 addresses");
        }
        asio::ip::address_v4::bytes_type s{};
        asio::ip::address_v4::bytes_type d{};
        std::memcpy(s.data(), a, 4);
        std::memcpy(d.data(), a + 4, 4);
        r.header.source = tcp::endpoint(asio::ip::address_v4(s), port_at(a + 8));
        r.header.destination = tcp::endpoint(asio::ip::address_v4(d), port_at(a + 10));
    } else {
        if (len < 36) {
            return invalid("PROXY v2 header too short for IPv6 addresses");
        }
        asio::ip::address_v6::bytes_type s{};
        asio::ip::address_v6::bytes_type d{};
        std::memcpy(s.data(), a, 16);
        std::memcpy(d.data(), a + 16, 16);
        r.header.source = tcp::endpoint(asio::ip::address_v6(s), port_at(a + 32));
        r.header.destination = tcp::endpoint(asio::ip::address_v6(d), port_at(a + 34));
    }
    r.header.local = false;
    return r;
}

bool starts_as_v2(std::string_view bytes) {
    const std::size_t n = std::min(bytes.size(), kV2Signature.size());
    return std::memcmp(bytes.data(), kV2Signature.data(), n) == 0;
}

bool starts_as_v1(std::string_view bytes) {
    const std::size_t n = std::min(bytes.size(), kV1Prefix.size());
    return bytes.substr(0, n) == kV1Prefix.substr(0, n);
}

void put_port(std::string& out, unsigned short port) {
    out.push_back(static_cast<char>(port >> 8));
    out.push_back(static_cast<char>(port & 0xff));
}

}  // namespace

ProxyResult parse_proxy_header(std::string_view bytes, ProxyVersion accept) {
    if (bytes.empty()) {
        return {};
    }
    if (accept != ProxyVersion::kV1 && starts_as_v2(bytes)) {
        return bytes.size() < kV2Signature.size() ? ProxyResult{} : parse_v2(bytes);
    }
    if (accept != ProxyVersion::kV2 && starts_as_v1(bytes)) {
        return bytes.size() < kV1Prefix.size() ? ProxyResult{} : parse_v1(bytes);
    }
    return invalid(accept == ProxyVersion::kV1   ? "no PROXY v1 header"
                   : accept == ProxyVersion::kV2 ? "no PROXY v2 header"
                                                 : "no PROXY header");
}

std::string proxy_header(ProxyVersion version,
                         const tcp::endpoint& source,
                         const tcp::endpoint& destination) {
    const bool v4 = source.address().is_v4() && destination.address().is_v4();
    // (mixed families: both as IPv6, v4 ones mapped)
    const auto v6 = [](const asio::ip::address& a) {
        return a.is_v6() ? a.to_v6() : asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4());
    };
    if (version == ProxyVersion::kV1) {
        std::string out = v4 ? "PROXY TCP4 " : "PROXY TCP6 ";
        out += v4 ? source.address().to_string() : v6(source.address()).to_string();
        out += ' ';
        out += v4 ? destination.address().to_string() : v6(destination.address()).to_string();
        out += ' ' + std::to_string(source.port()) + ' ' + std::to_string(destination.port());
        out += "\r\n";
        return out;
    }
    std::string out(reinterpret_cast<const char*>(kV2Signature.data()), kV2Signature.size());
    out.push_back(static_cast<char>(0x21));              // version 2, PROXY
    out.push_back(static_cast<char>(v4 ? 0x11 : 0x21));  // TCP over IPv4 / IPv6
    const std::size_t len = v4 ? 12 : 36;
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(len & 0xff));
    if (v4) {
        for (const auto& b :
             {source.address().to_v4().to_bytes(), destination.address().to_v4().to_bytes()}) {
            out.append(reinterpret_cast<const char*>(b.data()), b.size());
        }
    } else {
        for (const auto& b :
             {v6(source.address()).to_bytes(), v6(destination.address()).to_bytes()}) {
            out.append(reinterpret_cast<const char*>(b.data()), b.size());
        }
    }
    put_port(out, source.port());
    put_port(out, destination.port());
    return out;
}

std::string proxy_header_local(ProxyVersion version) {
    if (version == ProxyVersion::kV1) {
        return "PROXY UNKNOWN\r\n";
    }
    std::string out(reinterpret_cast<const char*>(kV2Signature.data()), kV2Signature.size());
    out.push_back(static_cast<char>(0x20));  // version 2, LOCAL
    out.push_back(static_cast<char>(0x00));  // UNSPEC
    out.push_back(0);
    out.push_back(0);
    return out;
}

}  // namespace lb
