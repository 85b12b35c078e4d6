# The API on the official PyPy image; the same image runs the workers
# (docker-compose.yml picks the command).
FROM pypy:3.10-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000

# libpq-dev: psycopg2cffi (the PostgreSQL driver under PyPy) builds against it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libpq-dev \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# /data is the compose volume of the SQLite file; a new volume takes its owner.
RUN useradd --create-home api && mkdir -p var /data && chown api var /data
USER api

EXPOSE 8000
# Tables and the salary file on first start, then gunicorn.
CMD ["sh", "-c", "pypy3 -m api init-db && pypy3 -m api import-salaries --if-empty && exec pypy3 -m gunicorn -c gunicorn.conf.py api.app:app"]
