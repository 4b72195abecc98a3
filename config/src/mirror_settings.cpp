// The fleet file's `mirror:` section: the portal instance whose developer accounts, users,
// applications and keys tandem copies to every other instance, and the webhooks that nudge it.
#include <algorithm>

#include "config/normalize.hpp"
#include "fleet_file.hpp"

namespace config {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

void read_webhooks(YamlReader& r, const YamlNode& node, MirrorSettings& out) {
    if (!node.defined() || node.null() || !r.mapping(node, "mirror.webhooks", {"url"})) {
        return;
    }
    const auto url = r.str(node, "url", "mirror.webhooks", true);
    if (!url) {
        return;
    }
    auto normalized = normalize_url(*url);
    if (!normalized || !(url->starts_with("http://") || url->starts_with("https://")) ||
        normalized->find('?') != std::string::npos || normalized->find('@') != std::string::npos) {
        r.error(r.child(node, "url"), "mirror.webhooks.url",
                "must be the http:// or https:// URL at which the source instance reaches tandem "
                "serve's listener, without credentials or a query (e.g. "
                "https://tandem.apps.example.com)");
        return;
    }
    while (normalized->ends_with("/")) {
        normalized->pop_back();
    }
    out.webhooks_url = *normalized;
}

}  // namespace

void read_mirror(
    YamlReader& r, const YamlNode& root, const fs::path& base, bool secrets, Fleet& fleet) {
    const YamlNode node = r.child(root, "mirror");
    if (!node.defined() || node.null() ||
        !r.mapping(node, "mirror", {"source", "interval", "deletes", "webhookToken", "webhooks"})) {
        return;
    }
    MirrorSettings& out = fleet.mirror;
    out.enabled = true;
    out.source_location = r.at_key(root, "mirror");
    if (auto s = r.str(node, "source", "mirror", true)) {
        const bool known = std::any_of(fleet.instances.begin(), fleet.instances.end(),
                                       [&](const Instance& i) { return i.name == *s; });
        if (!known) {
            std::string names;
            for (const auto& i : fleet.instances) {
                names += (names.empty() ? "" : ", ") + i.name;
            }
            r.error(r.child(node, "source"), "mirror.source",
                    "no instance '" + *s +
                        "' in instances: (the portal instance must be one of: " + names + ")");
        } else if (fleet.instances.size() < 2) {
            r.error(r.child(node, "source"), "mirror.source",
                    "a mirror needs at least two instances: one source and one to copy to");
        }
        out.source = *s;
    }
    if (auto x = r.duration(node, "interval", "mirror", std::chrono::seconds(1),
                            std::chrono::hours(24), "s")) {
        out.interval = *x;
    }
    out.deletes = r.boolean(node, "deletes", "mirror", false).value_or(false);
    if (const YamlNode token = r.child(node, "webhookToken"); token.defined()) {
        if (auto t =
                read_secret_source(r, token, "mirror.webhookToken", base,
                                   "the token 3scale's webhooks carry in their URL", secrets)) {
            if (secrets && t->value.reveal().size() < 16) {
                r.error(token, "mirror.webhookToken",
                        t->source + " holds " + std::to_string(t->value.reveal().size()) +
                            " characters: the token is all that authenticates a webhook, use at "
                            "least 16 random ones (e.g. openssl rand -hex 24)");
            }
            out.webhook_token = std::move(t->value);
            out.webhook_token_source = std::move(t->source);
        }
    }
    read_webhooks(r, r.child(node, "webhooks"), out);
    if (!out.webhooks_url.empty() && !r.child(node, "webhookToken").defined()) {
        r.error(r.child(node, "webhooks"), "mirror.webhooks",
                "configuring the source's webhooks needs mirror.webhookToken (the URL carries it)");
    }
}

}  // namespace config
