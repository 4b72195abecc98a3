// tandem: one desired 3scale configuration, applied identically to every instance of a fleet.
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include "config/fleet.hpp"
#include "config/yaml_writer.hpp"
#include "ha/doctor.hpp"
#include "ha/render.hpp"
#include "mirror/mirror.hpp"
#include "ratelimit/period.hpp"
#include "serve/controller.hpp"
#include "sync/curl_http_client.hpp"
#include "sync/documents.hpp"
#include "sync/engine.hpp"

namespace {

std::optional<config::Fleet> load(const std::string& file,
                                  const config::LoadOptions& options = {}) {
    auto fleet = config::load_fleet(file, options);
    if (!fleet) {
        const auto errors = config::print(std::cerr, fleet.error());
        std::cerr << "tandem: " << errors << " error" << (errors == 1 ? "" : "s") << " in " << file
                  << "; nothing was contacted\n";
        return std::nullopt;
    }
    config::print(std::cerr, fleet->notices);
    return std::move(*fleet);
}

int run_doctor(const config::Fleet& fleet, const std::string& output) {
    const auto report = ha::doctor(fleet);
    std::cout << (output == "json"       ? ha::format_json(report, ratelimit::to_iso8601(
                                                                       std::chrono::system_clock::now()))
                  : output == "markdown" ? ha::format_markdown(report)
                                         : ha::format_text(report));
    return report.exit_code();
}

int run_render(const config::Fleet& fleet, const std::string& out_dir) {
    const std::filesystem::path out = out_dir;
    auto rendered = ha::render_to(fleet, out, ha::csprng());
    if (!rendered) {
        config::print(std::cerr, rendered.error().problems);
        std::cerr << "tandem: " << rendered.error().summary << "\n";
        return 1;
    }
    for (const auto& f : rendered->files) {
        std::cout << "wrote " << (out / f.path).string() << (f.secret ? "  (0600)" : "") << "\n";
    }
    std::cout << (rendered->reused_mirrored ? "mirrored secrets reused"
                                            : "mirrored secrets generated")
              << " (" << (out / ha::kMirroredSecretsFile).string()
              << "): every instance gets the same values\n";
    return 0;
}

// tandem mirror --once: one comparison of the portal instance with every other instance.
// Exit 0 converged (or nothing to do), 2 differences (--dry-run), 1 a failed write, 3 the
// source or an instance could not be read whole.
int run_mirror(const config::Fleet& fleet, bool dry_run, const std::string& output) {
    std::mutex out;
    const bool text = output == "text";
    mirror::MirrorOptions options;
    options.write = !dry_run;
    options.deletes = fleet.mirror.deletes;
    const auto result = mirror::run_mirror(
        fleet, options,
        [&](const std::string& instance, const syncer::Operation& op,
            const syncer::ApiError* error) {
            if (!text) {
                return;
            }
            const std::lock_guard lock(out);
            std::cout << "[" << instance << "] " << (error == nullptr ? "ok    " : "FAIL  ")
                      << op.summary()
                      << (error == nullptr ? std::string() : ": " + error->to_string())
                      << std::endl;
        });
    std::cout << (text ? mirror::mirror_text(result, !dry_run)
                       : mirror::mirror_json(result, !dry_run));
    const bool unread =
        !result.complete || std::any_of(result.targets.begin(), result.targets.end(),
                                        [](const auto& t) { return !t.report.error.empty(); });
    if (unread) {
        return 3;
    }
    if (result.failed() > 0) {
        return 1;
    }
    if (dry_run) {
        const bool differs =
            std::any_of(result.targets.begin(), result.targets.end(),
                        [](const auto& t) { return !t.report.operations.empty(); });
        return differs ? 2 : 0;
    }
    return 0;
}

// tandem serve: the controller until SIGTERM/SIGINT (exit 0 once the writes in flight are
// done); SIGHUP re-reads the files. --once: one pass over every instance, then its exit code.
int run_serve(config::Fleet fleet, const std::string& file, config::LoadOptions load, bool once) {
    sigset_t signals;
    sigemptyset(&signals);
    for (const int s : {SIGTERM, SIGINT, SIGHUP}) {
        sigaddset(&signals, s);
    }
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // (before any thread: sigwait takes them)
    std::mutex log_mutex;
    serve::ControllerOptions options;
    options.fleet_file = file;
    options.load = std::move(load);
    options.log = [&log_mutex](const std::string& line) {
        const std::lock_guard lock(log_mutex);
        std::cerr << ratelimit::to_iso8601(std::chrono::system_clock::now()) << " " << line
                  << std::endl;
    };
    const std::string mode = fleet.serve.enforce ? "enforce" : "report";
    const auto instances = fleet.instances.size();
    serve::Controller controller(std::move(fleet), std::move(options));
    if (once) {
        return controller.once();
    }
    auto bound = controller.start();
    if (!bound) {
        std::cerr << "tandem serve: " << bound.error() << "\n";
        return 1;
    }
    std::cout << "tandem serve ready listen=" << *bound << " instances=" << instances
              << " mode=" << mode << std::endl;
    for (;;) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            controller.reload("SIGHUP");
            continue;
        }
        std::cerr << ratelimit::to_iso8601(std::chrono::system_clock::now()) << " "
                  << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
                  << ": stopping; the writes in flight finish, no new one starts" << std::endl;
        controller.stop();
        std::cerr << ratelimit::to_iso8601(std::chrono::system_clock::now()) << " stopped"
                  << std::endl;
        return 0;
    }
}

}  // namespace

