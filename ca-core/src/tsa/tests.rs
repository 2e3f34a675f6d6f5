use std::sync::Arc;

use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use der::asn1::OctetString;
use der::{Decode, Encode};
use time::Duration;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion, TstInfo};

use super::client::{self, ClientError, RequestOptions};
use super::*;
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::cms::tests::{issue_for, Setup, TestKey};
use crate::cms::{self, Digest, Requirements, StoreRevocationSource, TrustStore, VerifyContext};
use crate::identity::Subject;
use crate::profile::ProfileId;

struct Tsa {
    setup: Setup,
    authority: TimeStampAuthority,
    clock: FixedClock,
    /// A signer (individual SIGN certificate) under the same CA.
    signer: (TestKey, crate::issuer::IssuedCertificate),
}

fn tsa_with(settings: TsaSettings) -> Tsa {
    let clock = FixedClock(SystemClock.now());
    let (setup, signer_key, signer_cert) = crate::cms::tests::signer(&clock);
    let key = TestKey::new();
    let cert = crate::issuer::Issuer {
        ca: &setup.issuing,
        store: &setup.store,
        clock: &clock,
        urls: &setup.urls,
        validity: Duration::days(365),
        actor: "t",
        crl_partitions: None,
    }
    .issue(&crate::issuer::IssuanceRequest {
        profile: ProfileId::TimeStamping,
        subject: Subject::Service { common_name: "TSA".into(), organisation: None },
        roles: vec![],
        public_key: crate::signer::Signer::public_key(&key).clone(),
    })
    .unwrap();
    let authority = TimeStampAuthority::new(&cert.der, Arc::new(key), Arc::new(clock), settings).unwrap();
    Tsa { setup, authority, clock, signer: (signer_key, signer_cert) }
}

fn tsa() -> Tsa {
    tsa_with(TsaSettings::default())
}

impl Tsa {
    /// Check `f` with a verifier that trusts the test root, at `now`.
    fn with_ctx<R>(&self, f: impl FnOnce(&VerifyContext<'_>) -> R) -> R {
        let s = &self.setup;
        let trust = TrustStore::new(
            std::slice::from_ref(&s.root.certificate_der),
            std::slice::from_ref(&s.issuing.certificate_der),
        )
        .unwrap();
        let ours = [s.issuing.certificate_der.clone(), s.root.certificate_der.clone()];
        let store = StoreRevocationSource::new(&s.store, &ours).unwrap();
        let ctx = VerifyContext {
            trust: &trust,
            revocation: vec![&store],
            now: self.clock.now() + Duration::minutes(1),
            validation_time: None,
            requirements: Requirements::default(),
            options: Default::default(),
        };
        f(&ctx)
    }
}

fn request_der(imprint_alg: const_oid::ObjectIdentifier, hash: &[u8], edit: impl FnOnce(&mut TimeStampReq)) -> Vec<u8> {
    let mut req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifier { oid: imprint_alg, parameters: None },
            hashed_message: OctetString::new(hash).unwrap(),
        },
        req_policy: None,
        nonce: None,
        cert_req: true,
        extensions: None,
    };
    edit(&mut req);
    req.to_der().unwrap()
}

fn refused(tsa: &Tsa, request: &[u8]) -> (FailureInfo, Vec<String>) {
    let (der, outcome) = tsa.authority.respond(request);
    let response = TimeStampResp::from_der(&der).unwrap();
    assert_eq!(response.status.status, PkiStatus::Rejection);
    assert!(response.time_stamp_token.is_none());
    let fail = FailureInfo::from_bit_string(response.status.fail_info.as_ref().unwrap());
    assert_eq!(fail.len(), 1);
    assert_eq!(outcome, Outcome::Rejected(fail[0]));
    (fail[0], response.status.status_string.unwrap())
}

fn tst_info(token: &[u8]) -> TstInfo {
    let (_, info, _) = cms::read_token(token).unwrap();
    info
}

#[test]
fn a_request_is_stamped_and_the_client_accepts_the_reply() {
    let tsa = tsa();
    for digest in [Digest::Sha256, Digest::Sha384, Digest::Sha512] {
        let request = client::request_for_data(digest, b"document", &RequestOptions::default()).unwrap();
        let (reply, outcome) = tsa.authority.respond(request.der());
        assert_eq!(outcome, Outcome::Granted);
        let stamp = tsa.with_ctx(|ctx| client::check_reply(&request, &reply, ctx)).unwrap();
        assert_eq!(stamp.gen_time, tsa.clock.now());
        assert_eq!(stamp.policy.to_string(), DEFAULT_POLICY);
        assert_eq!(stamp.serial.len(), 20);
        assert!(stamp.tsa.contains("TSA"), "{}", stamp.tsa);
        let info = tst_info(&stamp.token);
        assert!(!info.ordering);
        assert_eq!(info.accuracy.unwrap().seconds, Some(1));
        assert!(info.nonce.is_some());
    }
}

