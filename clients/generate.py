"""The client packages, written from the OpenAPI document (``make clients``).

    python clients/generate.py SPEC [--python DIR] [--typescript DIR]

Run it with the CPython virtualenv (the generator does not install under PyPy);
the TypeScript DIR must lie where Node finds the project's ``node_modules``.
Each DIR is emptied first. Usage: docs/user/clients.md
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NAME = "falcon-pypy-api-client"
PACKAGE = "falcon_pypy_api_client"
COMMAND = "fpa"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="the OpenAPI document (JSON)")
    parser.add_argument("--python", type=Path, metavar="DIR")
    parser.add_argument("--typescript", type=Path, metavar="DIR")
    parser.add_argument(
        "--node-modules",
        type=Path,
        default=ROOT / "node_modules",
        help="where the Node tools are (default: the project's)",
    )
    args = parser.parse_args()
    spec = args.spec.resolve()
    if args.python:
        python_client(spec, args.python.resolve())
    if args.typescript:
        typescript_client(spec, args.typescript.resolve(), args.node_modules.resolve())


def run(args: list, cwd: Path) -> None:
    """Run a tool; its output goes to ours, and a failure ends the build."""
    print("+", " ".join(str(arg) for arg in args), flush=True)
    done = subprocess.run([str(arg) for arg in args], cwd=cwd)
    if done.returncode:
        sys.exit(f"{Path(str(args[0])).name} failed ({done.returncode})")


def python_client(spec: Path, out: Path) -> Path:
    """The project in ``out``, its wheel in ``out/dist``; the wheel's path."""
    generator = Path(sys.executable).parent / "openapi-python-client"
    if not generator.is_file():
        sys.exit(f"{generator} is missing: run this with the CPython virtualenv")
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    run(
        [generator, "generate", "--path", spec, "--output-path", out]
        + ["--config", HERE / "python" / "config.yaml", "--meta", "pdm"]
        + ["--fail-on-warning"],
        cwd=out.parent,
    )
    shutil.copyfile(HERE / "python" / "cli.py", out / PACKAGE / "cli.py")
    with open(out / "pyproject.toml", "a") as pyproject:
        pyproject.write(f'\n[project.scripts]\n{COMMAND} = "{PACKAGE}.cli:main"\n')
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        + ["--no-build-isolation", "--wheel-dir", out / "dist", out],
        cwd=out,
    )
    (wheel,) = (out / "dist").glob("*.whl")
    return wheel


def typescript_client(spec: Path, out: Path, node_modules: Path) -> Path:
    """The package in ``out`` (src, dist, package.json); its tarball's path."""
    tools = node_modules / ".bin"
    version = json.loads(spec.read_text())["info"]["version"]
    shutil.rmtree(out, ignore_errors=True)
    (out / "src").mkdir(parents=True)
    # A field with a default stays optional: openapi-typescript's own default
    # would make callers send every defaulted field of a request body.
    run(
        [tools / "openapi-typescript", spec, "-o", out / "src" / "schema.ts"]
        + ["--default-non-nullable", "false"],
        out,
    )
    shutil.copyfile(HERE / "typescript" / "index.ts", out / "src" / "index.ts")
    shutil.copyfile(HERE / "typescript" / "tsconfig.json", out / "tsconfig.json")
    ours = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    package = {
        "name": NAME,
        "version": version,
        "description": "A typed client of the Falcon PyPy API (openapi-fetch)",
        "license": "UNLICENSED",
        "type": "module",
        "main": "./dist/index.js",
        "types": "./dist/index.d.ts",
        "exports": {".": {"types": "./dist/index.d.ts", "default": "./dist/index.js"}},
        "files": ["dist", "src"],
        "engines": {"node": ">=18"},
        "dependencies": {"openapi-fetch": ours["openapi-fetch"]},
    }
    (out / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    run([tools / "tsc", "--project", out], out)
    run(["npm", "pack", "--silent", "--pack-destination", out], out)
    return out / f"{NAME}-{version}.tgz"


if __name__ == "__main__":
    main()