int main(int argc, char** argv) {
    syncer::CurlHttpClient::global_init();
    CLI::App app{"tandem: keep N independent 3scale instances identical"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "tandem 0.1.0");
    std::string file = "fleet.yaml";
    std::string output = "text";
    syncer::RunOptions options;

    auto* validate = app.add_subcommand("validate", "Validate the fleet file and its resources");
    auto* plan = app.add_subcommand("plan", "Show what apply would change on each instance");
    auto* apply = app.add_subcommand("apply", "Apply the desired state to every instance");
    auto* drift =
        app.add_subcommand("drift", "Report where instances differ from the desired state");
    auto* split = app.add_subcommand("split", "Show how every global limit is split per instance");
    auto* doctor = app.add_subcommand(
        "doctor",
        "Check every instance's HA deployment (APIManager CR and Secrets) and what the instances "
        "must share or must not share");
    auto* serve = app.add_subcommand(
        "serve",
        "Keep the live fleet converged (serve: section): a pass per instance every interval, "
        "re-split the limits when a cluster goes away; /healthz /readyz /status /metrics");
    bool once = false;
    serve->add_flag("--once", once, "One pass over every instance, then exit (0/1, report: 0/2)");
    auto* mirror_cmd = app.add_subcommand(
        "mirror",
        "Copy what developers created on the portal instance (mirror.source) to every other "
        "instance: one comparison (tandem serve mirrors continuously)");
    bool mirror_once = false;
    bool dry_run = false;
    mirror_cmd->add_flag("--once", mirror_once, "One comparison, then exit (required)")->required();
    mirror_cmd->add_flag("--dry-run", dry_run,
                         "Compare only: show what differs, write nothing (exit 2 if anything)");
    mirror_cmd->add_option("-o,--output", output, "text or json")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    auto* render = app.add_subcommand(
        "render",
        "Write per instance an HA APIManager CR, the mirrored and database Secrets, and for "
        "active-passive the standby patch and the failover checklist");
    std::string out_dir;
    render->add_option("--out", out_dir, "Output directory")->required();
    doctor->add_option("-o,--output", output, "text, json or markdown")
        ->check(CLI::IsMember({"text", "json", "markdown"}))
        ->capture_default_str();
    for (auto* cmd : {validate, plan, apply, drift, split, doctor, render, serve, mirror_cmd}) {
        cmd->add_option("-f,--file", file, "Fleet file")->capture_default_str();
    }
    for (auto* cmd : {plan, apply, drift}) {
        cmd->add_option("--instance", options.instances, "Only this instance (repeatable)");
    }
    for (auto* cmd : {plan, apply, drift, split}) {
        cmd->add_option("--without", options.without,
                        "Leave this instance out and re-split the limits over the others "
                        "(repeatable)");
    }
    std::vector<std::string> resources;
    for (auto* cmd : {validate, plan, apply, drift, split, serve, mirror_cmd}) {
        cmd->add_option("--resources", resources,
                        "Read the CRs from here instead of the fleet's resources: (repeatable; "
                        "'-' reads a multi-document stream from standard input)");
    }
    for (auto* cmd : {plan, apply}) {
        cmd->add_flag("--prune", options.prune,
                      "Also delete the products, backends, accounts, users, applications and "
                      "keys that no CR describes");
    }
    drift->add_flag("--prune", options.prune,
                    "Count what no CR describes as drift too (what apply --prune would delete)");
    plan->add_option("-o,--output", output, "text, json or markdown")
        ->check(CLI::IsMember({"text", "json", "markdown"}))
        ->capture_default_str();
    split->add_option("-o,--output", output, "text or json")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    drift->add_option("-o,--output", output, "text, json or markdown")
        ->check(CLI::IsMember({"text", "json", "markdown"}))
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 1;
    }

    if (doctor->parsed() || render->parsed()) {
        // Neither contacts an instance: no admin tokens, no Product/Backend resources needed.
        auto fleet = load(file, {.require_tokens = false, .require_resources = false});
        if (!fleet) {
            return 1;
        }
        return doctor->parsed() ? run_doctor(*fleet, output) : run_render(*fleet, out_dir);
    }
    const config::LoadOptions load_options{.resources = resources, .serve = serve->parsed()};
    if (serve->parsed() && std::find(resources.begin(), resources.end(), "-") != resources.end()) {
        std::cerr << "tandem serve: --resources - cannot be re-read when the files change; "
                     "give files or directories\n";
        return 1;
    }
    auto fleet = load(file, load_options);
    if (!fleet) {
        return 1;
    }
    if (const auto unknown = syncer::unknown_instances(*fleet, options); !unknown.empty()) {
        std::cerr << "tandem: no instance named '" << unknown.front() << "' in " << file << "\n";
        return 1;
    }
    if (options.without.size() >= fleet->instances.size()) {
        std::cerr << "tandem: --without leaves no instance\n";
        return 1;
    }
    if (mirror_cmd->parsed()) {
        if (!fleet->mirror.enabled) {
            std::cerr << "tandem mirror: " << file
                      << " has no mirror: section (mirror: {source: INSTANCE}); nothing was "
                         "contacted\n";
            return 1;
        }
        return run_mirror(*fleet, dry_run, output);
    }
    if (plan->parsed() || apply->parsed() || drift->parsed() || serve->parsed()) {
        // ActiveDocs from URLs: fetched before any instance is contacted
        syncer::CurlHttpClient http(syncer::TlsOptions{});
        const auto errors = syncer::fetch_documents(fleet->desired, http, std::chrono::seconds(30));
        for (const auto& e : errors) {
            std::cerr << "tandem: " << e << "\n";
        }
        if (!errors.empty()) {
            std::cerr << "tandem: " << errors.size() << " document"
                      << (errors.size() == 1 ? "" : "s")
                      << " could not be fetched; no instance was contacted\n";
            return 1;
        }
    }
    const auto fleet_split = syncer::split_fleet(*fleet, options.without);
    if (split->parsed()) {
        std::cout << (output == "json" ? syncer::split_json(fleet_split)
                                       : syncer::split_text(fleet_split));
        return config::has_errors(fleet_split.problems) ? 1 : 0;
    }
    config::print(std::cerr, fleet_split.problems);
    if (config::has_errors(fleet_split.problems)) {
        std::cerr << "tandem: the limits cannot be split as written; nothing was contacted\n";
        return 1;
    }
    if (serve->parsed()) {
        return run_serve(std::move(*fleet), file, load_options, once);
    }
    if (validate->parsed()) {
        std::cout << file << ": valid (" << fleet->instances.size() << " instances, "
                  << fleet->desired.products.size() << " products, "
                  << fleet->desired.backends.size() << " backends, "
                  << fleet->desired.accounts.size() << " developer accounts, "
                  << fleet->desired.applications.size() << " applications)\n";
        return 0;
    }
    if (plan->parsed() || drift->parsed()) {
        const auto mode = plan->parsed() ? syncer::Mode::kPlan : syncer::Mode::kDrift;
        const auto reports = syncer::plan(*fleet, fleet_split, options, mode);
        if (mode == syncer::Mode::kPlan) {
            std::cout << (output == "json"       ? syncer::plan_json(reports, file)
                          : output == "markdown" ? syncer::plan_markdown(reports)
                                                 : syncer::plan_text(reports));
        } else {
            std::cout << (output == "json"       ? syncer::drift_json(reports, file)
                          : output == "markdown" ? syncer::drift_markdown(reports)
                                                 : syncer::drift_text(reports));
        }
        return syncer::plan_exit_code(reports, mode, options.prune);
    }
    // apply
    std::mutex out;
    const bool tty = ::isatty(STDOUT_FILENO) != 0;
    const auto reports = syncer::apply(
        *fleet, fleet_split, options,
        [&](const std::string& instance, const syncer::Operation& op,
            const syncer::ApiError* error) {
            const std::lock_guard lock(out);
            const std::string status = error == nullptr ? (tty ? "\033[32mok\033[0m  " : "ok    ")
                                                        : (tty ? "\033[31mFAIL\033[0m" : "FAIL  ");
            std::cout << "[" << instance << "] " << status << " " << op.summary();
            if (error != nullptr) {
                std::cout << ": " << error->to_string();
            }
            std::cout << std::endl;
        });
    std::cout << syncer::apply_summary(reports);
    return syncer::apply_exit_code(reports);
}