#[test]
fn serials_differ_and_cert_req_decides_whether_the_certificate_is_included() {
    let tsa = tsa();
    let stamp = |cert_req| {
        let options = RequestOptions { cert_req, nonce: false, ..Default::default() };
        let request = client::request_for_data(Digest::Sha256, b"x", &options).unwrap();
        let (reply, _) = tsa.authority.respond(request.der());
        let token = TimeStampResp::from_der(&reply).unwrap().time_stamp_token.unwrap().to_der().unwrap();
        let certificates = cms::SignedCms::parse(&token).unwrap().certificate_count();
        (tst_info(&token), certificates)
    };
    let (a, with_cert) = stamp(true);
    let (b, without_cert) = stamp(false);
    assert_ne!(a.serial_number, b.serial_number);
    assert_eq!((with_cert, without_cert), (1, 0));
    assert!(a.nonce.is_none());
}

#[test]
fn bad_requests_get_the_failinfo_rfc_3161_prescribes() {
    let tsa = tsa();
    let hash = [7u8; 32];
    let ok = request_der(ID_SHA_256, &hash, |_| {});
    assert_eq!(tsa.authority.respond(&ok).1, Outcome::Granted);

    assert_eq!(refused(&tsa, b"not DER").0, FailureInfo::BadDataFormat);
    assert_eq!(refused(&tsa, &ok[..ok.len() - 3]).0, FailureInfo::BadDataFormat);
    // Version 2: SEQUENCE header, then INTEGER 1 becomes INTEGER 2.
    let mut v2 = ok.clone();
    assert_eq!(&v2[2..5], &[0x02, 0x01, 0x01]);
    v2[4] = 2;
    assert_eq!(refused(&tsa, &v2).0, FailureInfo::BadRequest);
    assert_eq!(refused(&tsa, &request_der(ID_SHA_1, &[7u8; 20], |_| {})).0, FailureInfo::BadAlg);
    let with_params = request_der(ID_SHA_256, &hash, |r| {
        r.message_imprint.hash_algorithm.parameters = Some(der::Any::encode_from(&1u8).unwrap())
    });
    assert_eq!(refused(&tsa, &with_params).0, FailureInfo::BadAlg);
    let with_null =
        request_der(ID_SHA_256, &hash, |r| r.message_imprint.hash_algorithm.parameters = Some(der::asn1::Null.into()));
    assert_eq!(tsa.authority.respond(&with_null).1, Outcome::Granted, "NULL parameters are allowed");
    let (fail, text) = refused(&tsa, &request_der(ID_SHA_256, &[7u8; 31], |_| {}));
    assert_eq!(fail, FailureInfo::BadDataFormat);
    assert!(text[0].contains("31 octets"), "{text:?}");
    let other_policy = request_der(ID_SHA_256, &hash, |r| r.req_policy = Some("1.2.3.4".parse().unwrap()));
    assert_eq!(refused(&tsa, &other_policy).0, FailureInfo::UnacceptedPolicy);
    for critical in [true, false] {
        let extension = request_der(ID_SHA_256, &hash, |r| {
            r.extensions = Some(vec![x509_cert::ext::Extension {
                extn_id: "1.2.3.4.5".parse().unwrap(),
                critical,
                extn_value: OctetString::new(vec![5, 0]).unwrap(),
            }])
        });
        assert_eq!(refused(&tsa, &extension).0, FailureInfo::UnacceptedExtension);
    }
}

#[test]
fn an_accepted_policy_is_used_and_others_are_refused_by_the_client_check() {
    let extra: const_oid::ObjectIdentifier = "1.2.398.3.3.1.9".parse().unwrap();
    let settings = TsaSettings { accepted_policies: vec![extra], ..Default::default() };
    let tsa = tsa_with(settings);
    let options = RequestOptions { policy: Some(extra), ..Default::default() };
    let request = client::request_for_data(Digest::Sha256, b"x", &options).unwrap();
    let (reply, _) = tsa.authority.respond(request.der());
    let stamp = tsa.with_ctx(|ctx| client::check_reply(&request, &reply, ctx)).unwrap();
    assert_eq!(stamp.policy, extra);
}

