//! The reserve → lint → sign → record order: whatever fails, no certificate exists without its
//! record, and a failure after the reservation leaves a reserved, unissued serial behind.

use std::sync::atomic::{AtomicBool, Ordering};

use ca_core::identity::CertificateIdentity;
use ca_core::issuer::{IssuanceRequest, IssueError, Issuer};
use ca_core::profile::lint::{lint, IssuerFacts};
use ca_core::profile::{ProfileId, Role};
use ca_core::serial::SerialNumber;
use ca_core::signer::{SignatureAlgorithm, Signer, SignerError};
use ca_core::store::{
    AuditEntry, AuditEvent, AuditVerification, CertificateQuery, CertificateRecord, CertificateStatus, CrlKind,
    CrlRecord, EntrySink, Issued, ReleaseOutcome, Reservation, Revocation, RevokeOutcome, Store, StoreError,
};
use der::{Decode, Encode};
use fixtures::{fixed_now, individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use spki_alias::SubjectPublicKeyInfoOwned;

mod spki_alias {
    pub use x509_cert::spki::SubjectPublicKeyInfoOwned;
}

/// The real store, except that the final write (record) fails when told to.
struct FailingRecord<'a> {
    inner: &'a dyn Store,
    fail: AtomicBool,
}

impl Store for FailingRecord<'_> {
    fn reserve(&self, r: &[Reservation], a: &[AuditEvent]) -> Result<(), StoreError> {
        self.inner.reserve(r, a)
    }
    fn record_issued(&self, i: &[Issued], a: &[AuditEvent]) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Database("disk full (injected)".into()));
        }
        self.inner.record_issued(i, a)
    }
    fn revoke(&self, s: &SerialNumber, r: &Revocation, a: &AuditEvent) -> Result<RevokeOutcome, StoreError> {
        self.inner.revoke(s, r, a)
    }
    fn certificate(&self, s: &SerialNumber) -> Result<Option<CertificateRecord>, StoreError> {
        self.inner.certificate(s)
    }
    fn find(&self, q: &CertificateQuery) -> Result<Vec<CertificateRecord>, StoreError> {
        self.inner.find(q)
    }
    fn append_audit(&self, e: &AuditEvent) -> Result<AuditEntry, StoreError> {
        self.inner.append_audit(e)
    }
    fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        self.inner.verify_audit()
    }
    fn audit_entries(
        &self,
        q: &ca_core::store::AuditQuery,
        sink: &mut ca_core::store::AuditSink<'_>,
    ) -> Result<(), StoreError> {
        self.inner.audit_entries(q, sink)
    }
    fn audit_hash(&self, seq: i64) -> Result<Option<[u8; 32]>, StoreError> {
        self.inner.audit_hash(seq)
    }
    fn release_hold(&self, s: &SerialNumber, a: &AuditEvent) -> Result<ReleaseOutcome, StoreError> {
        self.inner.release_hold(s, a)
    }
    fn allocate_crl_number(&self, issuer: &str) -> Result<u64, StoreError> {
        self.inner.allocate_crl_number(issuer)
    }
    fn revoked_snapshot(&self, i: &str, p: Option<u32>, sink: &mut EntrySink<'_>) -> Result<i64, StoreError> {
        self.inner.revoked_snapshot(i, p, sink)
    }
    fn revocation_changes(
        &self,
        i: &str,
        p: Option<u32>,
        after: i64,
        sink: &mut EntrySink<'_>,
    ) -> Result<i64, StoreError> {
        self.inner.revocation_changes(i, p, after, sink)
    }
    fn record_crl(&self, crl: &CrlRecord, a: &AuditEvent) -> Result<(), StoreError> {
        self.inner.record_crl(crl, a)
    }
    fn last_crl(&self, i: &str, p: Option<u32>, kind: CrlKind) -> Result<Option<CrlRecord>, StoreError> {
        self.inner.last_crl(i, p, kind)
    }
}

