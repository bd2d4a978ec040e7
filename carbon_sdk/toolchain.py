"""Register the npm `solc` package (solc built to WebAssembly) as a py-solc-x compiler.

The native solc download that py-solc-x and ape-solidity normally make is not reachable on an offline
machine, but the npm registry is. This module writes a small executable, ``solc-v<version>``, into
py-solc-x's install folder (``$SOLCX_BINARY_PATH`` or ``~/.solcx``). It answers ``--version`` like native
solc and compiles ``--standard-json`` input through solcjs, so py-solc-x, ape-solidity and forge all use
it unchanged.

Run ``python -m carbon_sdk.toolchain`` (the Makefile does). It is idempotent: files are only rewritten
when their content changes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# The JavaScript half: reads standard JSON on stdin, resolves imports from the base path, the allowed
# paths and node_modules, and writes the compiler's JSON to a file (printing through a pipe from node
# truncated output at 64 KiB on this machine, so the shell half prints the file instead).
_COMPILE_JS = r"""
const fs = require('fs');
const path = require('path');
const solc = require(process.env.CARBON_SOLCJS_MODULE);

const args = process.argv.slice(2);
const outFile = args[0];
const roots = [];
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--base-path' || args[i] === '--include-path') roots.push(args[++i]);
  else if (args[i] === '--allow-paths') roots.push(...args[++i].split(','));
}
roots.push(process.cwd(), process.env.CARBON_NODE_MODULES);

function findImport(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.join(r, importPath));
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    } catch (e) { /* try the next root */ }
  }
  return { error: 'File not found: ' + importPath + ' (searched ' + roots.join(', ') + ')' };
}

const input = JSON.parse(fs.readFileSync(0, 'utf8'));
for (const [id, source] of Object.entries(input.sources || {})) {
  if (source.content === undefined && source.urls) {
    for (const url of source.urls) {
      const found = findImport(url);
      if (found.contents !== undefined) { source.content = found.contents; delete source.urls; break; }
    }
  }
}
fs.writeFileSync(outFile, solc.compile(JSON.stringify(input), { import: findImport }));
"""

_WRAPPER_SH = """#!/usr/bin/env bash
# solc {version} for py-solc-x, ape-solidity and forge, backed by the npm package `solc` (WebAssembly).
# Written by `python -m carbon_sdk.toolchain`; edit that module, not this file.
export CARBON_SOLCJS_MODULE="{solc_module}"
export CARBON_NODE_MODULES="{node_modules}"
passed=()
standard_json=0
for arg in "$@"; do
  case "$arg" in
    --version)
      echo "solc, the solidity compiler commandline interface"
      echo "Version: {long_version}"
      exit 0 ;;
    --standard-json) standard_json=1 ;;
    *) passed+=("$arg") ;;
  esac
done
if [ "$standard_json" != 1 ]; then
  echo "this solc wrapper supports only --version and --standard-json" >&2
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Anything node prints (solcjs may print lines starting with '>>>') goes to stderr, never into the JSON.
"{node}" "{script}" "$out" "${{passed[@]}}" 1>&2 || exit $?
cat "$out"
"""


def _solcjs_version(node_modules: Path) -> tuple[str, str]:
    """Return (short, long) versions of the installed npm solc, e.g. ("0.8.28", "0.8.28+commit.7893614a")."""
    package = json.loads((node_modules / "solc" / "package.json").read_text())
    short = package["version"]
    script = f"console.log(require({json.dumps(str(node_modules / 'solc'))}).version())"
    long = subprocess.run(["node", "-e", script], check=True, capture_output=True, text=True).stdout.strip()
    # solcjs reports e.g. 0.8.28+commit.7893614a.Emscripten.clang; py-solc-x parses the x.y.z part.
    return short, long


def solcx_install_folder() -> Path:
    folder = Path(os.environ.get("SOLCX_BINARY_PATH") or Path.home() / ".solcx")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_if_changed(path: Path, text: str, executable: bool = False) -> bool:
    """Replace ``path`` atomically (a new file renamed over it): bash reads a running script as it goes, so a
    wrapper rewritten in place under a compile in progress (another checkout registering itself) breaks it."""
    if path.exists() and path.read_text() == text:
        return False
    fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fresh.write_text(text)
    if executable:
        fresh.chmod(0o755)
    os.replace(fresh, path)
    return True


def project_tool(name: str) -> str | None:
    """Where a development tool of this checkout is: the venv's (slither, ruff), then node_modules/.bin (forge,
    anvil, cast), then PATH; None if nowhere. Tests and scripts call it so they work outside the Makefile too."""
    for candidate in (Path(sys.executable).parent / name, PROJECT_ROOT / "node_modules" / ".bin" / name):
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def install_solc_wrapper(node_modules: Path | None = None) -> Path:
    """Write ``solc-v<version>`` into py-solc-x's install folder and return its path."""
    node_modules = (node_modules or PROJECT_ROOT / "node_modules").resolve()
    if not (node_modules / "solc" / "package.json").exists():
        raise SystemExit(f"npm package 'solc' not found under {node_modules}: run `npm ci` first")
    short, long = _solcjs_version(node_modules)
    folder = solcx_install_folder()
    script = folder / f"solcjs-standard-json-{short}.js"
    wrapper = folder / f"solc-v{short}"
    node = subprocess.run(["sh", "-c", "command -v node"], capture_output=True, text=True).stdout.strip()
    changed = _write_if_changed(script, _COMPILE_JS)
    changed |= _write_if_changed(
        wrapper,
        _WRAPPER_SH.format(
            version=short,
            long_version=long,
            solc_module=node_modules / "solc",
            node_modules=node_modules,
            node=node or "node",
            script=script,
        ),
        executable=True,
    )
    print(f"solc {short} (npm, WebAssembly) {'registered' if changed else 'already registered'} at {wrapper}")
    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-modules", type=Path, default=None)
    parser.add_argument("--print-path", action="store_true",
                        help="print only the wrapper's path (for FOUNDRY_SOLC), not the registration line")
    args = parser.parse_args(argv)
    if args.print_path:
        with contextlib.redirect_stdout(sys.stderr):
            wrapper = install_solc_wrapper(args.node_modules)
        print(wrapper)
    else:
        install_solc_wrapper(args.node_modules)
    return 0


if __name__ == "__main__":
    sys.exit(main())
