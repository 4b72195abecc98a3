#include "support/http.hpp"

#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>

namespace support {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpReply http_request(std::uint16_t port,
                       const std::string& method,
                       const std::string& target,
                       const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       std::chrono::milliseconds timeout) {
    return http_request_at("127.0.0.1", port, method, target, body, headers, timeout);
}

HttpReply http_request_at(const std::string& ip,
                          std::uint16_t port,
                          const std::string& method,
                          const std::string& target,
                          const std::string& body,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::chrono::milliseconds timeout) {
    HttpReply reply;
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    if (req.method() == http::verb::unknown) {
        req.method_string(method);
    }
    req.set(http::field::host, ip + ":" + std::to_string(port));
    for (const auto& [name, value] : headers) {
        req.set(name, value);
    }
    req.body() = body;
    req.prepare_payload();
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    stream.expires_after(timeout);
    stream.async_connect(
        tcp::endpoint(asio::ip::make_address(ip), port), [&](beast::error_code ec) {
            if (ec) {
                reply.error = "connect: " + ec.message();
                return;
            }
            http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
                if (wec) {
                    reply.error = "write: " + wec.message();
                    return;
                }
                http::async_read(stream, buffer, parser, [&](beast::error_code rec, std::size_t) {
                    if (rec) {
                        reply.error = "read: " + rec.message();
                    }
                });
            });
        });
    ioc.run();
    if (!reply.error.empty() || !parser.is_done()) {
        return reply;
    }
    const auto& res = parser.get();
    reply.status = res.result_int();
    reply.body = res.body();
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& ch : name) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        reply.headers[name] = std::string(f.value());
    }
    return reply;
}

std::string raw_exchange(std::uint16_t port,
                         const std::string& bytes,
                         std::chrono::milliseconds timeout) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    std::string out;
    std::array<char, 4096> buf{};
    std::function<void()> read_more = [&] {
        stream.async_read_some(asio::buffer(buf), [&](beast::error_code ec, std::size_t n) {
            out.append(buf.data(), n);
            if (!ec) {
                read_more();
            }
        });
    };
    stream.expires_after(timeout);
    stream.async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
            if (ec) {
                return;
            }
            asio::async_write(stream, asio::buffer(bytes),
                              [&](beast::error_code, std::size_t) { read_more(); });
        });
    ioc.run();
    return out;
}

std::string basic_auth(const std::string& user, const std::string& password) {
    namespace b64 = beast::detail::base64;
    const std::string raw = user + ":" + password;
    std::string out(b64::encoded_size(raw.size()), '\0');
    out.resize(b64::encode(out.data(), raw.data(), raw.size()));
    return "Basic " + out;
}

double metric_sum(const std::string& exposition, const std::string& prefix) {
    double sum = 0;
    std::istringstream in(exposition);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(prefix, 0) == 0) {
            sum += std::stod(line.substr(line.rfind(' ') + 1));
        }
    }
    return sum;
}

}  // namespace support
