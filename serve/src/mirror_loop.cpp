// tandem serve's mirror: one comparison of the portal instance with the others every
// mirror.interval (±10%), at once when a webhook nudges it; paused (nothing compared, nothing
// deleted) while the source cannot be read whole; the source's webhooks set when asked.
#include <algorithm>

#include "config/secret.hpp"
#include "controller_state.hpp"
#include "mirror/mirror.hpp"
#include "timing.hpp"

namespace serve {

using std::chrono::milliseconds;

namespace {

// The events that change what the mirror copies (the spec's names).
constexpr const char* kWebhookEvents[] = {"account_created_on",
                                          "account_updated_on",
                                          "account_deleted_on",
                                          "user_created_on",
                                          "user_updated_on",
                                          "user_deleted_on",
                                          "application_created_on",
                                          "application_updated_on",
                                          "application_deleted_on",
                                          "account_plan_changed_on",
                                          "application_plan_changed_on",
                                          "application_user_key_updated_on",
                                          "application_key_created_on",
                                          "application_key_deleted_on",
                                          "application_suspended_on",
                                          "application_key_updated_on"};

}  // namespace

void Controller::State::configure_webhooks() {
    std::shared_ptr<const config::Fleet> f;
    {
        const std::lock_guard lock(mutex);
        f = fleet;
    }
    const auto& m = f->mirror;
    if (m.webhooks_url.empty() || m.webhook_token.empty() || !f->serve.enforce) {
        return;
    }
    const std::string url = m.webhooks_url + "/webhooks/3scale/" + m.webhook_token.reveal();
    const std::string wanted = m.source + " " + url;  // (a new source needs them too)
    {
        const std::lock_guard lock(mutex);
        if (mirror.configured_for == wanted && mirror.webhooks_configured == "yes") {
            return;
        }
    }
    const auto source = std::find_if(f->instances.begin(), f->instances.end(),
                                     [&](const auto& i) { return i.name == m.source; });
    auto http = options.factory(*source);
    syncer::AdminClient client = syncer::make_client(*http, *source);
    client.stop_writes_when(&stopping);
    syncer::Form form = {{"url", url}, {"active", "true"}, {"provider_actions", "true"}};
    for (const char* event : kWebhookEvents) {
        form.emplace_back(event, "true");
    }
    const auto r = client.update("/admin/api/webhooks.json", form);
    const std::lock_guard lock(mutex);
    if (r) {
        mirror.webhooks_configured = "yes";
        mirror.configured_for = wanted;
        log("mirror: the webhooks of " + m.source + " now point at " + m.webhooks_url +
            "/webhooks/3scale/<token>");
    } else {
        mirror.webhooks_configured = r.error().to_string();
        log("mirror: could not set the webhooks of " + m.source +
            " (retried with the next "
            "comparison): " +
            r.error().to_string());
    }
}

MirrorRecord Controller::State::mirror_pass() {
    std::shared_ptr<const config::Fleet> f;
    {
        const std::lock_guard lock(mutex);
        f = fleet;
    }
    MirrorRecord rec;
    rec.started = SystemClock::now();
    const auto t0 = SteadyClock::now();
    mirror::MirrorOptions mo;
    mo.write = f->serve.enforce;
    mo.deletes = f->mirror.deletes;
    mo.stop = &stopping;
    const auto result = mirror::run_mirror(
        *f, mo,
        [&](const std::string& instance, const syncer::Operation& op,
            const syncer::ApiError* error) {
            metrics.mirrored(instance, op, error == nullptr);
            log("[mirror " + instance + "] " + (error == nullptr ? "ok   " : "FAIL ") +
                op.summary() + (error == nullptr ? "" : ": " + error->to_string()));
        },
        options.factory);
    rec.finished = SystemClock::now();
    rec.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    rec.accounts = result.accounts;
    rec.users = result.users;
    rec.applications = result.applications;
    for (const auto& s : result.skipped) {
        if (rec.skipped.size() < 20) {
            rec.skipped.push_back(s.what + ": " + s.why);
        }
    }
    if (!result.complete) {
        rec.result = "paused";
        rec.error = "the source " + result.source +
                    " could not be read whole; nothing compared or deleted: " + result.source_error;
        return rec;
    }
    for (const auto& t : result.targets) {
        const auto& report = t.report;
        if (!report.error.empty()) {
            rec.unread[report.name] = report.error;
            continue;
        }
        rec.differences += report.operations.size();
        rec.strays[report.name] = t.strays.size();
        if (report.applied) {
            rec.written += report.applied->done.size();
            rec.failed += report.applied->failed.size();
            if (!report.applied->failed.empty() && rec.error.empty()) {
                rec.error = report.name + ": " + report.applied->failed.front().first.summary() +
                            ": " + report.applied->failed.front().second.to_string();
            }
        }
        for (const auto& s : t.skipped) {
            if (rec.skipped.size() < 20) {
                rec.skipped.push_back(report.name + ": " + s.what + ": " + s.why);
            }
        }
    }
    if (rec.failed > 0) {
        rec.result = "failed";
    } else if (!f->serve.enforce) {
        rec.result = rec.differences == 0 ? "converged" : "compared";
    } else {
        rec.result = rec.written > 0 ? "applied" : "converged";
    }
    if (!rec.unread.empty() && rec.error.empty()) {
        rec.error = rec.unread.begin()->first + " could not be read: " + rec.unread.begin()->second;
    }
    return rec;
}

void Controller::State::record_mirror(const MirrorRecord& rec, bool wrote) {
    const auto now = SteadyClock::now();
    std::optional<double> lag;
    milliseconds next{};
    {
        const std::lock_guard lock(mutex);
        auto& m = mirror;
        ++m.comparisons;
        // The lag runs from the earliest sign of the change (the nudge, else the comparison that
        // found it) until a comparison leaves every instance converged.
        const auto seen =
            m.nudged_at.value_or(now - std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(rec.seconds)));
        m.nudged_at.reset();
        if (wrote && !m.change_seen) {
            m.change_seen = seen;
        }
        const bool everywhere =
            (rec.result == "applied" || rec.result == "converged") && rec.unread.empty();
        if (everywhere && m.change_seen) {
            lag = std::chrono::duration<double>(now - *m.change_seen).count();
            m.change_seen.reset();
        }
        const bool ok =
            rec.result == "applied" || rec.result == "converged" || rec.result == "compared";
        if (ok && rec.unread.empty()) {
            m.failures = 0;
            m.last_success = rec.finished;
            next = jittered(fleet->mirror.interval);
        } else {
            ++m.failures;
            const milliseconds base =
                std::min<milliseconds>(fleet->mirror.interval, std::chrono::seconds(5));
            const int shift = std::min(m.failures - 1, 20);
            next =
                std::min<milliseconds>(fleet->serve.max_backoff, base * (std::int64_t{1} << shift));
        }
        m.next_due = now + next;
        m.last = rec;
    }
    if (lag) {
        metrics.mirror_lag(*lag);
    }
    ServeMetrics::MirrorFigures figures;
    figures.result = rec.result;
    figures.seconds = rec.seconds;
    figures.paused = rec.result == "paused";
    figures.success_unix =
        (rec.result == "applied" || rec.result == "converged") && rec.unread.empty()
            ? unix_seconds(rec.finished)
            : 0;
    figures.accounts = rec.accounts;
    figures.users = rec.users;
    figures.applications = rec.applications;
    figures.strays = rec.strays;
    metrics.mirror_comparison(figures);
    const auto count = [](std::size_t n, const char* what) {
        return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
    };
    std::string line = "mirror: " + rec.result;
    if (rec.result != "paused") {
        line += " (the source has " + count(rec.accounts, "account") + ", " +
                count(rec.applications, "application") + " no CR describes)";
    }
    if (rec.differences > 0) {
        line += ": " + count(rec.differences, "difference") + ", " + std::to_string(rec.written) +
                " written, " + std::to_string(rec.failed) + " failed";
    }
    line += " in " + std::to_string(static_cast<int>(rec.seconds * 1000)) + "ms";
    if (!rec.error.empty()) {
        line += ": " + rec.error;
    }
    if (lag) {
        line += "; lag " + std::to_string(static_cast<int>(*lag * 1000)) + "ms";
    }
    log(line + "; next in " + std::to_string(std::chrono::duration<double>(next).count()) + "s");
}

