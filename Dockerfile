# The API on the official PyPy image; the same image runs the workers
# (docker-compose.yml picks the command).
FROM pypy:3.10-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000

# libpq for the PostgreSQL driver; gcc for any wheel PyPy has to build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libpq5 \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home api && mkdir -p var && chown api var
USER api

EXPOSE 8000
CMD ["pypy3", "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.app:app"]