fn request(key: &SoftwareKey) -> IssuanceRequest {
    IssuanceRequest {
        profile: ProfileId::IndividualSign,
        subject: individual(11),
        roles: vec![],
        public_key: key.public_key().clone(),
    }
}

fn reserved(store: &dyn Store) -> Vec<CertificateRecord> {
    store.find(&CertificateQuery { status: Some(CertificateStatus::Reserved), ..Default::default() }).unwrap()
}

#[test]
fn a_failing_final_write_leaves_a_reserved_serial_and_returns_no_certificate() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let store = FailingRecord { inner: &ca.store, fail: AtomicBool::new(true) };
    let issuer = Issuer { store: &store, ..ca.issuer(&clock) };
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();

    let err = issuer.issue(&request(&key)).expect_err("the record step fails");
    assert!(matches!(err, IssueError::Store(_)), "{err}");
    let rows = reserved(&ca.store);
    assert_eq!(rows.len(), 1, "the serial was reserved before signing");
    assert!(rows[0].der.is_none(), "no certificate is stored for it");
    assert!(rows[0].issued_at.is_none());
    let issued =
        ca.store.find(&CertificateQuery { status: Some(CertificateStatus::Issued), ..Default::default() }).unwrap();
    assert_eq!(issued.len(), 2, "only the two CA certificates are issued");
    // The audit trail shows the reservation and no issuance for that serial.
    assert!(ca.store.verify_audit().unwrap().is_intact());

    // With the store healthy again, issuance works and uses a fresh serial.
    store.fail.store(false, Ordering::SeqCst);
    let cert = issuer.issue(&request(&key)).unwrap();
    assert_ne!(cert.serial, rows[0].serial);
    assert_eq!(ca.store.certificate(&cert.serial).unwrap().unwrap().der.as_deref(), Some(cert.der.as_slice()));
}

/// A signer whose token was pulled out of the reader.
struct DeadToken(SubjectPublicKeyInfoOwned, SignatureAlgorithm);
impl Signer for DeadToken {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.1
    }
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.0
    }
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, SignerError> {
        Err(SignerError::KeyUnavailable("token removed (injected)".into()))
    }
}

#[test]
fn a_failing_signer_leaves_a_reserved_serial_and_an_audit_entry() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let dead = DeadToken(ca.issuing.signer().public_key().clone(), ca.issuing.signer().algorithm());
    let broken =
        ca_core::issuer::CertificateAuthority::new("nca", ca.issuing.certificate_der.clone(), Box::new(dead)).unwrap();
    let issuer = Issuer { ca: &broken, ..ca.issuer(&clock) };
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let err = issuer.issue(&request(&key)).unwrap_err();
    assert!(matches!(err, IssueError::Signing { .. }), "{err}");
    assert_eq!(reserved(&ca.store).len(), 1);
    assert!(ca.store.verify_audit().unwrap().is_intact());
}

#[test]
fn bad_requests_are_refused_before_anything_is_reserved() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let issuer = ca.issuer(&clock);
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let before = ca.store.verify_audit().unwrap().entries;
    // Wrong subject kind for the profile, a role the profile does not allow, a CA profile.
    for (profile, roles) in [
        (ProfileId::LegalSign, vec![Role::FirstHead]),
        (ProfileId::IndividualSign, vec![Role::Hr]),
        (ProfileId::IssuingCa, vec![]),
    ] {
        let r = IssuanceRequest { profile, roles, ..request(&key) };
        assert!(issuer.issue(&r).is_err(), "{profile}");
    }
    assert_eq!(ca.store.verify_audit().unwrap().entries, before);
    assert!(reserved(&ca.store).is_empty());
}

