#!/usr/bin/env bash
# Replaces the Swagger UI files in apidocs/swagger with those of one
# swagger-ui-dist release from the npm registry.
#
# Usage: apidocs/update-swagger-ui.sh [VERSION]
#
# VERSION defaults to the one in apidocs/swagger/VERSION, so running the
# script without an argument fetches the files that are checked in. After
# changing the version, run "go test ./apidocs/..." and
# apidocs/check-swagger-ui.sh, and look at /swagger/ in a browser.
set -euo pipefail

swagger_dir="$(cd "$(dirname "$0")" && pwd)/swagger"
version="${1:-$(cat "$swagger_dir/VERSION")}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "invalid version \"$version\": expected MAJOR.MINOR.PATCH, such as 5.35.0" >&2
  exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack downloads the package tarball without installing it, so no
# package script runs.
(cd "$work" && npm pack --silent --ignore-scripts "swagger-ui-dist@$version" >/dev/null)
tar -xzf "$work/swagger-ui-dist-$version.tgz" -C "$work"

# Only the files that /swagger/ serves, and the licence texts.
files=(
  swagger-ui.css
  swagger-ui-bundle.js
  swagger-ui-bundle.js.LICENSE.txt
  favicon-32x32.png
  favicon-16x16.png
  LICENSE
  NOTICE
)
for file in "${files[@]}"; do
  cp "$work/package/$file" "$swagger_dir/$file"
done
echo "$version" > "$swagger_dir/VERSION"
echo "apidocs/swagger now has swagger-ui-dist $version"