void Controller::State::mirror_worker() {
    std::unique_lock lock(mutex);
    mirror.next_due = SteadyClock::now();
    for (;;) {
        if (!fleet->mirror.enabled) {
            // no mirror: section (yet): a reload that adds one nudges this thread
            wake.wait(lock, [&] { return stopping.load() || mirror.nudged; });
            mirror.next_due = SteadyClock::now();
        } else {
            wake.wait_until(lock, mirror.next_due, [&] {
                return stopping.load() || mirror.nudged || SteadyClock::now() >= mirror.next_due;
            });
        }
        if (stopping) {
            return;
        }
        mirror.nudged = false;
        if (!fleet->mirror.enabled) {
            continue;
        }
        lock.unlock();
        configure_webhooks();
        const auto rec = mirror_pass();
        record_mirror(rec, rec.written > 0);
        lock.lock();
    }
}

// POST /webhooks/3scale/<token>: the token compared in constant time; the body is never read
// for what it says (anyone could have sent it): a nudge only makes the next comparison now.
Reply Controller::State::webhook(const std::string& token) {
    bool accepted = false;
    {
        const std::lock_guard lock(mutex);
        const auto& m = fleet->mirror;
        accepted =
            m.enabled && !m.webhook_token.empty() && config::secret_equals(token, m.webhook_token);
        if (accepted) {
            ++mirror.webhooks;
            mirror.last_webhook = SystemClock::now();
            mirror.nudged = true;
            if (!mirror.nudged_at) {
                mirror.nudged_at = SteadyClock::now();
            }
        } else {
            ++mirror.webhooks_refused;
        }
    }
    metrics.webhook(accepted);
    if (!accepted) {
        return {404, "text/plain; charset=utf-8", "not found\n"};
    }
    wake.notify_all();
    return {200, "text/plain; charset=utf-8", "nudged\n"};
}

}  // namespace serve
