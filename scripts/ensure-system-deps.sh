#!/usr/bin/env bash
# Installs the Debian packages the platform needs, only when something is missing.
set -euo pipefail
need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v kcat >/dev/null || need+=(kcat)
# The browser test drives it through Playwright (executable_path): `playwright install` downloads
# browsers from outside, which this build environment cannot reach.
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  echo "==> system packages present (java, mvn, postgresql-15, kcat, chromium)"
  exit 0
fi
echo "==> installing Debian packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
