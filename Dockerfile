# The API and its workers on Debian's PyPy: the same pypy3 7.3.11 (Python 3.9)
# as development and CI (`make test` installs Debian's pypy3 too), so the
# image runs what the tests ran. docker-compose.yml picks each service's
# command. Two stages: the compilers and headers stay in the first.

FROM debian:bookworm-slim AS build
# pypy3-dev and gcc: packages built from source under PyPy; libpq-dev:
# psycopg2cffi (the PostgreSQL driver under PyPy) builds against it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       pypy3 pypy3-dev pypy3-venv gcc libc6-dev libpq-dev libffi-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN pypy3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM debian:bookworm-slim
# Runtime only: the interpreter and libpq (no compiler, no headers).
RUN apt-get update \
    && apt-get install -y --no-install-recommends pypy3 libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 PORT=8000

WORKDIR /app
COPY . .
# /data: the SQLite volume, written by the API container only (see compose).
RUN useradd --create-home --uid 10001 api && mkdir -p var /data && chown api var /data
USER 10001

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# Migrations and the salary file on first start, then gunicorn.
CMD ["sh", "-c", "python -m api init-db && python -m api import-salaries --if-empty && exec python -m api serve"]
