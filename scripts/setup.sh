#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian/Ubuntu machine:
# the Rust toolchain is expected (rustup); system tools come from apt.
#   openssl   - interoperability oracle (verify, x509, pkcs12, crl, ocsp, cms)
#   softhsm2  - PKCS#11 token for the hsm tests
#   opensc    - pkcs11-tool, to inspect what we write to tokens
#   sqlite3   - to look into the embedded store by hand
#   python3   - its debugging SMTP server stands in for the mail relay in a test
#   curl      - the portal demo (scripts/portal-demo.sh) talks HTTP with it
#   postgresql - the deployment store; tests start their own throwaway clusters
#                (initdb in a temp dir; fixtures::postgres), never the packaged one
#   xmlsec1   - interoperability oracle for XML signatures (--sign, --verify)
#   fonts-dejavu-core - DejaVu Sans, embedded in the State Corporation receipts as PDF (Cyrillic)
#   poppler-utils     - pdftotext, which reads those PDFs back in a test
#   chromium chromium-driver - headless Chromium and its WebDriver for the page tests (browser-test)
# Idempotent: re-running installs nothing new.
set -euo pipefail

packages=(openssl softhsm2 opensc sqlite3 python3 postgresql curl xmlsec1 fonts-dejavu-core poppler-utils chromium chromium-driver ca-certificates pkg-config build-essential)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
openssl version
echo "setup complete"
