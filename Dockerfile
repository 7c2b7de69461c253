# Control tower: web (uvicorn), Celery worker and beat all run from this image; see
# docker-compose.yml for the commands.
FROM python:3.11-slim-bookworm

# PYTHONPATH: the checkout in /app wins over the copy pip installs into site-packages, so
# BASE_DIR (templates/, static/, manage.py) is /app for manage.py, uvicorn and celery alike.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

# GeoDjango's native libraries (GDAL, GEOS, PROJ) and psql/pg_isready for operators.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        gdal-bin libgdal32 libgeos-c1v5 libproj25 postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, from the runtime lock alone, so code changes do not reinstall them:
# exactly the versions the tests ran against, each file checked against its hash
# (docs/SECURITY.md, "Supply chain"; `make lock` writes the file).
COPY requirements/runtime.txt ./requirements/
RUN pip install --require-hashes -r requirements/runtime.txt

COPY . .
RUN pip install --no-deps . \
    && useradd --system --create-home --uid 10001 app \
    && mkdir -p /app/staticfiles /app/var/media /app/var/mail /app/var/sms \
    && chown -R app:app /app/staticfiles /app/var

USER app
EXPOSE 8000

# collectstatic runs at start (settings read the environment); see docker-compose.yml.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py collectstatic --noinput -v0 && exec uvicorn control_tower.asgi:application --host 0.0.0.0 --port 8000"]
