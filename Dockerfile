# The API and its workers on Debian's PyPy: the same pypy3 7.3.11 (Python 3.9)
# as development and CI (`make test` installs Debian's pypy3 too), so the
# image runs what the tests ran. docker-compose.yml picks each service's
# command. Two stages: the compilers and headers stay in the first.
# Built and run without a Docker engine by `make image-test` (.ci/image).

FROM debian:bookworm-slim AS build
# pypy3-dev, gcc and make: gevent and psycopg2cffi have no PyPy wheels, so pip
# builds them (gevent runs the configure scripts of its bundled libev and
# c-ares); libpq-dev: psycopg2cffi builds against it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       pypy3 pypy3-dev pypy3-venv gcc libc6-dev make libpq-dev \
    && rm -rf /var/lib/apt/lists/*
# requirements.lock pins every package with its hashes for this interpreter
# (make lock) and pip is pinned too, so a rebuild installs the same files. The
# lock must still satisfy requirements.txt, or the build stops.
# Behind a proxy that re-signs TLS, pip needs that CA: `--secret
# id=pip-ca,src=BUNDLE` lends it to this step only (make image passes the one
# the host's pip trusts, if any).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt requirements.lock /tmp/
RUN --mount=type=secret,id=pip-ca \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pypy3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir pip==26.0.1 \
    && MAKEFLAGS="-j$(nproc)" /opt/venv/bin/pip install --no-cache-dir \
       --require-hashes -r /tmp/requirements.lock \
    && { /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps --dry-run --quiet \
         -r /tmp/requirements.txt \
         || { echo "requirements.lock does not satisfy requirements.txt: run make lock" >&2; exit 1; }; }

FROM debian:bookworm-slim
# Runtime only: the interpreter and libpq (no compiler, no headers).
RUN apt-get update \
    && apt-get install -y --no-install-recommends pypy3 libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 PORT=8000

WORKDIR /app
# .dockerignore keeps the tests, benchmarks, docs and local state out.
COPY . .
# /data: the SQLite volume, written by the API container only (see compose).
RUN useradd --create-home --uid 10001 api && mkdir -p var /data && chown api var /data
USER 10001

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# Migrations and the salary file on first start, then gunicorn.
CMD ["sh", "-c", "python -m api init-db && python -m api import-salaries --if-empty && exec python -m api serve"]
