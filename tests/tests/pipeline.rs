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
