# shellcheck shell=bash
# A throwaway PostgreSQL for the tests: `source .ci/postgres.sh && postgres_start` installs PostgreSQL from Debian's
# packages when it is missing, starts a cluster of its own in a temporary directory on a free port, and exports
# KYC_GATEWAY_TEST_DATABASE_URL (a role that may create databases: each test creates its own). The cluster is
# stopped and removed when the shell exits. PostgreSQL refuses to run as root, so the server runs as `postgres`.

PG_VERSION="${PG_VERSION:-15}"
PG_BIN="/usr/lib/postgresql/${PG_VERSION}/bin"

postgres_install() {
    [ -x "$PG_BIN/initdb" ] && return 0
    echo "== installing PostgreSQL $PG_VERSION from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # postgresql-common first, told not to create (and start) the default cluster the server package would make.
    apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
    sed -i 's/^#\?\s*create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
    apt-get install -y -qq --no-install-recommends "postgresql-$PG_VERSION" >/dev/null
}

postgres_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}

postgres_start() {
    postgres_install
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    PG_DIR="$(mktemp -d /tmp/kyc-gateway-pg.XXXXXX)"
    chown postgres: "$PG_DIR"
    chmod 700 "$PG_DIR"
    trap postgres_stop EXIT

    local password superpassword port
    password="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    superpassword="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    printf '%s\n' "$superpassword" > "$PG_DIR/pw"
    chown postgres: "$PG_DIR/pw"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pw" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 -N >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    # Settings in the configuration file (a restart keeps them); durability off: the cluster is thrown away.
    cat >> "$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
include_if_exists = 'port.conf'
CONF
    # A free port: try random ones until the server starts on one.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$(( 20000 + RANDOM % 40000 ))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        echo "port = $port" > "$PG_DIR/data/port.conf"
        chown postgres: "$PG_DIR/data/port.conf"
        if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 start >/dev/null; then
            break
        fi
        port=""
    done
    [ -n "$port" ] || { cat "$PG_DIR/server.log" >&2; return 1; }
    runuser -u postgres -- "$PG_BIN/psql" -h "$PG_DIR" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE ROLE kyc LOGIN CREATEDB PASSWORD '$password'" >/dev/null
    export KYC_GATEWAY_TEST_DATABASE_URL="postgres://kyc:$password@127.0.0.1:$port/postgres"
    echo "== PostgreSQL $PG_VERSION on 127.0.0.1:$port (throwaway, in $PG_DIR)"
}
