# Dropline in a container: a build stage installs the locked dependencies into a virtualenv,
# the runtime stage copies it and runs as an unprivileged user. See deploy/compose.yaml for the
# two-node layout, docs/operations.md for the settings.
#
#   docker build -t dropline .
#   docker run -p 8000:8000 -e DROPLINE_DATABASE_URL=postgresql+psycopg://... dropline

FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/dropline
COPY requirements.lock pyproject.toml README.md ./
RUN /opt/dropline/bin/pip install --requirement requirements.lock
COPY src ./src
RUN /opt/dropline/bin/pip install --no-deps .

FROM python:3.11.7-slim-bookworm
RUN groupadd --system --gid 10001 dropline && useradd --system --uid 10001 --gid dropline \
        --home-dir /srv/dropline --create-home dropline
COPY --from=build /opt/dropline /opt/dropline
ENV PATH=/opt/dropline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DROPLINE_DATABASE_URL=sqlite:////srv/dropline/var/dropline.db
WORKDIR /srv/dropline
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2).status != 200)"]
CMD ["dropline", "serve", "--host", "0.0.0.0", "--port", "8000"]
