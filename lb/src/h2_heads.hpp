#pragma once

// Heads between HTTP/1.1 and HTTP/2 for h2 clusters. Pure: no socket, no clock.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "h2_session.hpp"

namespace lb {

// `s` in lower case (HTTP/2 field names).
std::string lower(std::string_view s);
// Fields HTTP/2 does not carry (RFC 9113 8.2.2), by lower-case name.
bool connection_specific(std::string_view lower_name);

// The request for an h2 cluster from the HTTP/1.1 head write_request_head() made, so both
// protocols share one rewrite (forwarding fields, request ID, hop-by-hop fields dropped): the
// request line becomes :method and :path, Host :authority, names lower case, Transfer-Encoding
// dropped (HTTP/2 frames the body); `te: trailers` when the client asked for trailers (gRPC
// needs it). `end_stream`: no body follows.
H2RequestHead h2_request_head(std::string_view http1,
                              std::string_view scheme,
                              bool te_trailers,
                              bool end_stream);

// How an h2 cluster's response head is written for an HTTP/1.1 client.
struct H1ResponseFraming {
    bool chunked = false;  // no content-length, an HTTP/1.1 client: chunked (trailers fit)
    bool close = false;    // neither: the body ends with the connection (an HTTP/1.0 client)
};
// The framing for `head` (`bodyless`: HEAD, 204, 304, or the cluster ended the stream with it).
H1ResponseFraming h1_framing(const H2ResponseHead& head, unsigned client_version, bool bodyless);

// Writes the HTTP/1.1 response head for `head` into `out` (replacing it): the status line, the
// fields (the request ID replaced when `id_header` is set), the framing and Connection.
void write_h1_response_head(const H2ResponseHead& head,
                            H1ResponseFraming framing,
                            bool keep_alive,
                            std::string_view id_header,
                            std::string_view id,
                            std::string& out);

// A chunked body's last chunk with `trailers` as its trailer section (RFC 9112 7.1.2).
std::string last_chunk(const std::vector<H2Field>& trailers);

// Whether `content_type` is gRPC's (application/grpc, +proto, +json...).
bool is_grpc(std::string_view content_type);

}  // namespace lb
