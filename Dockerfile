# trytond 8.0 + dunning_advanced + sao web client.
# One image for all roles (trytond, trytond-cron, trytond-worker, init);
# see docker-compose.yml.

# --- Stage 1: sao, installed with the same script as `make sao` -----------
FROM node:20-bookworm-slim AS sao
WORKDIR /build
COPY scripts/install-sao.sh scripts/install-sao.sh
RUN scripts/install-sao.sh /opt/sao

# --- Stage 2: runtime --------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the project (pinned trytond modules, psycopg) as a regular,
# non-editable package. Only what the build needs is copied.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY addons ./addons
RUN pip install '.[postgresql]' \
    && rm -rf /src /root/.cache \
    && python -c "import importlib.metadata as m; \
assert 'dunning_advanced' in {e.name for e in m.entry_points(group='trytond.modules')}"

COPY --from=sao /opt/sao /opt/sao
COPY trytond.conf /etc/trytond.conf

# Unprivileged user; /var/lib/trytond is the filestore ([database] path).
RUN useradd --system --home-dir /var/lib/trytond --create-home \
        --shell /usr/sbin/nologin trytond \
    && chmod 0644 /etc/trytond.conf
ENV TRYTOND_CONFIG=/etc/trytond.conf
USER trytond
WORKDIR /var/lib/trytond
VOLUME /var/lib/trytond

EXPOSE 8000
CMD ["trytond", "-c", "/etc/trytond.conf"]
