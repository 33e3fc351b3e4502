#!/usr/bin/env python3
"""Checks that every unity-built target still compiles as ONE translation unit.

A unity build (cmake/unity.cmake) puts a target's sources into batches; which files share a
batch changes whenever a file is added or renamed. Two files that each define the same name
in an anonymous namespace (a helper, a constant, a test fixture) build today if they sit in
different batches and break the build the day a new file moves them together. Parsing all of
a target's sources as one unit finds every such clash at once, whatever the batches are.

Usage: tools/check-unity.py BUILD_DIR [-j N] [--target NAME] [--add-source FILE]... [--each]
BUILD_DIR must be configured with the unity build on and have been built once (CMake writes
the batch files at generation; compile_commands.json gives the flags). Syntax only: nothing
is compiled to code. --target checks one target; --add-source appends a file to each
checked unit (the test that this check finds a clash includes one file twice). --each parses
every source alone instead (the file-by-file build's view: a forgotten include). Exit 0: every target parses; 1: a target failed (its errors printed);
2: bad arguments or no unity targets found.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile


def unity_targets(build_dir):
    """Maps each target's Unity folder to its batch files (unity_N_cxx.cxx), in order."""
    found = {}
    for root, dirs, files in os.walk(build_dir):
        if os.path.basename(root) != "Unity":
            continue
        batches = sorted((f for f in files if re.fullmatch(r"unity_\d+_cxx\.cxx", f)),
                         key=lambda f: int(f.split("_")[1]))
        if batches:
            found[root] = [os.path.join(root, f) for f in batches]
    return found


def included_sources(batch_file):
    with open(batch_file) as f:
        return re.findall(r'^#include "(.+)"$', f.read(), flags=re.M)


def command_for(commands, batch_file):
    for entry in commands:
        if os.path.abspath(os.path.join(entry["directory"], entry["file"])) == batch_file:
            return entry
    return None


def parse_unit(entry, batch0, name, sources):
    """Parses `sources` as one unit with batch0's compile flags; returns (ok, stderr)."""
    with tempfile.NamedTemporaryFile("w", suffix=".cxx", delete=False) as tu:
        tu.write("/* %d source(s) of %s in one unit (tools/check-unity.py) */\n" % (len(sources), name))
        for s in sources:
            tu.write('#include "%s"\n' % s)
        combined = tu.name
    try:
        args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
        out = []
        skip = False
        for a in args:  # drop the output and the source; keep every flag and definition
            if skip:
                skip = False
                continue
            if a in ("-o", "-c"):
                skip = a == "-o"
                continue
            if os.path.abspath(os.path.join(entry["directory"], a)) == batch0:
                continue
            out.append(a)
        cmd = out + ["-fsyntax-only", combined]
        r = subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True)
        return r.returncode == 0, r.stderr if r.returncode != 0 else ""
    finally:
        os.unlink(combined)


def target_name(unity_dir):
    return os.path.basename(os.path.dirname(unity_dir)).removesuffix(".dir")


def check(unity_dir, batches, commands, extra):
    """Returns (name, ok, output) for one target: all its sources as one unit."""
    name = target_name(unity_dir)
    entry = command_for(commands, batches[0])
    if entry is None:
        return name, False, f"no compile command for {batches[0]} in compile_commands.json"
    sources = [s for b in batches for s in included_sources(b)] + extra
    ok, text = parse_unit(entry, batches[0], name, sources)
    return name, ok, f"{len(sources)} sources\n" + text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--target", help="check this target only")
    ap.add_argument("--add-source", action="append", default=[], metavar="FILE")
    ap.add_argument("--each", action="store_true",
                    help="parse every source ALONE instead (what -DIPG_UNITY_BUILD=OFF "
                         "compiles): finds a file that builds only because a neighbour in "
                         "its batch included a header it forgot")
    a = ap.parse_args()
    extra = [os.path.abspath(f) for f in a.add_source]
    for f in extra:
        if not os.path.isfile(f):
            print(f"check-unity: {f} not found", file=sys.stderr)
            return 2
    if a.jobs < 1:
        print("check-unity: --jobs must be at least 1", file=sys.stderr)
        return 2
    db = os.path.join(a.build_dir, "compile_commands.json")
    if not os.path.isfile(db):
        print(f"check-unity: {db} not found (configure the build first)", file=sys.stderr)
        return 2
    with open(db) as f:
        commands = json.load(f)
    targets = unity_targets(os.path.abspath(a.build_dir))
    if not targets:
        print(f"check-unity: no unity-built targets under {a.build_dir} "
              "(IPG_UNITY_BUILD off, or not generated yet)", file=sys.stderr)
        return 2
    if a.target:
        targets = {k: v for k, v in targets.items()
                   if os.path.basename(os.path.dirname(k)) == a.target + ".dir"}
        if not targets:
            print(f"check-unity: {a.target} is not a unity-built target here", file=sys.stderr)
            return 2
    failed = 0
    if a.each:
        jobs = []
        for t in sorted(targets):
            entry = command_for(commands, targets[t][0])
            for b in targets[t]:
                for src in included_sources(b):
                    jobs.append((t, entry, src))
        def one(job):
            t, entry, src = job
            if entry is None:
                return t, src, False, "no compile command"
            ok, text = parse_unit(entry, targets[t][0], target_name(t), [src])
            return t, src, ok, text
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
            for t, src, ok, text in pool.map(one, jobs):
                if not ok:
                    failed += 1
                    print(f"check-unity: {target_name(t)}: {src}: FAILED alone")
                    errors = [l for l in text.splitlines() if " error: " in l]
                    print("\n".join(errors[:20] or text.splitlines()[:20]))
        print(f"check-unity: {len(jobs)} sources parsed alone, {failed} failed")
        return 1 if failed else 0
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for name, ok, text in pool.map(lambda t: check(t, targets[t], commands, extra),
                                       sorted(targets)):
            first, _, rest = text.partition("\n")
            print(f"check-unity: {name}: {first}: {'ok' if ok else 'FAILED as one unit'}")
            if not ok:
                failed += 1
                # The clashes themselves first: the errors after them mostly follow from them.
                errors = [l for l in rest.splitlines() if " error: " in l]
                clashes = [l for l in errors if re.search(r"redefinition|conflicting|redeclar", l)]
                print("\n".join(clashes or errors[:40] or rest.splitlines()[:40]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
