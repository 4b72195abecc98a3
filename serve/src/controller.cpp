// tandem serve's passes: per instance, on its own thread, read + diff + apply (or report) every
// interval, backing off after failures; reloads of the desired state; start and stop.
#include "serve/controller.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include <sys/stat.h>

#include "controller_state.hpp"
#include "sync/curl_http_client.hpp"
#include "sync/documents.hpp"
#include "sync/splitter.hpp"
#include "timing.hpp"

namespace serve {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

std::vector<std::string> names_of(const config::Fleet& fleet) {
    std::vector<std::string> out;
    for (const auto& i : fleet.instances) {
        out.push_back(i.name);
    }
    return out;
}

// What the files look like now: each one's size and modification time, and its directory's (a
// file added beside them, a ConfigMap's symlink swap).
std::string fingerprint(const std::vector<fs::path>& inputs) {
    std::ostringstream out;
    std::set<fs::path> dirs;
    const auto stamp = [&](const fs::path& p) {
        struct stat st {};
        if (::stat(p.c_str(), &st) != 0) {
            out << p.string() << ":-;";
            return;
        }
        out << p.string() << ":" << st.st_size << ":" << st.st_mtim.tv_sec << "."
            << st.st_mtim.tv_nsec << ";";
    };
    for (const auto& p : inputs) {
        stamp(p);
        dirs.insert(p.has_parent_path() ? p.parent_path() : fs::path("."));
    }
    for (const auto& d : dirs) {
        stamp(d);
    }
    return out.str();
}

std::map<std::string, int> count_kinds(const syncer::InstanceReport& report) {
    std::map<std::string, int> out;
    for (const auto& e : syncer::drift_entries({report})) {
        ++out[e.kind];
    }
    return out;
}

}  // namespace

Controller::State::State(config::Fleet f, ControllerOptions o)
    : options(std::move(o)),
      fleet(std::make_shared<const config::Fleet>(std::move(f))),
      names(names_of(*fleet)),
      membership(names, {fleet->serve.resplit_after, fleet->serve.restore_after}),
      balancer_refs(fleet->serve.balancers),
      metrics(names),
      credentials(names) {
    for (const auto& i : fleet->instances) {
        InstanceRuntime r;
        r.name = i.name;
        r.admin_url = i.admin_url;
        r.next_due = SteadyClock::now();
        instances.push_back(std::move(r));
    }
    for (const auto& b : balancer_refs) {
        balancers.push_back({b.url, {}, "not polled yet", std::nullopt});
    }
}

void Controller::State::log(const std::string& line) const {
    if (options.log) {
        options.log(line);
    }
}

PassRecord Controller::State::pass(std::size_t i) {
    std::shared_ptr<const config::Fleet> f;
    std::vector<std::string> out;
    PassRecord rec;
    {
        const std::lock_guard lock(mutex);
        f = fleet;
        out = without;
        rec.split_generation = split_generation;
    }
    const std::string& name = names[i];
    // An instance that is out keeps its own share (what it enforces when it comes back).
    std::erase(out, name);
    rec.started = SystemClock::now();
    const auto t0 = SteadyClock::now();
    const auto split = syncer::split_fleet(*f, out);
    const auto k = std::find(split.instances.begin(), split.instances.end(), name);
    syncer::InstanceReport report;
    report.name = name;
    if (config::has_errors(split.problems) || k == split.instances.end()) {
        report.error = "the limits cannot be split over the instances in: " +
                       config::errors_in_one_line(split.problems);
    } else {
        const syncer::PassOptions po{
            .write = f->serve.enforce, .prune = f->serve.prune, .stop = &stopping};
        report = syncer::reconcile_instance(
            *f, f->instances[i],
            split.desired[static_cast<std::size_t>(k - split.instances.begin())], po,
            [&](const syncer::InstanceState& mine) {
                return credentials.decide(f->desired, name, mine, syncer::system_random_hex());
            },
            [&](const syncer::InstanceState& s) {
                if (syncer::needs_decisions(f->desired)) {  // (else no copy of the state)
                    credentials.seen(name, s);
                }
            },
            [&](const std::string& instance, const syncer::Operation& op,
                const syncer::ApiError* error) {
                log("[" + instance + "] " + (error == nullptr ? "ok   " : "FAIL ") + op.summary() +
                    (error == nullptr ? "" : ": " + error->to_string()));
            },
            options.factory);
    }
    rec.finished = SystemClock::now();
    rec.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    rec.notes = report.notes;
    // Down: it could not be read, or it stopped answering during the pass.
    rec.up = report.error.empty() &&
             (!report.applied ||
              (report.applied->read_error.empty() &&
               std::none_of(report.applied->failed.begin(), report.applied->failed.end(),
                            [](const auto& failure) {
                                return failure.second.kind == syncer::ApiError::Kind::kUnreachable;
                            })));
    rec.found = report.operations.size();
    if (!report.error.empty()) {
        rec.error = report.error;
        rec.result = report.reachable ? "failed" : "unreachable";
    } else if (!f->serve.enforce) {
        rec.drift = count_kinds(report);
        rec.remaining = rec.found;
        const int code = syncer::plan_exit_code({report}, syncer::Mode::kDrift, f->serve.prune);
        rec.result = code == 0 ? "converged" : "drift";
    } else if (!report.applied) {
        rec.result = "converged";
        rec.converged = report.notes.empty();
    } else {
        const auto& a = *report.applied;
        rec.applied = a.done.size();
        rec.failed = a.failed.size();
        syncer::InstanceReport left;
        left.name = name;
        left.operations = a.remaining;
        for (const auto& [op, error] : a.failed) {
            left.operations.push_back(op);
        }
        rec.drift = count_kinds(left);
        rec.remaining = left.operations.size();
        rec.converged = a.converged() && report.notes.empty();
        rec.result = a.converged() ? "applied" : "failed";
        if (!a.read_error.empty()) {
            rec.error = "the re-read after the writes failed: " + a.read_error;
        } else if (!a.failed.empty()) {
            rec.error = a.failed.front().second.to_string();
        }
    }
    metrics.pass(report, rec.result, rec.seconds, rec.drift, unix_seconds(rec.finished), rec.up);
    return rec;
}

