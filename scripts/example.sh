#!/usr/bin/env bash
# Run an example topology with all its set-up done first: `npm run example -- duo launch`.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: npm run example -- EXAMPLE COMMAND... (examples: $(cd examples && ls *.ts | sed 's/\.ts$//' | tr '\n' ' '))}
shift
[ -f "examples/$name.ts" ] || { echo "no example named $name in examples/" >&2; exit 2; }
if [ ! -d node_modules ]; then npm ci --no-audit --no-fund >&2; fi
node bin/falcon.js setup >&2
exec npx tsx "examples/$name.ts" "$@"
