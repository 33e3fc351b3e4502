#!/usr/bin/env bash
# Checks that everything a configured (and built) tree read from the system comes from a
# Debian package that tools/install-deps.sh installs, directly or through Depends /
# Pre-Depends (Recommends do not count: install-deps uses --no-install-recommends), or
# from the base system every Debian machine has (Essential: yes, Priority: required).
# A developer machine with extra packages hides such gaps; a fresh machine does not.
#   tools/check-deps.sh --build-dir DIR [--without PKG]... [--verbose]
#     --build-dir DIR  a configured build folder (Ninja); after a build its headers count too
#     --without PKG    act as if install-deps did not list PKG (the test of this check)
#     --verbose        print every file with its package
# Files read: the inputs CMake lists for re-running itself (find modules, package configs),
# file paths in CMakeCache.txt (libraries, include folders' headers found by find_*),
# libraries named on link lines, and, for built objects, every header the compiler read
# (ninja -t deps). Files under the source or build folder and the CUDA toolkit under
# /usr/local/cuda (not a Debian package here; the README says so) are not checked.
# Exit: 0 all covered, 1 a file outside the allowed packages (each listed), 2 bad usage.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build='' verbose=0
without=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="${2:?--build-dir needs a folder}"; shift 2 ;;
    --without) without+=("${2:?--without needs a package}"); shift 2 ;;
    --verbose) verbose=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "check-deps.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$build" ] || { echo "check-deps.sh: --build-dir is required (see --help)" >&2; exit 2; }
[ -f "$build/build.ninja" ] && [ -f "$build/CMakeCache.txt" ] || {
  echo "check-deps.sh: $build is not a configured Ninja build folder" >&2; exit 2; }
build=$(cd "$build" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ipg-check-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- the files
{
  # CMake's own re-run inputs: one line, paths after '|', '$ ' escapes spaces.
  awk '/^build build\.ninja: RERUN_CMAKE/ { sub(/^[^|]*\|/, ""); gsub(/ /, "\n"); print }' \
    "$build/build.ninja"
  # Cache values that are paths (libraries and headers found by find_library/find_path).
  sed -n 's/^[A-Za-z0-9_.+-]*:[A-Z]*=//p' "$build/CMakeCache.txt" | tr ';' '\n'
  # Absolute libraries on link lines, and -l names resolved the way the linker would.
  grep -h '^ *LINK_LIBRARIES = ' "$build/build.ninja" | sed 's/^ *LINK_LIBRARIES = //' |
    tr ' ' '\n' | sort -u >"$work/link.txt"
  grep '^/' "$work/link.txt" || true
  for l in $(sed -n 's/^-l//p' "$work/link.txt"); do
    f=$(g++ -print-file-name="lib$l.so")
    [ "$f" = "lib$l.so" ] || echo "$f"
  done
  # Headers the compiler read for objects built so far.
  if command -v ninja >/dev/null; then
    ninja -C "$build" -t deps 2>/dev/null | awk '/^    \//{print $1}'
  fi
} | grep '^/' | sort -u >"$work/candidates.txt"

while IFS= read -r f; do
  [ -f "$f" ] || continue
  case "$f" in
    "$repo"/*|"$build"/*|/usr/local/cuda/*|/usr/local/cuda-*/*|/tmp/*|/proc/*) continue ;;
  esac
  # The toolkit may put small launcher scripts on PATH (/usr/local/bin/nvcc containing
  # "exec /usr/local/cuda-13.0/bin/nvcc"); CMake then records the launcher. Such a script
  # is still the toolkit; anything else under /usr/local is checked (and fails).
  if [ "$(stat -c %s "$f")" -lt 4096 ] && head -c 2 "$f" | grep -q '^#!' &&
     grep -Eq '^[[:space:]]*exec[[:space:]]+"?/usr/local/cuda(-[0-9.]+)?/' "$f"; then
    continue
  fi
  echo "$f"
done <"$work/candidates.txt" >"$work/files0.txt"
# Symlink targets, in one call; a file reached through a link into the CUDA toolkit is
# still the toolkit.
xargs -r -d '\n' realpath -- <"$work/files0.txt" >"$work/real0.txt"
paste "$work/files0.txt" "$work/real0.txt" | awk -F'\t' '$2 !~ /^\/usr\/local\/cuda/' >"$work/files.tsv"

# ---- owner package(s) of each file, from dpkg's file lists (one pass: dpkg -S per file
# takes seconds each). A file may be listed under its /lib or /usr/lib spelling (merged
# /usr) or reached through a symlink: try the path, its target, and both spellings.
awk -F'\t' '{ a = $1; b = $2; sub(/^\/usr/, "", a); sub(/^\/usr/, "", b)
              printf "%s\t%s\t%s\t%s\t%s\n", $1, $1, $2, a, b }' "$work/files.tsv" >"$work/spellings.tsv"
awk -F'\t' -v out="$work/owned.tsv" -v lost="$work/unowned.txt" '
  FNR == NR { n++; name[n] = $1; for (i = 2; i <= 5; i++) { sp[n, i] = $i; want[$i] = 1 } next }
  ($0 in want) { p = FILENAME; sub(/.*\//, "", p); sub(/\.list$/, "", p); sub(/:.*/, "", p)
                 if (index(" " own[$0] " ", " " p " ") == 0) own[$0] = own[$0] (own[$0] == "" ? "" : " ") p }
  END { printf "" > out; printf "" > lost
        for (k = 1; k <= n; k++) { o = ""
          for (i = 2; i <= 5 && o == ""; i++) if ((sp[k, i] in own)) o = own[sp[k, i]]
          if (o != "") printf "%s\t%s\n", name[k], o >> out; else print name[k] >> lost } }