void Controller::State::record(std::size_t i, const PassRecord& rec) {
    auto& r = instances[i];
    const auto& serve = fleet->serve;
    ++r.passes;
    const bool ok = rec.result == "converged" || rec.result == "applied" || rec.result == "drift";
    milliseconds next;
    if (ok) {
        r.failures = 0;
        r.last_success = rec.finished;
        next = jittered(serve.interval);
    } else {
        ++r.failures;
        const milliseconds base = std::min<milliseconds>(serve.interval, std::chrono::seconds(5));
        const int shift = std::min(r.failures - 1, 20);
        next = std::min<milliseconds>(serve.max_backoff, base * (std::int64_t{1} << shift));
    }
    r.next_due = SteadyClock::now() + next;
    if (rec.converged) {
        r.converged_generation = std::max(r.converged_generation, rec.split_generation);
    }
    std::ostringstream line;
    line << "[" << r.name << "] pass " << r.passes << ": " << rec.result;
    if (rec.found > 0) {
        line << " (" << rec.found << " difference" << (rec.found == 1 ? "" : "s");
        if (rec.applied + rec.failed > 0) {
            line << ", " << rec.applied << " written, " << rec.failed << " failed";
        }
        line << ")";
    }
    line << " in " << static_cast<int>(rec.seconds * 1000) << "ms";
    if (!rec.error.empty()) {
        line << ": " << rec.error;
    }
    line << "; next in " << std::chrono::duration<double>(next).count() << "s";
    log(line.str());
    r.last = rec;
}

void Controller::State::worker(std::size_t i) {
    std::unique_lock lock(mutex);
    for (;;) {
        wake.wait_until(lock, instances[i].next_due, [&] {
            return stopping.load() || instances[i].nudged ||
                   SteadyClock::now() >= instances[i].next_due;
        });
        if (stopping) {
            return;
        }
        instances[i].nudged = false;
        instances[i].running = true;
        lock.unlock();
        const auto rec = pass(i);
        lock.lock();
        instances[i].running = false;
        record(i, rec);
    }
}

void Controller::State::nudge_all() {
    {
        const std::lock_guard lock(mutex);
        for (auto& r : instances) {
            r.nudged = true;
        }
        mirror.nudged = true;
    }
    wake.notify_all();
}

