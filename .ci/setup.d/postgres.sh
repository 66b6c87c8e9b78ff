#!/usr/bin/env bash
# PostgreSQL for the service's job-store test (tests/test_service_postgres.py), which starts its
# own throw-away server with initdb + pg_ctl. Installed only when missing; idempotent and quiet.
# An install that cannot happen never fails CI: the Postgres test then skips and says why.
set -u

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres.sh: no apt-get on this machine; the PostgreSQL test will be skipped." >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: not root, cannot install postgresql; the PostgreSQL test will be skipped." >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if timeout 600 apt-get update -qq >"$log" 2>&1 \
    && timeout 900 apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
        --no-install-recommends postgresql >>"$log" 2>&1; then
    echo "postgres.sh: installed postgresql."
else
    echo "postgres.sh: installing postgresql failed; the PostgreSQL test will be skipped." >&2
    tail -n 5 "$log" >&2
fi
rm -f "$log"
exit 0
