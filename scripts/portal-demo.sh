#!/usr/bin/env bash
# The portal demo against a fresh CA directory: register by EDS (a signature made by
# `openssl cms -sign` with a key the CA issued), log in by password, lock password login out
# with ten wrong passwords (EDS login still works), recover the password by email (the notice
# lands in a maildir; the generated password must be changed), and register a person at a
# counter workstation (`portal-server counter-register`, the portal's answer signed by its own
# EDS and verified). Uses the synthetic registry of fixtures/ (no real person).
# Passwords and passphrases below are for this throwaway demo only.
#   ./scripts/portal-demo.sh [WORK_DIR]   (needs openssl, curl, python3: scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
export CA_PASSPHRASE="${CA_PASSPHRASE:-demo passphrase, not for production}"
export CA_P12_PASSWORD="${CA_P12_PASSWORD:-demo applicant password}"
export CARGO_INCREMENTAL=0
profile="${PORTAL_DEMO_PROFILE:-debug}"
if [ "$profile" = release ]; then
  cargo build --release --locked -q -p ca-cli -p portal
else
  cargo build --locked -q -p ca-cli -p portal
fi
ca() { "./target/$profile/ca" --dir "$work/ca" "$@"; }
portal_server="./target/$profile/portal-server"
say() { printf '\n== %s\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
# Person n of the synthetic registry: IIN, surname, given name, document number, issue date.
person() { awk -F, -v n="$1" '$1=="person" { if (i++ == n) { print $2, $3, $4, $10, $11; exit } }' fixtures/data/registry.csv; }
entity() { awk -F, -v n="$1" '$1=="entity" { if (i++ == n) { print $2; exit } }' fixtures/data/registry.csv; }

say "a CA directory (P-384 root, P-256 issuing CA), the registry, certificates and CRLs"
ca init --root-key p384 --issuing-key p256 >/dev/null
ca registry import fixtures/data/registry.csv >/dev/null
read -r iin surname given doc issued <<<"$(person 20)"
p12=$(ca --json issue --profile individual-auth --iin "$iin" --surname "$surname" --given-name "$given" \
      --generate-key --key-algorithm p256 | json 'd["pkcs12"]')
read -r head_iin head_surname head_given _ _ <<<"$(person 100)"
portal_bin=$(entity 0)
ca system init --iin "$head_iin" --surname "$head_surname" --given-name "$head_given" --bin "$portal_bin" \
   --org "PORTAL OPERATOR" --role signing-right --key-algorithm p256 >/dev/null
read -r ws_iin ws_surname ws_given _ _ <<<"$(person 21)"
ws_bin=$(entity 1)
ws_p12=$(ca --json issue --profile legal-sign --iin "$ws_iin" --surname "$ws_surname" --given-name "$ws_given" \
         --bin "$ws_bin" --org "STATE CORPORATION" --role employee --generate-key --key-algorithm p256 | json 'd["pkcs12"]')
ca crl publish >/dev/null
echo "CA in $work/ca; applicant $iin ($surname $given); counter workstation of BIN $ws_bin"

say "portal-server against the CA directory's certificates and CRLs"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/portal.toml" <<TOML
listen = "127.0.0.1:$port"
store = "portal.db"
[trust]
ca_dir = "ca"
[registry]
csv = "$(pwd)/fixtures/data/registry.csv"
[mail]
maildir = "mail"
[signing]
certificate = "ca/system/system.pem"
key = "ca/system/system.key"
passphrase_env = "CA_PASSPHRASE"
chain = ["ca/certs/nca.pem"]
[[counter.workstations]]
bin = "$ws_bin"
role = "employee"
TOML
PORTAL_LOG=warn "$portal_server" serve --config "$work/portal.toml" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
api="http://127.0.0.1:$port/api/v1"
post() { curl -s -X POST -H 'Content-Type: application/json' "${@:3}" --data "$2" "$api/$1"; }

say "registration by EDS: the statement (with the challenge) signed by openssl with the AUTH key"
openssl pkcs12 -in "$p12" -passin env:CA_P12_PASSWORD -nodes -nocerts -out "$work/auth.key" 2>/dev/null
openssl pkcs12 -in "$p12" -passin env:CA_P12_PASSWORD -nokeys -clcerts -out "$work/auth.pem" 2>/dev/null
sign() { openssl cms -sign -binary -nodetach -md sha256 -signer "$work/auth.pem" -inkey "$work/auth.key" \
           -certfile "$work/ca/certs/nca.pem" -outform DER | base64 -w0; }
password='Степной7Ветер'
email="person20@example.kz"
challenge=$(post challenge '' | json 'd["challenge"]')
post registration/statement "{\"kind\":\"individual\",\"iin\":\"$iin\",\"email\":\"$email\",\"challenge\":\"$challenge\"}" \
  | json 'd["statement"]' | base64 -d >"$work/statement.txt"
cat "$work/statement.txt"
cms=$(sign <"$work/statement.txt")
post registration "{\"kind\":\"individual\",\"iin\":\"$iin\",\"email\":\"$email\",\"password\":\"$password\",\"password_repeat\":\"$password\",\"agreement_accepted\":true,\"challenge\":\"$challenge\",\"cms\":\"$cms\"}" | json 'd["message"]'

say "login by IIN and password"
post login/password "{\"login\":\"$iin\",\"password\":\"$password\"}" | json '"session until " + d["expires_at"]'

say "ten wrong passwords, then the right one"
for i in $(seq 10); do post login/password "{\"login\":\"$iin\",\"password\":\"Wrong${i}password\"}" >/dev/null; done
post login/password "{\"login\":\"$iin\",\"password\":\"$password\"}" | json 'd["message"]'

say "login by EDS still works (the challenge signed with the AUTH key)"
challenge=$(post challenge '' | json 'd["challenge"]')
cms=$(printf '%s' "$challenge" | base64 -d | sign)
post login/eds "{\"cms\":\"$cms\"}" | json '"logged in as " + d["login"]'

say "recovery by email: IIN, identity document number and its issue date"
post recovery/email "{\"iin\":\"$iin\",\"document_number\":\"$doc\",\"document_issued\":\"$issued\"}" | json 'd["message"]'
generated=$(python3 - "$work/mail/new" <<'PY'
import base64, email, pathlib, sys
for f in pathlib.Path(sys.argv[1]).iterdir():
    body = email.message_from_bytes(f.read_bytes()).get_payload(decode=True).decode()
    print(next(l for l in body.splitlines() if l.startswith("Новый пароль: ")).split(": ", 1)[1])
PY
)
echo "the maildir holds the notice; the generated password is $generated"
token=$(post login/password "{\"login\":\"$iin\",\"password\":\"$generated\"}" | json 'd["token"] if d["must_change_password"] else ""')
new='Горный9Ручей'
post password/change "{\"current_password\":\"$generated\",\"new_password\":\"$new\",\"new_password_repeat\":\"$new\"}" \
  -H "Authorization: Bearer $token" | json 'd["message"]'

say "registration at a counter: a request signed by the workstation, the answer signed by the portal"
read -r c_iin c_surname c_given _ _ <<<"$(person 22)"
WORKSTATION_P12_PASSWORD="$CA_P12_PASSWORD" "$portal_server" counter-register --portal "http://127.0.0.1:$port" \
  --p12 "$ws_p12" --ca-dir "$work/ca" --iin "$c_iin" --surname "$c_surname" --given-name "$c_given" \
  --email person22@example.kz --phone "+77010000022" --user-agreement --personal-data

say "metrics"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^portal_(logins|password_lockouts|registrations)'
echo
echo "The portal's database and maildir are in $work"
