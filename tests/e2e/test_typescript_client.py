"""The TypeScript client package of ``make clients`` does a round trip.

``clients/generate.py`` makes the npm package once per session
(tests/support/clients.py); this test installs its tarball as npm would,
compiles ``typescript/round_trip.ts`` against it with ``tsc`` (strict: the
calls must match the types generated from the document), and runs it with
node against real gunicorn with a ``write`` key.

The client only talks HTTP, so which interpreter serves, and on which
database, changes nothing for it: it runs once, against the PyPy server on
SQLite (``ONCE``). It needs node and npm, which ``make test`` installs when
run as root, and the project's Node tools (``npm ci``, which it runs too).
"""

import json
import shutil
import subprocess
import tarfile

from core.version import __version__
from tests.support.clients import NAME
from tests.support.clients import ONCE
from tests.support.clients import unpack
from tests.support.live import ROOT
from tests.support.live import make_key

pytestmark = ONCE

PROGRAM = ROOT / "tests" / "e2e" / "typescript" / "round_trip.ts"
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "strict": True,
        "types": ["node"],
        # The program is checked against the declarations, not they themselves.
        "skipLibCheck": True,
        "outDir": "dist",
    },
    "files": [PROGRAM.name],
}


def test_the_package_carries_the_api_version(typescript_package):
    assert typescript_package.name == f"{NAME}-{__version__}.tgz"
    with tarfile.open(typescript_package) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("package/package.json"))
    assert (manifest["name"], manifest["version"]) == (NAME, __version__)
    ours = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert manifest["dependencies"] == {"openapi-fetch": ours["openapi-fetch"]}
    for built in ("index.js", "index.d.ts", "schema.d.ts"):
        assert f"package/dist/{built}" in names


def test_round_trip_with_the_typescript_client(
    typescript_package, live_server, tmp_path
):
    # Under the package's folder, whose node_modules holds the Node tools.
    app = typescript_package.parent.parent / f"app-{tmp_path.name}"
    unpack(typescript_package, app / "node_modules")
    shutil.copyfile(PROGRAM, app / PROGRAM.name)
    (app / "package.json").write_text('{"type": "module"}\n')
    (app / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    tsc = ROOT / "node_modules" / ".bin" / "tsc"
    # tsc compiles while gunicorn starts: one worker is enough for one client.
    compiling = subprocess.Popen(
        [str(tsc), "--project", str(app)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        key = make_key(tmp_path, "write")
        server = live_server(env={"VISIT_FLUSH_INTERVAL": "0", "AUTH": "on"}, workers=1)
    finally:
        said = compiling.communicate(timeout=120)[0]
    assert compiling.returncode == 0, said

    run = subprocess.run(
        ["node", str(app / "dist" / "round_trip.js"), server.url, key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == "round trip: ok\n"
    assert "Traceback" not in server.log()