void Controller::State::load(const std::string& why) {
    const std::lock_guard one_at_a_time(loading);
    log("reloading the desired state (" + why + ")");
    const auto fail = [&](const std::string& error) {
        log("reload failed; still serving the desired state loaded at generation " +
            std::to_string(fleet_generation) + ": " + error);
        metrics.reload(false);
        const std::lock_guard lock(mutex);
        last_reload = ReloadRecord{SystemClock::now(), false, why, error};
    };
    auto loaded = config::load_fleet(options.fleet_file, options.load);
    if (!loaded) {
        std::ostringstream diags;
        config::print(diags, loaded.error());
        log(diags.str().substr(0, diags.str().empty() ? 0 : diags.str().size() - 1));
        const auto one = config::errors_in_one_line(loaded.error());
        fail(one.empty() ? "the files do not load" : one);
        return;
    }
    if (names_of(*loaded) != names) {
        fail("the instances changed: restart tandem serve to take a new list of instances");
        return;
    }
    if (const auto split = syncer::split_fleet(*loaded); config::has_errors(split.problems)) {
        fail("the limits cannot be split as written: " +
             config::errors_in_one_line(split.problems));
        return;
    }
    syncer::CurlHttpClient http(syncer::TlsOptions{});
    if (const auto errors =
            syncer::fetch_documents(loaded->desired, http, std::chrono::seconds(30));
        !errors.empty()) {
        fail(errors.front());
        return;
    }
    {
        const std::lock_guard lock(mutex);
        fleet = std::make_shared<const config::Fleet>(std::move(*loaded));
        ++fleet_generation;
        loaded_at = SystemClock::now();
        last_reload = ReloadRecord{loaded_at, true, why, ""};
    }
    metrics.reload(true);
    log("desired state generation " + std::to_string(fleet_generation) +
        " loaded; every instance is passed over now");
    nudge_all();
}

void Controller::State::watcher() {
    std::vector<fs::path> inputs;
    milliseconds every{};
    {
        const std::lock_guard lock(mutex);
        inputs = fleet->inputs;
        every = options.watch_interval.count() > 0 ? options.watch_interval
                                                   : fleet->serve.watch_interval;
    }
    std::string seen = fingerprint(inputs);
    std::unique_lock lock(mutex);
    while (!stopping) {
        wake.wait_for(lock, every, [&] { return stopping.load(); });
        if (stopping) {
            return;
        }
        lock.unlock();
        const auto now = fingerprint(inputs);
        if (now != seen) {
            seen = now;
            load("the files changed");
            const std::lock_guard l(mutex);
            inputs = fleet->inputs;  // (the last good state's)
            seen = fingerprint(inputs);
        }
        lock.lock();
    }
}

Controller::Controller(config::Fleet fleet, ControllerOptions options)
    : state_(std::make_unique<State>(std::move(fleet), std::move(options))) {}

Controller::~Controller() {
    stop();
}

std::expected<std::string, std::string> Controller::start() {
    auto& s = *state_;
    auto server = StatusServer::start(
        s.fleet->serve.listen,
        [&s](const std::string& method, const std::string& path, std::string body) {
            return s.handle(method, path, std::move(body));
        });
    if (!server) {
        return std::unexpected(server.error());
    }
    s.server = std::move(*server);
    for (std::size_t i = 0; i < s.instances.size(); ++i) {
        s.threads.emplace_back([&s, i] { s.worker(i); });
    }
    if (!s.balancer_refs.empty() && s.fleet->serve.resplit) {
        s.threads.emplace_back([&s] { s.poller(); });
    }
    s.threads.emplace_back([&s] { s.watcher(); });
    s.threads.emplace_back([&s] { s.mirror_worker(); });  // (idle without a mirror: section)
    return s.server->bound();
}

int Controller::once() {
    auto& s = *state_;
    if (!s.balancer_refs.empty() && s.fleet->serve.resplit) {
        s.poll();
    }
    std::vector<PassRecord> records(s.instances.size());
    {
        std::vector<std::jthread> passes;
        for (std::size_t i = 0; i < s.instances.size(); ++i) {
            passes.emplace_back([&s, &records, i] { records[i] = s.pass(i); });
        }
    }
    bool drift = false;
    bool unreachable = false;
    bool failed = false;
    for (std::size_t i = 0; i < records.size(); ++i) {
        s.record(i, records[i]);
        const auto& r = records[i].result;
        drift = drift || r == "drift";
        unreachable = unreachable || r == "unreachable";
        failed = failed || r == "failed" || (s.fleet->serve.enforce && !records[i].converged);
    }
    if (s.fleet->mirror.enabled) {
        // then one comparison of the portal instance with the others
        s.configure_webhooks();
        const auto m = s.mirror_pass();
        s.record_mirror(m, m.written > 0);
        drift = drift || m.result == "compared";
        unreachable = unreachable || m.result == "paused" || !m.unread.empty();
        failed = failed || m.result == "failed";
    }
    if (s.fleet->serve.enforce) {
        return failed || unreachable ? 1 : 0;
    }
    return failed ? 1 : unreachable ? 3 : drift ? 2 : 0;
}

void Controller::reload(const std::string& why) {
    state_->load(why);
}

void Controller::stop() {
    auto& s = *state_;
    s.stopping = true;
    s.wake.notify_all();
    for (auto& t : s.threads) {
        if (t.joinable()) {
            t.join();
        }
    }
    s.threads.clear();
    if (s.server) {
        s.server->stop();
    }
}

}  // namespace serve
