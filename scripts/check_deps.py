"""Checks that scripts/debian-packages.txt names, itself or through the Depends of a package it
names, every Debian package whose files the build, the tests, the demo and the examples use, so
that scripts/install-deps.sh is enough on a fresh machine.

What is used is read off the run, not listed by hand:
- the C libraries the -sys crates ask pkg-config for (the system-deps tables of `cargo metadata`);
- the GStreamer plugins loaded while the tests and the examples ran (GST_PLUGIN_LOADING logs);
- the shared libraries the given binaries link (ldd), and the given programs.

Usage: check_deps.py --gst-logs DIR [--binary FILE]... [--program NAME]...
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_LIST = ROOT / "scripts" / "debian-packages.txt"


def listed_packages(path=PACKAGE_LIST):
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def parse_relation_names(field):
    """`a (>= 1) | b, c:any` → [['a', 'b'], ['c']]: each inner list is one set of alternatives."""
    groups = []
    for part in field.split(","):
        alternatives = []
        for alt in part.split("|"):
            name = re.sub(r"\(.*?\)|\[.*?\]|<.*?>", "", alt).strip().split(":")[0]
            if name:
                alternatives.append(name)
        if alternatives:
            groups.append(alternatives)
    return groups


def installed_graph():
    """{package: [alternatives...]} for every installed package, and {virtual: [providers]}."""
    out = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f=${Package}\t${db:Status-Abbrev}\t${Depends}, ${Pre-Depends}\t${Provides}\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    depends, providers = {}, {}
    for line in out.splitlines():
        package, status, deps, provides = line.split("\t")
        if not status.startswith("ii"):
            continue
        depends[package] = parse_relation_names(deps)
        for group in parse_relation_names(provides):
            providers.setdefault(group[0], []).append(package)
    return depends, providers


def closure(roots, depends, providers):
    """The installed packages that `roots` bring in through Depends and Pre-Depends."""
    seen, stack = set(), list(roots)
    while stack:
        package = stack.pop()
        if package in seen:
            continue
        seen.add(package)
        for alternatives in depends.get(package, []):
            for name in alternatives:
                for candidate in [name, *providers.get(name, [])]:
                    if candidate in depends and candidate not in seen:
                        stack.append(candidate)
    return seen


def owner(path):
    """The Debian package that installed `path` (None if none did). dpkg records /usr/lib and
    /lib paths as shipped, so on a merged-/usr system both spellings are tried."""
    path = str(path)
    candidates = [path, str(Path(path).resolve())]
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.append(p[len("/usr") :])
        else:
            candidates.append("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    return None


def pkg_config_modules():
    """pkg-config module names of the -sys crates in the build (their system-deps tables)."""
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--filter-platform", host_triple()],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    resolved = {node["id"] for node in meta["resolve"]["nodes"]}
    modules = set()
    for package in meta["packages"]:
        if package["id"] not in resolved:
            continue
        deps = (package.get("metadata") or {}).get("system-deps") or {}
        for key, value in deps.items():
            if isinstance(value, dict):
                modules.add(value.get("name", key))
    return sorted(modules)


def host_triple():
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    return re.search(r"^host: (\S+)$", out, re.M).group(1)


LOADED = re.compile(r'plugin "([^"]+)" loaded')


def loaded_plugins(log_dir):
    files = set()
    for log in Path(log_dir).glob("*.log"):
        files.update(LOADED.findall(log.read_text(errors="replace")))
    return sorted(files)


def linked_libraries(binary):
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    return sorted(set(re.findall(r"=> (/\S+)", out)))


def used_files(args):
    """(what, path) for each file the run used."""
    used = []
    for module in pkg_config_modules():
        pcdir = subprocess.run(
            ["pkg-config", "--variable=pcfiledir", module], capture_output=True, text=True
        ).stdout.strip()
        used.append((f"pkg-config module {module}", f"{pcdir}/{module}.pc" if pcdir else module))
    for plugin in loaded_plugins(args.gst_logs):
        used.append(("GStreamer plugin", plugin))
    for binary in args.binary:
        for lib in linked_libraries(binary):
            used.append((f"library linked by {Path(binary).name}", lib))
    for program in args.program:
        used.append(("program", shutil.which(program) or program))
    return used


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gst-logs", required=True, help="folder of GST_DEBUG_FILE logs")
    parser.add_argument("--binary", action="append", default=[])
    parser.add_argument("--program", action="append", default=[])
    args = parser.parse_args()

    depends, providers = installed_graph()
    named = listed_packages()
    not_installed = [p for p in named if p not in depends]
    covered = closure(named, depends, providers)
    plugins = loaded_plugins(args.gst_logs)
    if not plugins:
        sys.exit(f"no GStreamer plugin loads logged in {args.gst_logs}: nothing was checked")

    problems = [f"{p}: named in {PACKAGE_LIST.name} but not installed" for p in not_installed]
    checked = 0
    for what, path in used_files(args):
        if str(path).startswith(str(ROOT)):
            continue  # our own build output
        package = owner(path)
        checked += 1
        if package is None:
            problems.append(f"{what} {path}: no Debian package installed it")
        elif package not in covered:
            problems.append(
                f"{what} {path}: from {package}, which {PACKAGE_LIST.name} does not name "
                "(nor any package it names depends on it)"
            )
    for p in problems:
        print(f"check-deps: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(
        f"check-deps: {checked} files used ({len(plugins)} GStreamer plugins) all come from "
        f"the {len(named)} packages of {PACKAGE_LIST.name} and their dependencies"
    )


if __name__ == "__main__":
    main()
