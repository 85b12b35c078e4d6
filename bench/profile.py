"""Profile one path in one process under PyPy with vmprof (py-spy cannot attach).

``.venv/pypy3/bin/python -m bench.profile '/notes/{note}'``; ``--help`` for
the options, docs/performance/index.md for what it does.
"""

import argparse
import collections
import io
import json
import os
import sys
import tempfile
import time
from typing import List
from typing import Optional


def _app(database_url: str, salaries: bool):
    from api.app import create_app
    from core.settings import Settings
    from db.schema import create_schema
    from db.sql import Database

    database = Database(database_url)
    create_schema(database.engine)
    database.dispose()
    settings = Settings(database_url=database_url)
    if salaries:
        from api.salary_import import SALARIES_CSV
        from api.salary_import import import_salaries

        import_salaries(settings, argparse.Namespace(csv=SALARIES_CSV, if_empty=False))
    return create_app(settings)


def _caller(app):
    def call(method: str, path: str, body: Optional[bytes] = None):
        route, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": route,
            "QUERY_STRING": query,
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body or b""),
            "wsgi.errors": sys.stderr,
        }
        if body is not None:
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["CONTENT_TYPE"] = "application/json"
        status = []
        chunks = app(environ, lambda s, headers, exc_info=None: status.append(s))
        data = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        return status[0], data

    return call


def _report(path: str, top: int) -> None:
    import vmprof

    stats = vmprof.read_profile(path)
    own, total = collections.Counter(), collections.Counter()
    samples = 0
    for profile in stats.profiles:
        frames = []
        for address in profile[0]:
            info = stats.get_addr_info(address)
            if info and info[0] == "py":
                frames.append((info[1], info[3]))
        if not frames:
            continue
        samples += 1
        own[frames[-1]] += 1
        for frame in set(frames):
            total[frame] += 1
    print(f"{samples} samples")
    for title, counter in (("own time", own), ("with callees", total)):
        print(f"--- {title}")
        for (name, filename), count in counter.most_common(top):
            print(f"{100 * count / samples:5.1f}%  {name}  {filename[-60:]}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__
    )
    parser.add_argument("path", help="request path; {note} and {code} are filled in")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default='{"title": "profiled", "body": "x"}')
    parser.add_argument("--warmup", type=int, default=30000)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--salaries", action="store_true", help="load the salary file")
    args = parser.parse_args(argv)
    try:
        import vmprof
    except ImportError:
        print("vmprof is missing: pip install vmprof (PyPy)", file=sys.stderr)
        return 1
    folder = tempfile.mkdtemp(prefix="profile-")
    call = _caller(_app(f"sqlite:///{folder}/profile.db", args.salaries))
    _, note = call("POST", "/notes", b'{"title": "t", "body": "b"}')
    _, link = call("POST", "/links", b'{"url": "https://example.com/profiled"}')
    path = args.path.replace("{note}", json.loads(note)["id"])
    path = path.replace("{code}", json.loads(link)["code"])
    body = args.body.encode() if args.method in ("POST", "PUT", "PATCH") else None
    step = max(args.warmup // 10, 1)
    started = time.perf_counter()
    for number in range(1, args.warmup + 1):
        status, _ = call(args.method, path, body)
        if number % step == 0:
            now = time.perf_counter()
            micros = 1e6 * (now - started) / step
            print(f"{number:8,d}  {micros:8.1f} us/request  {status}")
            started = now
    out = os.path.join(folder, "vmprof.dat")
    fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    vmprof.enable(fd, period=0.0005)
    started = time.perf_counter()
    for _ in range(args.requests):
        call(args.method, path, body)
    elapsed = time.perf_counter() - started
    vmprof.disable()
    os.close(fd)
    print(f"profiled: {1e6 * elapsed / args.requests:.1f} us/request")
    _report(out, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
