#include "lb/headers.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace lb {

namespace http = boost::beast::http;

namespace {

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos) {
        return {};
    }
    const auto e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}

}  // namespace

void strip_hop_by_hop(http::fields& fields) {
    std::vector<std::string> named;
    for (auto it = fields.find(http::field::connection);
         it != fields.end() && it->name() == http::field::connection; ++it) {
        std::string_view value = it->value();
        while (!value.empty()) {
            const auto comma = value.find(',');
            const std::string token = trim(value.substr(0, comma));
            if (!token.empty()) {
                named.push_back(token);
            }
            value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        }
    }
    for (const auto& name : named) {
        fields.erase(name);
    }
    for (const auto f : {http::field::connection, http::field::keep_alive,
                         http::field::proxy_connection, http::field::te, http::field::trailer,
                         http::field::transfer_encoding, http::field::upgrade}) {
        fields.erase(f);
    }
}

void add_forwarding(http::fields& fields,
                    const boost::asio::ip::address& client,
                    std::string_view proto) {
    const std::string address = client.to_string();
    const auto xff = fields["X-Forwarded-For"];
    fields.set("X-Forwarded-For", xff.empty() ? address : std::string(xff) + ", " + address);
    fields.set("X-Forwarded-Proto", std::string(proto));
    const std::string node = client.is_v6() ? "\"[" + address + "]\"" : address;
    const std::string element = "for=" + node + ";proto=" + std::string(proto);
    const auto forwarded = fields[http::field::forwarded];
    fields.set(http::field::forwarded,
               forwarded.empty() ? element : std::string(forwarded) + ", " + element);
}

}  // namespace lb
