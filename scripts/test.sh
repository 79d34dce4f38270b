#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need
# (Node deps incl. the pinned Node 24, Prosody, InspIRCd) and runs the
# typecheck, the unit tests and the integration tests against real servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# npm scripts run on the pinned Node 24 (node_modules/.bin comes first on their PATH).
npm run --silent typecheck
npm test