' "$work/spellings.tsv" /var/lib/dpkg/info/*.list

# ---- the allowed packages: install-deps' list (minus --without), the base system, and
# everything they Depend or Pre-Depend on that is installed (all installed alternatives;
# virtual names through Provides).
"$repo/tools/install-deps.sh" --list >"$work/seeds.txt"
printf '%s\n' "${without[@]+"${without[@]}"}" >"$work/without.txt"
dpkg-query -W -f='${db:Status-Status}\t${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\t${Provides}\n' \
  >"$work/installed.tsv"
awk -F'\t' -v seeds="$work/seeds.txt" -v without="$work/without.txt" '
  function clean(d) { sub(/^ +/, "", d); sub(/ .*/, "", d); sub(/:.*/, "", d); return d }
  BEGIN { while ((getline l < without) > 0) if (l != "") cut[l] = 1 }
  $1 != "installed" { next }
  { pkg = $2; if (pkg in cut) next
    inst[pkg] = 1; deps[pkg] = $5
    if ($3 == "yes" || $4 == "required") base[pkg] = 1
    n = split($6, pr, ","); for (i = 1; i <= n; i++) { v = clean(pr[i]); if (v != "") prov[v] = prov[v] " " pkg } }
  END {
    while ((getline l < seeds) > 0) if (l != "" && !(l in cut)) want[l] = 1
    for (p in base) want[p] = 1
    q = 0; for (p in want) if (p in inst) { queue[q++] = p; seen[p] = 1 }
    for (h = 0; h < q; h++) {
      n = split(deps[queue[h]], cl, ",")
      for (i = 1; i <= n; i++) {
        m = split(cl[i], alt, "|")
        for (j = 1; j <= m; j++) {
          d = clean(alt[j]); if (d == "") continue
          cands = (d in inst) ? d : ""
          if (d in prov) cands = cands prov[d]
          k = split(cands, cs, " ")
          for (t = 1; t <= k; t++) if (cs[t] != "" && !(cs[t] in seen)) { seen[cs[t]] = 1; queue[q++] = cs[t] }
        }
      }
    }
    for (p in seen) print p
  }' "$work/installed.tsv" | sort >"$work/allowed.txt"

# ---- verdict
bad=0
while IFS=$'\t' read -r f o; do
  ok=0
  for p in $o; do grep -qxF "$p" "$work/allowed.txt" && ok=1; done
  [ "$verbose" -eq 1 ] && printf '%-70s %s\n' "$f" "$o"
  if [ "$ok" -eq 0 ]; then
    echo "check-deps: $f comes from '$o', which tools/install-deps.sh does not install (not in its list or their Depends)"
    bad=1
  fi
done <"$work/owned.tsv"
while IFS= read -r f; do
  echo "check-deps: $f belongs to no Debian package (installed by hand?)"
  bad=1
done <"$work/unowned.txt"
nfiles=$(wc -l <"$work/owned.tsv")
npkgs=$(cut -f2 "$work/owned.tsv" | tr ' ' '\n' | sort -u | grep -c . || true)
if [ "$bad" -ne 0 ]; then
  echo "check-deps: FAILED: add the package(s) above to tools/install-deps.sh"
  exit 1
fi
echo "check-deps: ok: $nfiles system files from $npkgs packages, all installed by tools/install-deps.sh or the base system"
