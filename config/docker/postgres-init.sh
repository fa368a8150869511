#!/bin/sh
# Run once by the postgres image on an empty data directory: the application's login role owns
# its database and is neither superuser nor BYPASSRLS, so row-level security binds it
# (docs/deployment.md, PostgreSQL).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v pw="$LEARNPLAT_DB_PASSWORD" <<'SQL'
CREATE ROLE learnplat LOGIN PASSWORD :'pw' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE learnplat OWNER learnplat;
SQL
