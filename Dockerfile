# syntax=docker/dockerfile:1
#
# envparity: one image for every role. By default it runs `envparity serve` (API,
# dashboard and scheduler on port 8000). The same image runs scans and the scheduler
# alone by overriding the command:
#
#   docker build -t envparity .
#   docker run -d -p 8000:8000 -v envparity-data:/var/lib/envparity \
#       -v "$PWD/config":/etc/envparity:ro envparity
#   docker run --rm --no-healthcheck -v envparity-data:/var/lib/envparity \
#       -v "$PWD/config":/etc/envparity:ro envparity scan --all
#   docker run -d --no-healthcheck ... envparity scheduler
#   docker run --rm --no-healthcheck ... envparity db upgrade     # PostgreSQL, before a new version
#
# See docs/operations.md ("Running in a container").

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
# Only what the wheel is built from (README.md is the package's long description).
COPY pyproject.toml README.md ./
COPY app ./app
COPY collectors ./collectors

RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /wheels/*.whl

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="envparity" \
      org.opencontainers.image.description="Environment drift detection" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVPARITY_CONFIG=/etc/envparity/envparity.yaml \
    ENVPARITY_DATABASE_URL=sqlite:////var/lib/envparity/envparity.db \
    ENVPARITY_SECRET_KEY_FILE=/var/lib/envparity/secret.key

RUN groupadd --system --gid 10001 envparity \
 && useradd --system --uid 10001 --gid envparity --home-dir /var/lib/envparity \
        --no-create-home --shell /usr/sbin/nologin envparity \
 && mkdir -p /var/lib/envparity /etc/envparity /srv \
 && chown envparity:envparity /var/lib/envparity /srv \
 && chmod 0700 /var/lib/envparity

# Same base image as the builder, so the venv's interpreter path is valid here.
COPY --from=builder /opt/venv /opt/venv

WORKDIR /srv
USER 10001:10001

# The SQLite database and the secret-hashing key (created on first use).
VOLUME ["/var/lib/envparity"]

EXPOSE 8000

# Slim images have no curl: ask Python. Run scan/scheduler containers with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/healthz', timeout=4)"]

ENTRYPOINT ["envparity"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