#[test]
fn the_client_refuses_a_reply_to_another_request_or_from_an_untrusted_tsa() {
    let tsa = tsa();
    let first = client::request_for_data(Digest::Sha256, b"one", &RequestOptions::default()).unwrap();
    let (reply, _) = tsa.authority.respond(first.der());
    let same_data = client::request_for_data(Digest::Sha256, b"one", &RequestOptions::default()).unwrap();
    let other_data = client::request_for_data(Digest::Sha256, b"two", &RequestOptions::default()).unwrap();
    tsa.with_ctx(|ctx| {
        assert!(matches!(client::check_reply(&same_data, &reply, ctx), Err(ClientError::Mismatch(m)) if m.contains("nonce")));
        assert!(matches!(client::check_reply(&other_data, &reply, ctx), Err(ClientError::Mismatch(m)) if m.contains("Imprint")));
    });
    // The same reply, checked by a verifier that trusts another root.
    let stranger = tsa_with(TsaSettings::default());
    let untrusted = stranger.with_ctx(|ctx| client::check_reply(&first, &reply, ctx));
    assert!(matches!(untrusted, Err(ClientError::Untrusted(_))), "{untrusted:?}");
    // A rejection comes back as Refused with its failInfo.
    let (rejected, _) = tsa.authority.respond(b"junk");
    let refused = tsa.with_ctx(|ctx| client::check_reply(&first, &rejected, ctx));
    assert!(
        matches!(&refused, Err(ClientError::Refused { fail, .. }) if fail == &[FailureInfo::BadDataFormat]),
        "{refused:?}"
    );
}

#[test]
fn the_authority_needs_its_own_key_and_a_time_stamping_certificate() {
    let clock = FixedClock(SystemClock.now());
    let subject = Subject::Service { common_name: "TSA".into(), organisation: None };
    let (_s, _key, cert) = issue_for(&clock, ProfileId::TimeStamping, subject);
    let other = TimeStampAuthority::new(&cert.der, Arc::new(TestKey::new()), Arc::new(clock), TsaSettings::default());
    assert!(matches!(other, Err(TsaError::KeyMismatch)));
    let person = Subject::Service { common_name: "OCSP".into(), organisation: None };
    let (_s, key, ocsp) = issue_for(&clock, ProfileId::OcspResponder, person);
    let wrong = TimeStampAuthority::new(&ocsp.der, Arc::new(key), Arc::new(clock), TsaSettings::default());
    assert!(matches!(wrong, Err(TsaError::NotTimeStamping(_))));
}

#[test]
fn an_expired_tsa_certificate_stamps_nothing() {
    let mut tsa = tsa();
    tsa.authority.clock = Arc::new(FixedClock(tsa.clock.now() + Duration::days(400)));
    let request = request_der(ID_SHA_256, &[1u8; 32], |_| {});
    assert_eq!(refused(&tsa, &request).0, FailureInfo::SystemFailure);
}

#[test]
fn a_stamp_over_a_signature_makes_it_cades_t() {
    let tsa = tsa();
    let (key, cert) = &tsa.signer;
    let chain = [tsa.setup.issuing.certificate_der.clone()];
    let signed = cms::sign(b"doc", false, key, &cert.der, &chain, tsa.clock.now()).unwrap();
    let signature = &cms::signature_values(&signed).unwrap()[0];
    let request = client::request_for_data(Digest::Sha256, signature, &RequestOptions::default()).unwrap();
    let (reply, _) = tsa.authority.respond(request.der());
    let stamp = tsa.with_ctx(|ctx| client::check_reply(&request, &reply, ctx)).unwrap();
    let stamped = cms::add_signature_timestamp(&signed, 0, &stamp.token).unwrap();
    assert!(cms::add_signature_timestamp(&signed, 1, &stamp.token).is_err(), "one signer only");
    let report = tsa.with_ctx(|ctx| cms::verify(&stamped, None, ctx)).unwrap();
    let timestamp = report.signers[0].timestamp.clone().unwrap();
    assert!(timestamp.valid, "{timestamp:?}");
    assert_eq!(timestamp.time, Some(tsa.clock.now()));
    assert_eq!(report.signers[0].validation_time_source, cms::TimeSource::Timestamp);
}
