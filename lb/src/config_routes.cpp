// The routes: section of tandem-lb's file (host routing; see lb/routes.hpp).
#include "config_routes.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "lb/routes.hpp"

namespace lb {

using config::YamlNode;
using config::YamlReader;

namespace {

// A host pattern: "*", "*.suffix", or a name (letters, digits, '-', '.'; an IP address too).
bool valid_pattern(const std::string& p) {
    if (p == "*") {
        return true;
    }
    const std::string name = p.starts_with("*.") ? p.substr(2) : p;
    return !name.empty() && name.size() <= 253 && name.front() != '.' && name.back() != '.' &&
           std::all_of(name.begin(), name.end(), [](unsigned char c) {
               return std::isalnum(c) != 0 || c == '-' || c == '.' || c == ':';
           });
}

}  // namespace

void read_routes(YamlReader& r, const YamlNode& root, LbConfig& out) {
    const YamlNode list = r.child(root, "routes");
    if (!list.defined() || list.null()) {
        return;
    }
    if (!list.is_sequence() || list.size() == 0) {
        r.error(list, "routes",
                "must be a list of {hosts: [...], policy: primary|roundRobin, clusters: [...]}");
        return;
    }
    std::map<std::string, std::string> taken;  // host pattern -> the route that has it
    std::optional<std::string> catch_all;      // the route with "*"
    for (std::size_t i = 0; i < list.size(); ++i) {
        const YamlNode node = list[i];
        const std::string path = "routes[" + std::to_string(i) + "]";
        if (!r.mapping(node, path, {"name", "hosts", "policy", "clusters"})) {
            continue;
        }
        RouteConfig route;
        route.source = r.at(node);
        route.name = r.str(node, "name", path, false).value_or(path);
        if (catch_all) {
            r.error(node, path,
                    "comes after the catch-all route " + *catch_all +
                        " (hosts: [\"*\"]): it would never be used; move the catch-all last");
        }
        const YamlNode hosts = r.child(node, "hosts");
        if (!hosts.is_sequence() || hosts.size() == 0) {
            r.error(hosts.defined() ? hosts : node, path + ".hosts",
                    "is required: a list of host names, \"*.suffix\" or \"*\"");
        }
        for (std::size_t h = 0; hosts.is_sequence() && h < hosts.size(); ++h) {
            const YamlNode hn = hosts[h];
            std::string p = hn.is_scalar() ? hn.scalar() : "";
            std::transform(p.begin(), p.end(), p.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            const std::string where = path + ".hosts[" + std::to_string(h) + "]";
            if (!valid_pattern(p)) {
                r.error(hn, where,
                        "must be a host name (api.example.com), \"*.example.com\" or \"*\" "
                        "(got '" +
                            hn.scalar() + "')");
                continue;
            }
            if (auto [it, fresh] = taken.emplace(p, route.name); !fresh) {
                r.error(hn, where,
                        "'" + p + "' is taken by " + it->second + " already (first match wins)");
            }
            if (p == "*") {
                catch_all = route.name;
            }
            route.hosts.push_back(p);
        }
        if (auto policy = r.str(node, "policy", path, false)) {
            if (*policy == "primary") {
                route.policy = RoutePolicy::kPrimary;
            } else if (*policy != "roundRobin") {
                r.error(r.child(node, "policy"), path + ".policy",
                        "must be primary (the first healthy cluster in order) or roundRobin");
            }
        }
        const YamlNode clusters = r.child(node, "clusters");
        if (clusters.defined() && (!clusters.is_sequence() || clusters.size() == 0)) {
            r.error(clusters, path + ".clusters", "must be a non-empty list of cluster names");
        }
        for (std::size_t c = 0; clusters.is_sequence() && c < clusters.size(); ++c) {
            const std::string name = clusters[c].scalar();
            const auto it = std::find_if(out.clusters.begin(), out.clusters.end(),
                                         [&](const ClusterConfig& cc) { return cc.name == name; });
            const std::string where = path + ".clusters[" + std::to_string(c) + "]";
            if (it == out.clusters.end()) {
                r.error(clusters[c], where, "no cluster named '" + name + "' in clusters:");
                continue;
            }
            const auto index = static_cast<std::size_t>(it - out.clusters.begin());
            if (std::find(route.clusters.begin(), route.clusters.end(), index) !=
                route.clusters.end()) {
                r.error(clusters[c], where, "'" + name + "' is listed twice");
                continue;
            }
            route.clusters.push_back(index);
        }
        if (!clusters.defined()) {
            if (route.policy == RoutePolicy::kPrimary) {
                r.error(node, path + ".clusters",
                        "is required with policy primary: the clusters in the order to try them");
            }
            for (std::size_t c = 0; c < out.clusters.size(); ++c) {
                route.clusters.push_back(c);  // roundRobin: every cluster
            }
        }
        out.routes.push_back(std::move(route));
    }
}

void check_protocols(YamlReader& r, const YamlNode& root, const LbConfig& out) {
    const auto protocol_name = [](ClusterProtocol p) {
        return p == ClusterProtocol::kH2 ? "h2" : "http1";
    };
    const auto check = [&](const std::vector<std::size_t>& clusters, const YamlNode& node,
                           const std::string& what) {
        for (const std::size_t c : clusters) {
            const auto& first = out.clusters[clusters.front()];
            const auto& cluster = out.clusters[c];
            if (cluster.protocol != first.protocol) {
                r.error(node, what,
                        "mixes protocols: cluster " + cluster.name + " speaks " +
                            protocol_name(cluster.protocol) + ", cluster " + first.name + " " +
                            protocol_name(first.protocol) +
                            " (a request retried on another cluster keeps its protocol): give "
                            "them one protocol, or split them into routes");
                return;
            }
        }
    };
    const YamlNode list = r.child(root, "routes");
    if (out.routes.empty() && !out.clusters.empty()) {
        std::vector<std::size_t> all(out.clusters.size());
        for (std::size_t c = 0; c < all.size(); ++c) {
            all[c] = c;
        }
        check(all, r.child(root, "clusters"), "clusters");
    }
    // (a route that failed to read has its error already: indexes match only without one)
    for (std::size_t i = 0;
         list.is_sequence() && out.routes.size() == list.size() && i < out.routes.size(); ++i) {
        check(out.routes[i].clusters, list[i], "routes[" + std::to_string(i) + "].clusters");
    }
    for (std::size_t c = 0; c < out.clusters.size(); ++c) {
        const auto& cluster = out.clusters[c];
        if (cluster.protocol == ClusterProtocol::kH2 && cluster.proxy_protocol) {
            r.error(r.child(root, "clusters")[c], "clusters[" + std::to_string(c) + "].protocol",
                    "h2 cannot be combined with proxyProtocol: one h2 connection carries many "
                    "clients' streams, the PROXY protocol names one client per connection");
        }
    }
}

}  // namespace lb
