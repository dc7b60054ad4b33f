#!/usr/bin/env bash
# Renders Swagger UI in headless Chromium and checks that it lists the API's
# operations and loads nothing from another host.
#
# Usage: apidocs/check-swagger-ui.sh BASE_URL [SCREENSHOT]
#
# BASE_URL is a running server that serves the apidocs handlers, such as
# http://127.0.0.1:8000 for "make run" or http://127.0.0.1:8081 for
# "go run ./apidocs/internal/preview". SCREENSHOT is where the PNG of the
# page goes (default: a file in a new temporary folder). Only loopback
# hosts are accepted, unless APIDOCS_CHECK_ANY_HOST=1.
#
# Needs Debian's chromium package: apt-get update && apt-get install -y chromium
# Exits 0 when every check passes, 1 when one fails and 2 for a usage error.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BASE_URL [SCREENSHOT]" >&2
  exit 2
fi
base_url="${1%/}"
page_url="$base_url/swagger/"
work="$(mktemp -d)"
trap 'rm -rf "$work/profile"' EXIT
screenshot="${2:-$work/swagger-ui.png}"

if [[ "${APIDOCS_CHECK_ANY_HOST:-}" != 1 &&
  ! "$base_url" =~ ^https?://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?$ ]]; then
  echo "BASE_URL $base_url is not a loopback URL such as http://127.0.0.1:8000. Set APIDOCS_CHECK_ANY_HOST=1 to allow it." >&2
  exit 2
fi

chromium_bin="${CHROMIUM:-chromium}"
if ! command -v "$chromium_bin" >/dev/null; then
  echo "$chromium_bin not found: install it with apt-get update && apt-get install -y chromium" >&2
  exit 2
fi

# Flags that keep Chromium from contacting any host but the page's.
# Virtual time lets the page finish loading its scripts and the document
# before the DOM is dumped.
chromium_flags=(
  --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --window-size=1280,2000 --virtual-time-budget=5000
)

# Console messages, including Content-Security-Policy violations, go to
# stderr at this log level.
"$chromium_bin" "${chromium_flags[@]}" --user-data-dir="$work/profile" \
  --enable-logging=stderr --v=0 --dump-dom "$page_url" >"$work/dom.html" 2>"$work/chromium.log"
rm -rf "$work/profile"
"$chromium_bin" "${chromium_flags[@]}" --user-data-dir="$work/profile" \
  --screenshot="$screenshot" "$page_url" >/dev/null 2>>"$work/chromium.log"

failed=0
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

operations="$(grep -o 'class="opblock opblock-[a-z]*' "$work/dom.html" | wc -l)"
if [[ "$operations" -eq 0 ]]; then
  fail "the page lists no operation (no element with class \"opblock\")"
fi
if ! grep -q 'data-path="/server/incoming_data"' "$work/dom.html"; then
  fail "the page does not list /server/incoming_data"
fi
if grep -q 'Failed to load API definition' "$work/dom.html"; then
  fail "Swagger UI could not load $base_url/api/schema/?format=json"
fi
if grep -q 'violates the following Content Security Policy' "$work/chromium.log"; then
  grep 'violates the following Content Security Policy' "$work/chromium.log" >&2
  fail "the page tried to load something that its Content-Security-Policy blocks"
fi
if [[ ! -s "$screenshot" ]]; then
  fail "chromium wrote no screenshot to $screenshot"
fi

if [[ "$failed" -ne 0 ]]; then
  echo "rendered DOM: $work/dom.html, chromium log: $work/chromium.log" >&2
  exit 1
fi
echo "ok: $page_url lists $operations operations; screenshot: $screenshot"
