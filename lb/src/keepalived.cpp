// keepalived.conf for the tandem-lb nodes (floating VIPs, OpenShift ipfailover's model in
// seed 003): one VRRP instance per VIP so VIPs spread over the nodes; every node is a candidate
// for every VIP; a node whose tandem-lb fails /healthz gives its VIPs up (track script).
#include <charconv>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "lb/config.hpp"

namespace lb {

namespace {

std::optional<unsigned> parse_uint(std::string_view s, unsigned high) {
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > high) {
        return std::nullopt;
    }
    return v;
}

}  // namespace

std::optional<std::vector<std::string>> expand_vips(const std::string& text) {
    std::string body = text;
    std::string prefix;
    if (const auto slash = body.find('/'); slash != std::string::npos) {
        prefix = body.substr(slash + 1);
        body.resize(slash);
    }
    const auto dash = body.find('-');
    std::string first = body.substr(0, dash);
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(first, ec);
    if (ec || first.empty()) {
        return std::nullopt;
    }
    const unsigned max_prefix = address.is_v4() ? 32 : 128;
    if (!prefix.empty() && !parse_uint(prefix, max_prefix)) {
        return std::nullopt;
    }
    const std::string suffix = "/" + (prefix.empty() ? std::to_string(max_prefix) : prefix);
    if (dash == std::string::npos) {
        return std::vector<std::string>{address.to_string() + suffix};
    }
    if (!address.is_v4()) {
        return std::nullopt;  // ranges only for IPv4
    }
    auto bytes = address.to_v4().to_bytes();
    const auto last = parse_uint(body.substr(dash + 1), 255);
    if (!last || *last < bytes[3]) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (unsigned b = bytes[3]; b <= *last; ++b) {
        bytes[3] = static_cast<unsigned char>(b);
        out.push_back(boost::asio::ip::address_v4(bytes).to_string() + suffix);
    }
    return out;
}

std::expected<std::string, std::string> render_keepalived(const LbConfig& config,
                                                          const std::string& node) {
    const auto& k = config.keepalived;
    if (!k.present) {
        return std::unexpected(
            std::string("the configuration has no keepalived: section (interface, vips, nodes)"));
    }
    std::size_t self = k.nodes.size();
    for (std::size_t i = 0; i < k.nodes.size(); ++i) {
        if (k.nodes[i].name == node) {
            self = i;
        }
    }
    if (self == k.nodes.size()) {
        std::string names;
        for (const auto& n : k.nodes) {
            names += (names.empty() ? "" : ", ") + n.name;
        }
        return std::unexpected("no node named '" + node + "' in keepalived.nodes (" + names + ")");
    }
    const std::size_t n = k.nodes.size();
    const auto seconds = [](Millis m) {
        std::ostringstream s;
        s << static_cast<double>(m.count()) / 1000.0;
        return s.str();
    };
    std::ostringstream out;
    out << "# keepalived.conf for tandem-lb node " << node
        << " (rendered by tandem-lb --render-keepalived; do not edit here)\n"
           "# "
        << k.vips.size() << " VIPs over " << n
        << " nodes: each VIP has a home node (priority 150) and every other node is a candidate;\n"
           "# a node whose tandem-lb fails /healthz (no healthy cluster, draining, or down) "
           "enters\n"
           "# FAULT and gives its VIPs up.\n\n"
           "global_defs {\n"
           "    router_id tandem-lb-"
        << node
        << "\n"
           "    enable_script_security\n"
           "    script_user root\n"
           "    vrrp_garp_master_refresh 60\n"
           "}\n\n"
           "vrrp_script chk_tandem_lb {\n"
           "    script \""
        << k.tandem_lb_path << " --healthcheck -c " << k.config_path
        << "\"\n"
           "    interval "
        << seconds(k.check_interval) << "\n    timeout " << seconds(k.check_interval * 2)
        << "\n    fall " << k.fall << "\n    rise " << k.rise << "\n}\n";
    for (std::size_t j = 0; j < k.vips.size(); ++j) {
        const std::size_t home = j % n;
        // The home node first, then the others in a fixed rotation: failover order is stable.
        const std::size_t rank = (self + n - home) % n;
        const unsigned priority = rank == 0 ? 150u : static_cast<unsigned>(100 - rank);
        out << "\nvrrp_instance tandem_vip_" << j << " {\n"
            << "    state BACKUP\n"
            << "    interface " << k.interface << "\n"
            << "    virtual_router_id " << k.virtual_router_id_base + j << "\n"
            << "    priority " << priority << "\n"
            << "    advert_int " << seconds(k.advert_interval) << "\n"
            << "    preempt_delay 10\n"
            << "    unicast_src_ip " << k.nodes[self].address << "\n"
            << "    unicast_peer {\n";
        for (std::size_t p = 0; p < n; ++p) {
            if (p != self) {
                out << "        " << k.nodes[p].address << "\n";
            }
        }
        out << "    }\n"
            << "    virtual_ipaddress {\n"
            << "        " << k.vips[j] << " dev " << k.interface << "\n"
            << "    }\n"
            << "    track_script {\n"
            << "        chk_tandem_lb\n"
            << "    }\n"
            << "}\n";
    }
    return out.str();
}

}  // namespace lb