#[test]
fn lint_catches_a_certificate_that_departs_from_its_profile() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let cert = ca.issuer(&clock).issue(&request(&key)).unwrap();
    let (nb, na) = ca.issuing.validity();
    let facts = IssuerFacts {
        subject: ca.issuing.subject(),
        key_id: Some(ca.issuing.key_id()),
        algorithm: ca.issuing.signer().algorithm(),
        validity: Some((nb.unix_timestamp(), na.unix_timestamp())),
    };
    let profile = ProfileId::IndividualSign.profile();
    assert!(lint(&cert.certificate.tbs_certificate, &profile, &facts).is_empty());

    // Against another profile, the same certificate fails.
    let problems = lint(&cert.certificate.tbs_certificate, &ProfileId::IndividualAuth.profile(), &facts);
    assert!(problems.iter().any(|p| p.contains("keyUsage")), "{problems:?}");

    // Extensions out of order, or missing, are caught.
    let mut tbs = cert.certificate.tbs_certificate.clone();
    tbs.extensions.as_mut().unwrap().swap(0, 1);
    assert!(lint(&tbs, &profile, &facts).iter().any(|p| p.contains("order")));
    let mut tbs = cert.certificate.tbs_certificate.clone();
    tbs.extensions.as_mut().unwrap().retain(|e| e.extn_id.to_string() != "2.5.29.35");
    assert!(lint(&tbs, &profile, &facts).iter().any(|p| p.contains("authorityKeyIdentifier")));

    // Reading the identity back gives what went in.
    let id = CertificateIdentity::from_certificate(
        &x509_cert::Certificate::from_der(&cert.certificate.to_der().unwrap()).unwrap(),
    );
    let fixtures_person = fixtures::person(11);
    assert_eq!(id.iin, Some(fixtures_person.iin));
    assert_eq!(id.surname.as_deref(), Some(fixtures_person.surname.to_uppercase().as_str()));
    assert_eq!(id.email, fixtures_person.email);
    assert_eq!(id.roles, vec![Role::Individual]);
}

#[test]
fn pipelined_issuance_records_every_delivered_certificate_and_stops_at_an_error() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let issuer = ca.issuer(&clock);
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let batches: Vec<Vec<IssuanceRequest>> = (0..5).map(|_| (0..10).map(|_| request(&key)).collect()).collect();
    let mut delivered = Vec::new();
    let n = issuer.issue_pipelined(batches, |b| delivered.extend(b)).unwrap();
    assert_eq!(n, 50);
    assert_eq!(delivered.len(), 50);
    for c in &delivered {
        let rec = ca.store.certificate(&c.serial).unwrap().unwrap();
        assert_eq!(rec.status, CertificateStatus::Issued);
        assert_eq!(rec.der.as_deref(), Some(c.der.as_slice()));
    }

    // The third batch is invalid: the first two are delivered, the error is returned, nothing
    // after it is issued.
    let mut batches: Vec<Vec<IssuanceRequest>> = (0..5).map(|_| (0..4).map(|_| request(&key)).collect()).collect();
    batches[2][1].profile = ProfileId::LegalSign;
    let mut delivered = 0;
    let err = issuer.issue_pipelined(batches, |b| delivered += b.len()).unwrap_err();
    assert!(matches!(err, IssueError::SubjectKind { .. }), "{err}");
    assert_eq!(delivered, 8);
    assert!(reserved(&ca.store).is_empty(), "the invalid batch was refused before reservation");
    assert!(ca.store.verify_audit().unwrap().is_intact());
}

fn ca_serial(ca: &ca_core::issuer::CertificateAuthority) -> SerialNumber {
    SerialNumber::from_bytes(ca.certificate.tbs_certificate.serial_number.as_bytes()).unwrap()
}

/// Ask `responder` about `serial` of the issuing CA; the single response's status.
fn ocsp_status(ca: &TestCa, responder: &ca_core::ocsp::Responder, serial: &SerialNumber) -> x509_ocsp::CertStatus {
    use x509_ocsp::{BasicOcspResponse, CertId, OcspRequest, OcspResponse, Request, TbsRequest};
    let sha1 = |data: &[u8]| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let tbs = &ca.issuing.certificate.tbs_certificate;
    let req_cert = CertId {
        hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: const_oid_sha1(),
            parameters: Some(der::Any::from(der::asn1::Null)),
        },
        issuer_name_hash: der::asn1::OctetString::new(sha1(&tbs.subject.to_der().unwrap()).as_ref()).unwrap(),
        issuer_key_hash: der::asn1::OctetString::new(
            sha1(tbs.subject_public_key_info.subject_public_key.raw_bytes()).as_ref(),
        )
        .unwrap(),
        serial_number: serial.to_x509(),
    };
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Default::default(),
            requestor_name: None,
            request_list: vec![Request { req_cert, single_request_extensions: None }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    let (der, _) = responder.respond(&request.to_der().unwrap());
    let response = OcspResponse::from_der(&der).unwrap();
    let bytes = response.response_bytes.expect("a successful response");
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    basic.tbs_response_data.responses[0].cert_status
}

