//! How fresh a revocation status is, in the verification API's answers: `revocation.as_of` (the
//! time up to which the source's data is complete) and `revocation.age_secs` (from then to the
//! verification). From the CA's store: the verification's own time; from a CRL: its thisUpdate
//! (the delta's when one applied); from a source that lags (a read replica): the time it says.

use std::sync::Arc;

use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::cms::{self, PathOptions, Requirements, RevocationFacts, RevocationSource};
use ca_core::profile::ProfileId;
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;

mod common;
use common::*;

fn time_of(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap_or_else(|| panic!("a time, got {v}")), &Rfc3339).unwrap()
}

#[test]
fn a_status_from_the_store_is_as_of_the_verification() {
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let h = issue(&r.ca, &SystemClock, ProfileId::IndividualAuth, 30, KeyAlgorithm::P256);
    let before = SystemClock.now().replace_nanosecond(0).unwrap();
    let (status, v) = post_json(&r, "/api/v1/x509/verify", &json!({ "certificate": b64(&h.cert.der) }));
    let after = SystemClock.now();
    assert_eq!(status, 200);
    assert_eq!(v["valid"], true, "{v:#}");
    let revocation = &v["revocation"];
    assert_eq!(revocation["source"], "store", "{v:#}");
    let as_of = time_of(&revocation["as_of"]);
    assert!(before <= as_of && as_of <= after, "{as_of} within [{before}, {after}]");
    assert_eq!(revocation["age_secs"], 0, "{v:#}");

    let cms = openssl_sign(&r.ca, &h, "age", CONTENT, true);
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&cms) }));
    let revocation = &v["signers"][0]["revocation"];
    assert_eq!((revocation["source"].as_str(), revocation["age_secs"].as_u64()), (Some("store"), Some(0)), "{v:#}");
    assert!(time_of(&revocation["as_of"]) >= before, "{v:#}");

    let (_, openapi) = http(r.port, "GET", "/api/v1/openapi.json", &[], b"");
    let schema = &openapi["components"]["schemas"]["Revocation"]["properties"];
    assert!(schema["as_of"].is_object() && schema["age_secs"].is_object(), "{schema}");
}

#[test]
fn a_status_from_a_crl_is_as_of_its_this_update() {
    // A foreign trusted CA whose distribution points cannot be reached: the relying party sends
    // its CRLs, issued 90 minutes before the verification.
    let now = SystemClock.now();
    let urls = ca_core::config::PublicationUrls::under("http://127.0.0.1:1");
    let foreign = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now), urls);
    let h = issue(&foreign, &FixedClock(now), ProfileId::IndividualSign, 31, KeyAlgorithm::P256);
    let (root, issuing) = (foreign.root.certificate_der.clone(), foreign.issuing.certificate_der.clone());
    let r = start_with(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None, |services| {
        let verifier = ca_server::Verifier::new(
            std::slice::from_ref(&root),
            std::slice::from_ref(&issuing),
            Vec::new(),
            Arc::new(SystemClock),
        )
        .unwrap();
        services.verifier = Some(Arc::new(verifier));
    });
    let this = (now - Duration::minutes(90)).replace_nanosecond(0).unwrap();
    let crl = |authority: &ca_core::issuer::CertificateAuthority| {
        let params = crl::CrlParams {
            issuer: authority.subject().clone(),
            authority_key_id: authority.key_id().to_vec(),
            crl_number: 1,
            this_update: this,
            next_update: this + Duration::days(1),
            delta_base: None,
            issuing_distribution_point: None,
            freshest_crl: None,
        };
        b64(&crl::build_crl(&params, std::iter::empty::<crl::CrlEntry<&[u8]>>(), authority.signer()).unwrap())
    };
    let crls = json!([crl(&foreign.root), crl(&foreign.issuing)]);
    let (status, v) =
        post_json(&r, "/api/v1/x509/verify", &json!({ "certificate": b64(&h.cert.der), "crls": crls.clone() }));
    assert_eq!(status, 200);
    assert_eq!(v["valid"], true, "{v:#}");
    let revocation = &v["revocation"];
    assert_eq!(revocation["source"], "CRL", "{v:#}");
    assert_eq!(time_of(&revocation["as_of"]), this, "{v:#}");
    let age = revocation["age_secs"].as_u64().unwrap();
    assert!((90 * 60..90 * 60 + 60).contains(&age), "90 minutes old, said {age} s");

    let cms = ca_core::cms::sign(CONTENT, false, &h.key, &h.cert.der, std::slice::from_ref(&issuing), now).unwrap();
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&cms), "crls": crls }));
    assert_eq!(v["valid"], true, "{v:#}");
    assert_eq!(time_of(&v["signers"][0]["revocation"]["as_of"]), this, "{v:#}");
}

/// A source that answers from data complete only up to a time (as a read replica's store
/// answers through `states_as_of`): the report states that time and the age.
struct LaggingSource(OffsetDateTime);

impl RevocationSource for LaggingSource {
    fn name(&self) -> &str {
        "store"
    }

    fn status(&self, _: &Certificate, _: &Certificate) -> Result<Option<RevocationFacts>, String> {
        Ok(Some(RevocationFacts::Good))
    }

    fn statuses_as_of(
        &self,
        links: &[(&Certificate, &Certificate)],
    ) -> (Vec<Result<Option<RevocationFacts>, String>>, Option<OffsetDateTime>) {
        (self.statuses(links), Some(self.0))
    }
}

#[test]
fn a_status_from_a_lagging_source_is_as_of_what_it_says() {
    let clock = FixedClock(SystemClock.now().replace_nanosecond(0).unwrap());
    let ca = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &clock);
    let h = issue(&ca, &clock, ProfileId::IndividualSign, 32, KeyAlgorithm::P256);
    let now = clock.now();
    let trust = cms::TrustStore::new(
        std::slice::from_ref(&ca.root.certificate_der),
        std::slice::from_ref(&ca.issuing.certificate_der),
    )
    .unwrap();
    let replica = LaggingSource(now - Duration::seconds(4));
    let signature = cms::sign(CONTENT, false, &h.key, &h.cert.der, &[], now).unwrap();
    let ctx = cms::VerifyContext {
        trust: &trust,
        revocation: vec![&replica],
        now,
        validation_time: Some(now),
        requirements: Requirements::default(),
        options: PathOptions::default(),
    };
    let v = cms::verify(&signature, None, &ctx).unwrap();
    assert!(v.valid, "{:?}", v.signers[0].findings);
    let revocation = &v.signers[0].revocation;
    assert_eq!((revocation.as_of, revocation.age_secs), (Some(now - Duration::seconds(4)), Some(4)));
}
