// Heads between HTTP/1.1 and HTTP/2 for h2 clusters. Pure.
#include "h2_heads.hpp"

#include <algorithm>
#include <cctype>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

namespace lb {

using boost::beast::iequals;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return out;
}

bool connection_specific(std::string_view lower_name) {
    return lower_name == "connection" || lower_name == "keep-alive" ||
           lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
           lower_name == "upgrade" || lower_name == "te" || lower_name == "trailer";
}

H2RequestHead h2_request_head(std::string_view http1,
                              std::string_view scheme,
                              bool te_trailers,
                              bool end_stream) {
    H2RequestHead h;
    h.scheme = scheme;
    h.end_stream = end_stream;
    std::size_t eol = http1.find("\r\n");
    const std::string_view line = http1.substr(0, eol);
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = line.rfind(' ');
    if (sp1 != std::string_view::npos && sp2 > sp1) {
        h.method = line.substr(0, sp1);
        h.path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    }
    while (eol != std::string_view::npos) {
        const std::size_t start = eol + 2;
        eol = http1.find("\r\n", start);
        const std::string_view f = http1.substr(start, eol - start);
        const std::size_t colon = f.find(':');
        if (f.empty() || colon == std::string_view::npos) {
            continue;
        }
        std::string name = lower(f.substr(0, colon));
        std::string_view value = f.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
            value.remove_prefix(1);
        }
        if (name == "host") {
            h.authority = value;
        } else if (!connection_specific(name)) {
            h.fields.push_back({std::move(name), std::string(value)});
        }
    }
    if (te_trailers) {
        h.fields.push_back({"te", "trailers"});
    }
    return h;
}

H1ResponseFraming h1_framing(const H2ResponseHead& head, unsigned client_version, bool bodyless) {
    H1ResponseFraming f;
    if (bodyless) {
        return f;
    }
    const bool length = std::any_of(head.fields.begin(), head.fields.end(),
                                    [](const H2Field& x) { return x.name == "content-length"; });
    if (!length) {
        f.chunked = client_version >= 11;
        f.close = client_version < 11;
    }
    return f;
}

void write_h1_response_head(const H2ResponseHead& head,
                            H1ResponseFraming framing,
                            bool keep_alive,
                            std::string_view id_header,
                            std::string_view id,
                            std::string& out) {
    out.clear();
    out.append("HTTP/1.1 ");
    out.append(std::to_string(head.status));
    out.push_back(' ');
    out.append(
        boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(head.status)));
    out.append("\r\n");
    for (const auto& f : head.fields) {
        if (connection_specific(f.name) || (!id_header.empty() && iequals(f.name, id_header))) {
            continue;
        }
        out.append(f.name);
        out.append(": ");
        out.append(f.value);
        out.append("\r\n");
    }
    if (!id_header.empty()) {
        out.append(id_header);
        out.append(": ");
        out.append(id);
        out.append("\r\n");
    }
    if (framing.chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    out.append(keep_alive && !framing.close ? "Connection: keep-alive\r\n"
                                            : "Connection: close\r\n");
    out.append("\r\n");
}

std::string last_chunk(const std::vector<H2Field>& trailers) {
    std::string out = "0\r\n";
    for (const auto& f : trailers) {
        if (!connection_specific(f.name) && f.name != "content-length") {
            out += f.name + ": " + f.value + "\r\n";
        }
    }
    out += "\r\n";
    return out;
}

bool is_grpc(std::string_view content_type) {
    constexpr std::string_view kGrpc = "application/grpc";
    return content_type.size() >= kGrpc.size() &&
           iequals(content_type.substr(0, kGrpc.size()), kGrpc) &&
           (content_type.size() == kGrpc.size() || content_type[kGrpc.size()] == '+' ||
            content_type[kGrpc.size()] == ';');
}

}  // namespace lb
