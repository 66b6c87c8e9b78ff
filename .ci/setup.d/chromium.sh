#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the service's browser tests
# (tests/test_service_web.py, driven by Selenium through /usr/bin/chromedriver). Debian's
# packages only: nothing downloads a browser of its own. Installed only when missing;
# idempotent and quiet. An install that cannot happen never fails CI: the browser tests then
# skip and say why.
set -u

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium.sh: no apt-get on this machine; the browser tests will be skipped." >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium.sh: not root, cannot install chromium; the browser tests will be skipped." >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if timeout 600 apt-get update -qq >"$log" 2>&1 \
    && timeout 900 apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
        chromium chromium-driver >>"$log" 2>&1; then
    echo "chromium.sh: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)."
else
    echo "chromium.sh: installing chromium failed; the browser tests will be skipped." >&2
    tail -n 5 "$log" >&2
fi
rm -f "$log"
exit 0