fn const_oid_sha1() -> der::oid::ObjectIdentifier {
    der::oid::ObjectIdentifier::new_unwrap("1.3.14.3.2.26")
}

#[test]
fn nothing_is_issued_under_a_revoked_ca_and_ocsp_never_calls_its_certificates_good() {
    use std::sync::Arc;
    let clock = fixed_now();
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let leaf = ca.issuer(&clock).issue(&request(&key)).expect("issued while the CA stands");
    let (responder_key, responder_cert) = ca.ocsp_responder(KeyAlgorithm::P256);
    let store: Arc<dyn Store> = Arc::new(ca_core::store::SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    let responder = ca_core::ocsp::Responder::new(
        "nca",
        &ca.issuing.certificate_der,
        &responder_cert.der,
        Arc::new(responder_key),
        store,
        Arc::new(clock),
    )
    .unwrap();
    assert!(matches!(ocsp_status(&ca, &responder, &leaf.serial), x509_ocsp::CertStatus::Good(_)));

    // The issuing CA's own certificate is revoked (a compromise).
    let reason = ca_core::revocation::RevocationReason::KeyCompromise;
    ca_core::revocation::revoke(&ca.store, &clock, &ca_serial(&ca.issuing), reason, None, "test").unwrap();
    let err = ca.issuer(&clock).issue(&request(&key)).unwrap_err();
    assert!(matches!(err, IssueError::IssuerRevoked { .. }), "{err}");
    assert!(err.to_string().contains("the certificate of CA nca"), "{err}");
    assert!(reserved(&ca.store).is_empty(), "refused before anything was reserved");
    match ocsp_status(&ca, &responder, &leaf.serial) {
        x509_ocsp::CertStatus::Revoked(info) => {
            assert_eq!(info.revocation_reason, Some(x509_cert::ext::pkix::CrlReason::CaCompromise))
        }
        other => panic!("a certificate under a revoked CA is not good: {other:?}"),
    }

    // Revoking the root stops the issuing CA under it, and the root itself.
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let reason = ca_core::revocation::RevocationReason::CessationOfOperation;
    ca_core::revocation::revoke(&ca.store, &clock, &ca_serial(&ca.root), reason, None, "test").unwrap();
    let err = ca.issuer(&clock).issue(&request(&key)).unwrap_err();
    assert!(matches!(err, IssueError::IssuerRevoked { .. }) && err.to_string().contains("CA above nca"), "{err}");
    let err = ca
        .root
        .create_subordinate(
            individual_ca(),
            key.public_key().clone(),
            time::Duration::days(30),
            &ca.store,
            &clock,
            &ca.urls,
            "test",
            ca_core::profile::CaPolicies::default(),
        )
        .unwrap_err();
    assert!(matches!(err, IssueError::IssuerRevoked { .. }), "{err}");

    // An expired issuing CA refuses too, and says how to go on.
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let later = ca_core::clock::FixedClock(ca.issuing.validity().1 + time::Duration::days(1));
    let err = ca.issuer(&later).issue(&request(&key)).unwrap_err();
    assert!(matches!(err, IssueError::IssuerNotValid { .. }) && err.to_string().contains("renew"), "{err}");
}

fn individual_ca() -> ca_core::identity::Subject {
    ca_core::identity::Subject::Service { common_name: "ANOTHER CA".into(), organisation: None }
}
