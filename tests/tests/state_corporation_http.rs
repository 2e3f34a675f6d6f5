//! A State Corporation (ЦОН) counter over HTTP: its system submits with its bearer token —
//! without consent refused (403) and nothing stored; an incomplete package answered 422 with the
//! numbered receipt of refusal; a complete one registered (201) with the receipt of acceptance.
//! Confirmation over the admin API by a State Corporation operator's openssl-made CMS (a CA
//! operator is refused), issuance for the applicant's own keys, `openssl verify`.

mod common;

use std::sync::Arc;

use ca_core::clock::{Clock, SystemClock};
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::{ProfileId, Role};
use ca_core::ra::{
    Expectation, RaStore, RegistrationAuthority, SignatureCheck, SignatureProblem, SignedPayload, SignerFacts,
    StoreRegistry,
};
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use ca_tests::{openssl_csr, openssl_ok, write_pem};
use common::Holder;
use fixtures::registry as reg;
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};

const CON_TOKEN: &str = "state-corporation-system-token";

/// The RA's signature check is not reached when issuing.
struct NoSignatures;
impl SignatureCheck for NoSignatures {
    fn check(&self, _: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        Err(SignatureProblem::Unavailable("not used".into()))
    }
}

fn holder(ca: &fixtures::TestCa, n: u32, roles: Vec<Role>) -> Holder {
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let cert = ca
        .issuer(&SystemClock)
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualSign,
            subject: fixtures::individual(n),
            roles,
            public_key: key.public_key().clone(),
        })
        .unwrap();
    Holder { key, cert }
}

#[test]
fn a_state_corporation_counter_over_http() {
    let ca = fixtures::TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let r = common::start_with(ca, None, |services| {
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(CON_TOKEN.as_bytes()));
        services.api_tokens.set(Arc::new(ca_server::ApiTokens::parse(&digest).unwrap()));
    });
    let store = SqliteStore::open(&r.ca.dir.path().join("ca.db")).unwrap();
    store.import_registry(&ca_core::ra::csv::parse(&reg::registry_csv()).unwrap(), "test").unwrap();
    let dir = r.ca.dir.path();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let (auth, sign) = (openssl_csr(dir, "auth", &ec), openssl_csr(dir, "sign", &ec));
    let apply = |intake: Value| -> (u16, Value) {
        let body = json!({
            "kind": "new-individual",
            "iin": fixtures::person(90).iin.as_string(),
            "email": "applicant90@mail.example.test",
            "channel": "state-corporation",
            "csr_auth": String::from_utf8(auth.clone()).unwrap(),
            "csr_sign": String::from_utf8(sign.clone()).unwrap(),
            "state_corporation": intake,
        });
        let auth = format!("Bearer {CON_TOKEN}");
        let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
        common::http(r.port, "POST", "/api/v1/applications", &headers, body.to_string().as_bytes())
    };
    let consent = json!({ "taken_at": ca_core::clock::rfc3339(SystemClock.now()) });

    // Without the bearer token of the State Corporation's system: 401.
    let iin = fixtures::person(90).iin.as_string();
    let (status, _) = common::post_json(
        &r,
        "/api/v1/applications",
        &json!({ "kind": "card", "iin": iin,
        "channel": "state-corporation", "state_corporation": { "operator": "x", "consent": consent } }),
    );
    assert_eq!(status, 401);
    // No consent: 403 with the document's wording; nothing registered.
    let (status, v) =
        apply(json!({ "operator": "con-operator-1", "documents": ["identity-document", "application-form"] }));
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().starts_with("Отказано в приеме заявления: отсутствует письменное согласие"),
        "{v}"
    );
    assert!(store.applications(&Default::default()).unwrap().is_empty());
    // Incomplete: 422 with the receipt of refusal.
    let (status, v) =
        apply(json!({ "operator": "con-operator-1", "consent": consent, "documents": ["identity-document"] }));
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["receipt"]["kind"], "refusal");
    assert_eq!(v["receipt"]["missing"], json!(["application-form"]));
    assert!(v["receipt_text"].as_str().unwrap().contains("об отказе в приеме документов"), "{v}");
    assert!(store.applications(&Default::default()).unwrap().is_empty());
    // Complete: 201 with the receipt of acceptance and the status token.
    let (status, v) = apply(json!({ "operator": "con-operator-1", "consent": consent,
        "documents": ["identity-document", "application-form"] }));
    assert_eq!(status, 201, "{v}");
    let number = v["application"]["number"].as_str().unwrap().to_owned();
    assert_eq!(v["application"]["channel"], "state-corporation");
    assert_eq!(v["receipt"]["kind"], "acceptance");
    assert_eq!(v["receipt"]["application"], number.as_str());
    assert!(v["status_token"].is_string());

    // The CA operator may not confirm it (403, unchanged); the State Corporation operator does.
    let a = store.application(&number.parse().unwrap()).unwrap().unwrap();
    let registry = StoreRegistry(&store);
    let ra = RegistrationAuthority {
        store: &store,
        certificates: &store,
        registry: &registry,
        signatures: &NoSignatures,
        clock: &SystemClock,
        install_url: "",
        install_ttl: time::Duration::hours(1),
    };
    let statement = ra.statement("operator-confirm", &a).canonical();
    let path = format!("/api/v1/admin/applications/{number}/confirm");
    let pkcs7 = [("Content-Type", "application/pkcs7-mime")];
    let provider = holder(&r.ca, 301, vec![Role::CaOperator]);
    let cms = common::openssl_sign(&r.ca, &provider, "provider", &statement, true);
    let (status, v) = common::http(r.port, "POST", &path, &pkcs7, &cms);
    assert_eq!(status, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains("state-corporation-operator"), "{v}");
    assert_eq!(store.application(&a.number).unwrap().unwrap().state, ca_core::ra::ApplicationState::AwaitingOperator);
    let con = holder(&r.ca, 302, vec![Role::StateCorporationOperator]);
    let cms = common::openssl_sign(&r.ca, &con, "con", &statement, true);
    let (status, v) = common::http(r.port, "POST", &path, &pkcs7, &cms);
    assert_eq!((status, v["application"]["state"].as_str()), (200, Some("confirmed")), "{v}");

    // Issued for the applicant's own keys; openssl verifies the chain.
    let issuer = r.ca.issuer(r.clock.as_ref());
    let issued = ra.issue_for_applicant_keys(&a.number, &issuer, "worker").unwrap();
    let root = write_pem(dir, "root.pem", "CERTIFICATE", &r.ca.root.certificate_der);
    let issuing = write_pem(dir, "issuing.pem", "CERTIFICATE", &r.ca.issuing.certificate_der);
    for serial in &issued.application.serials {
        let record = ca_core::store::Store::certificate(&store, serial).unwrap().unwrap();
        let leaf = write_pem(dir, &format!("{}.pem", serial.to_hex()), "CERTIFICATE", record.der.as_deref().unwrap());
        let out = openssl_ok(&[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            issuing.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ]);
        assert!(out.contains(": OK"), "{out}");
    }
    assert_eq!(issued.application.serials.len(), 2);
}
