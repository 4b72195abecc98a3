// The fleet file's `serve:` section: how `tandem serve` keeps the live fleet converged and
// which balancers tell it which clusters are down.
#include <set>

#include "config/normalize.hpp"
#include "fleet_file.hpp"

namespace config {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

void read_balancer(YamlReader& r,
                   const YamlNode& node,
                   const std::string& where,
                   const fs::path& base,
                   bool secrets,
                   std::set<std::string>& seen,
                   ServeSettings& out) {
    if (!r.mapping(node, where, {"url", "token", "caBundle", "insecureSkipTlsVerify"})) {
        return;
    }
    BalancerRef b;
    b.source = r.at(node);
    if (auto url = r.str(node, "url", where, true)) {
        auto normalized = normalize_url(*url);
        if (!normalized || !(url->starts_with("http://") || url->starts_with("https://")) ||
            normalized->find('?') != std::string::npos ||
            normalized->find('@') != std::string::npos) {
            const std::string why = normalized ? "" : url_problem(*url);
            r.error(r.child(node, "url"), where + ".url",
                    "must be the http:// or https:// URL of a tandem-lb admin listener, without "
                    "credentials or a query (e.g. http://127.0.0.1:9901)" +
                        (why.empty() ? std::string() : " (" + why + ")"));
        } else {
            while (normalized->ends_with("/")) {
                normalized->pop_back();
            }
            if (!seen.insert(*normalized).second) {
                r.error(r.child(node, "url"), where + ".url",
                        "this balancer is listed twice: each replica counts once in the quorum");
            }
            b.url = *normalized;
        }
    }
    if (const YamlNode token = r.child(node, "token"); token.defined()) {
        if (auto t = read_secret_source(r, token, where + ".token", base,
                                        "the balancer's admin.token", secrets)) {
            b.token = std::move(t->value);
            b.token_source = std::move(t->source);
        }
    }
    if (auto ca = read_ca_bundle(r, node, where, base)) {
        b.ca_bundle = *ca;
    }
    b.insecure_skip_tls_verify =
        r.boolean(node, "insecureSkipTlsVerify", where, false).value_or(false);
    out.balancers.push_back(std::move(b));
}

void read_resplit(YamlReader& r, const YamlNode& node, ServeSettings& out) {
    if (!node.defined() || node.null() ||
        !r.mapping(node, "serve.resplit",
                   {"enabled", "after", "restoreAfter", "poll", "timeout"})) {
        return;
    }
    out.resplit = r.boolean(node, "enabled", "serve.resplit", false).value_or(true);
    const auto d = [&](const char* key, milliseconds low, milliseconds high, milliseconds& v) {
        if (auto x = r.duration(node, key, "serve.resplit", low, high, "s")) {
            v = *x;
        }
    };
    d("after", milliseconds(0), std::chrono::hours(24), out.resplit_after);
    d("restoreAfter", milliseconds(0), std::chrono::hours(24), out.restore_after);
    d("poll", milliseconds(100), std::chrono::minutes(10), out.poll);
    d("timeout", milliseconds(100), std::chrono::minutes(1), out.balancer_timeout);
    if (out.balancer_timeout > out.poll) {
        r.error(r.child(node, "timeout"), "serve.resplit.timeout",
                "must not be longer than serve.resplit.poll (a poll must end before the next)");
    }
}

}  // namespace

void read_serve(
    YamlReader& r, const YamlNode& root, const fs::path& base, bool secrets, Fleet& fleet) {
    const YamlNode node = r.child(root, "serve");
    if (!node.defined() || node.null() ||
        !r.mapping(node, "serve",
                   {"listen", "interval", "mode", "prune", "maxBackoff", "watchInterval",
                    "balancers", "resplit"})) {
        return;
    }
    ServeSettings& out = fleet.serve;
    out.source = r.at_key(root, "serve");
    if (auto l = r.str(node, "listen", "serve", false)) {
        const auto colon = l->rfind(':');
        const auto port = colon == std::string::npos
                              ? std::nullopt
                              : parse_unsigned(std::string_view(*l).substr(colon + 1));
        if (colon == 0 || !port || *port > 65535) {
            r.error(r.child(node, "listen"), "serve.listen",
                    "must be IP:port, e.g. 127.0.0.1:9902 or 0.0.0.0:9902 (got '" + *l + "')");
        } else {
            out.listen = *l;
        }
    }
    const auto d = [&](const char* key, milliseconds low, milliseconds high, milliseconds& v) {
        if (auto x = r.duration(node, key, "serve", low, high, "s")) {
            v = *x;
        }
    };
    d("interval", std::chrono::seconds(1), std::chrono::hours(24), out.interval);
    d("maxBackoff", std::chrono::seconds(1), std::chrono::hours(24), out.max_backoff);
    d("watchInterval", milliseconds(100), std::chrono::minutes(10), out.watch_interval);
    if (auto m = r.str(node, "mode", "serve", false)) {
        if (*m != "enforce" && *m != "report") {
            r.error(r.child(node, "mode"), "serve.mode",
                    "must be enforce (converge every instance) or report (drift only, no write)");
        }
        out.enforce = *m != "report";
    }
    out.prune = r.boolean(node, "prune", "serve", false).value_or(false);
    if (const YamlNode list = r.child(node, "balancers"); list.defined() && !list.null()) {
        if (!list.is_sequence()) {
            r.error(list, "serve.balancers",
                    "must be a list of {url: http://HOST:PORT, token: {env: VARIABLE}}");
        } else {
            std::set<std::string> seen;
            for (std::size_t i = 0; i < list.size(); ++i) {
                read_balancer(r, list[i], "serve.balancers[" + std::to_string(i) + "]", base,
                              secrets, seen, out);
            }
        }
    }
    read_resplit(r, r.child(node, "resplit"), out);
}

}  // namespace config
