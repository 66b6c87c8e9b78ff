#!/usr/bin/env bash
# Spark needs a Java runtime (17); install Debian's when none is on the PATH.
set -euo pipefail
if command -v java >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq openjdk-17-jre-headless >/dev/null
java -version
