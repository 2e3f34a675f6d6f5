#!/usr/bin/env bash
# Set up the machine and run the demo CA lifecycle on the embedded SQLite store.
# The CA passphrase and the applicant's PKCS#12 password come from the environment (never argv);
# the defaults below are for this throwaway demo only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
dir="${1:-$(mktemp -d)/demo-ca}"
export CA_PASSPHRASE="${CA_PASSPHRASE:-demo passphrase, not for production}"
export CA_P12_PASSWORD="${CA_P12_PASSWORD:-demo applicant password}"
cargo build --release --locked -p ca-cli
./target/release/ca --dir "$dir" demo
echo
echo "The demo CA is in $dir; try: ./target/release/ca --dir $dir list"

# The e-government portal on the same kind of CA directory: registration by EDS, password
# login, lockout, EDS login, recovery by email, counter registration.
PORTAL_DEMO_PROFILE=release ./scripts/portal-demo.sh "$(dirname "$dir")/portal-demo"
