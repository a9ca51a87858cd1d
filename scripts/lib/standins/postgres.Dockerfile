# Stand-in for the official postgres image where no registry can be reached (scripts/compose-check):
# Debian's PostgreSQL 15, initialised on first start from POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB
# and POSTGRES_INITDB_ARGS like the official image; PGPORT moves its port (and pg_isready's).
FROM python:3.11-slim-bookworm
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
