#!/usr/bin/env python3
"""The house rules a compiler does not check (CONVENTIONS.md), checked on every test run.

    python3 scripts/check-layout.py [--repo DIR]

- No C++ file of a module (config, ratelimit, sync, mirror, serve, ha, lb) is over 700 lines: each concept in
  the file named after it.
- Project headers include each other without a cycle (within a module's src/ and include/).
- Modules depend one way: ratelimit includes no other module, config only ratelimit; sync, ha
  and lb only those two; mirror (the portal instance's copy) sync and config; serve (tandem
  serve's controller) those and mirror (a program's main.cpp wires several).
- Third-party headers stay inside the file that wraps them: yaml-cpp in config's YAML reader and
  writer, libcurl in the curl client, c-ares in the resolver, prometheus-cpp in the metrics,
  libnghttp2 in the HTTP/2 session.

Exit 1 with one line per problem (file:line and what to do), 0 when the house is in order.
"""
import argparse
import os
import re
import sys

MODULES = ["config", "ratelimit", "sync", "mirror", "serve", "ha", "lb"]
MAX_LINES = 700
# module -> the modules it may include
ALLOWED = {
    "ratelimit": set(),
    "config": {"ratelimit"},
    "sync": {"config", "ratelimit"},
    "mirror": {"sync", "config", "ratelimit"},
    "serve": {"sync", "mirror", "config", "ratelimit"},
    "ha": {"config", "ratelimit"},
    "lb": {"config", "ratelimit"},
}
# third-party include prefix -> the files allowed to include it
CONTAINED = {
    "yaml-cpp/": {"config/src/yaml_reader.cpp", "config/src/yaml_writer.cpp"},
    "curl/": {"sync/src/curl_http_client.cpp"},
    "ares": {"lb/src/resolver.cpp"},
    "prometheus/": {"lb/src/metrics.cpp", "serve/src/serve_metrics.cpp"},
    "nghttp2/": {"lb/src/h2_session.cpp"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def sources(repo):
    for module in MODULES:
        for root, _, files in os.walk(os.path.join(repo, module)):
            for f in sorted(files):
                if f.endswith((".cpp", ".hpp", ".h", ".ipp")):
                    yield os.path.relpath(os.path.join(root, f), repo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(__file__), ".."))
    repo = os.path.abspath(ap.parse_args().repo)
    problems = []
    files = list(sources(repo))
    edges = {}  # header path -> [(included header path, line)]
    for path in files:
        module = path.split("/")[0]
        with open(os.path.join(repo, path), encoding="utf-8") as f:
            lines = f.read().split("\n")
        if len(lines) - 1 > MAX_LINES:
            problems.append(f"{path}:1: {len(lines) - 1} lines, more than {MAX_LINES}: split it "
                            "along its concepts, each in a file named after it")
        for n, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, name = m.groups()
            for prefix, allowed in CONTAINED.items():
                if kind == "<" and name.startswith(prefix) and path not in allowed:
                    problems.append(f"{path}:{n}: includes <{name}>: only "
                                    f"{', '.join(sorted(allowed))} may (wrap what you need there)")
            if kind != '"':
                continue
            other = name.split("/")[0] if "/" in name else None
            main = os.path.basename(path) == "main.cpp"  # a program wires modules together
            if other in MODULES and other != module and other not in ALLOWED[module] and not main:
                problems.append(f"{path}:{n}: {module} includes {name}: {module} may use "
                                f"{', '.join(sorted(ALLOWED[module])) or 'no other module'}")
            # resolve to a repository path: "mod/x.hpp" is public, "x.hpp" is beside the file or
            # in the module's src/
            if other in MODULES:
                target = os.path.join(other, "include", name)
            else:
                here = os.path.join(os.path.dirname(path), name)
                target = here if os.path.exists(os.path.join(repo, here)) else \
                    os.path.join(module, "src", name)
            if os.path.exists(os.path.join(repo, target)):
                edges.setdefault(path, []).append((os.path.normpath(target), n))
    # include cycles (depth-first search)
    state = {}
    stack = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt, line in edges.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append(f"{node}:{line}: include cycle: {' -> '.join(cycle)}: the units "
                                "must talk one way (callbacks or return values upward)")
            elif state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if state.get(node) is None:
            visit(node)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layout: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-layout: {len(files)} files of {', '.join(MODULES)} in order "
          f"(<= {MAX_LINES} lines, no include cycle, dependencies one way, third-party headers "
          "contained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
