#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Debian packages, .venv, the project.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
[ -f /usr/share/java/owlapi-distribution.jar ] || need_apt+=(libowlapi-java)
command -v virtuoso-t >/dev/null 2>&1 || need_apt+=(virtuoso-opensource)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# the reverse proxy of the production set-up (deploy/nginx.conf; tests/test_deploy_nginx.py)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
# the headless browser of the page tests (tests/test_pages_browser.py, through playwright; no browser is downloaded)
command -v chromium-headless-shell >/dev/null 2>&1 || need_apt+=(chromium-headless-shell)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing Debian packages: ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "bootstrap: WARNING: missing Debian packages (${need_apt[*]}) and not root; the checks that need them will be skipped" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test]"

# YASGUI for the browser view of /sparql, from the npm registry (no CDN at run time).
if [ ! -f build/yasgui/node_modules/@zazuko/yasgui/build/yasgui.min.js ] && command -v npm >/dev/null 2>&1; then
    mkdir -p build/yasgui
    (cd build/yasgui && npm install --silent --no-audit --no-fund @zazuko/yasgui@4 >/dev/null 2>&1) \
        || echo "bootstrap: WARNING: could not install YASGUI from npm; /sparql will serve a plain form" >&2
fi

# Swagger UI and ReDoc for /docs and /redoc, from the npm registry too (FastAPI's defaults load them from a CDN).
if [ ! -f build/apidocs/node_modules/redoc/bundles/redoc.standalone.js ] && command -v npm >/dev/null 2>&1; then
    mkdir -p build/apidocs
    (cd build/apidocs && npm install --silent --no-audit --no-fund swagger-ui-dist@5 redoc@2 >/dev/null 2>&1) \
        || echo "bootstrap: WARNING: could not install swagger-ui-dist and redoc from npm; /docs and /redoc will say so" >&2
fi

# Generated artifacts: RDF/XML copy of the ontology and its HTML documentation.
.venv/bin/crlm-kg build
echo "bootstrap: ready (.venv/bin/crlm-kg)"
