#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory (the official image
# runs /docker-entrypoint-initdb.d/* as the superuser). leasehold gets its own login role and its own
# database, which it owns: no superuser, no extension. It creates its tables itself at start-up.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v leasehold_password="$LEASEHOLD_DB_PASSWORD" <<'SQL'
CREATE ROLE leasehold LOGIN PASSWORD :'leasehold_password';
CREATE DATABASE leasehold OWNER leasehold;
SQL
