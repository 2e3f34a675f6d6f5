//! Key-store delivery and recovery of applications a crashed worker left `issuing`/`revoking`.
//!
//! An issuance with server-generated keys runs claim → reserve → sign → record → deliver the key
//! stores → `issued` with the notice. The private keys exist only in the worker's memory until
//! the key stores (encrypted with the applicant's password) are delivered, and the store never
//! holds them. So after a crash the application is `issuing` and one of two things holds for
//! the certificates issued under that claim:
//! - every key store was delivered complete: recovery *completes* the application (`issued`,
//!   notice queued once), exactly as the worker would have;
//! - otherwise a key is lost: recovery *revokes* every certificate of the claim
//!   (cessationOfOperation), takes back any key store that was delivered, and gives the
//!   application back (`confirmed`) to be issued again with new keys.
//!
//! No certificate is left issued without its key store, and no notice announces one.

use super::application::{Application, ApplicationKind, ApplicationNumber, ApplicationState, Step};
use super::service::RegistrationAuthority;
use super::RaError;
use crate::issuer::IssuedCertificate;
use crate::profile::ProfileId;
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::{CertificateQuery, CertificateRecord, CertificateStatus};

/// Where the key stores of an issuance go (PKCS#12 files, a download area …). Implemented by
/// the caller, which holds the private keys; the RA sees certificates only.
pub trait KeyStoreDelivery {
    /// Hand over the key stores of `certificates` (AUTH, SIGN) durably: when this returns `Ok`
    /// each is complete where the applicant gets it; a crash inside leaves each one complete or
    /// absent.
    fn deliver(&self, certificates: &[IssuedCertificate]) -> Result<(), String>;
    /// Whether the key store of `certificate` was handed over complete (used by recovery).
    fn delivered(&self, certificate: &IssuedCertificate) -> Result<bool, String>;
    /// Take back the key store of a certificate that is being revoked, if there is one.
    fn withdraw(&self, certificate: &IssuedCertificate) -> Result<(), String>;
    /// Where the key stores go (a directory), recorded with the claim so that recovery looks
    /// in the same place.
    fn location(&self) -> String;
}

/// What [`RegistrationAuthority::recover`] did.
#[derive(Clone, Debug)]
pub struct Recovered {
    pub application: Application,
    /// Every key store was delivered: the application was completed (`issued`).
    pub completed: bool,
    /// Certificates revoked because their keys were lost.
    pub revoked: Vec<SerialNumber>,
}

const KEY_STORE_PROFILES: [ProfileId; 4] =
    [ProfileId::IndividualAuth, ProfileId::IndividualSign, ProfileId::LegalAuth, ProfileId::LegalSign];

impl RegistrationAuthority<'_> {
    /// Recover an application a worker left `issuing` or `revoking` (it died after the claim),
    /// once the claim is older than `stale_after`. Revocations are simply given back (revoking
    /// again is harmless). A card issuance is given back too: the next personalization finds the
    /// keys on the card and the issued certificates in the store. A key-store issuance is
    /// completed when `delivery` has both key stores, and otherwise revoked and given back (see
    /// the module documentation).
    pub fn recover(
        &self,
        number: &ApplicationNumber,
        actor: &str,
        stale_after: time::Duration,
        delivery: &dyn KeyStoreDelivery,
    ) -> Result<Recovered, RaError> {
        let a = self.store.application(number)?.ok_or_else(|| RaError::NotFound(number.clone()))?;
        if !matches!(a.state, ApplicationState::Issuing | ApplicationState::Revoking) {
            return Err(RaError::WrongState {
                number: number.clone(),
                state: a.state,
                what: "only an application being carried out can be recovered".into(),
            });
        }
        if self.clock.now() - a.updated_at < stale_after {
            return Err(RaError::InProgress(number.clone()));
        }
        let issued = if a.state == ApplicationState::Issuing && a.kind != ApplicationKind::Card {
            self.issued_under_claim(&a)?
        } else {
            Vec::new()
        };
        // An issuance for the applicant's own keys delivered nothing and lost nothing.
        let applicant_keys =
            self.claim_details(&a)?.get("key_stores").and_then(|l| l.as_str()) == Some(APPLICANT_LOCATION);
        let delivery: &dyn KeyStoreDelivery = if applicant_keys { &ApplicantHoldsKeys } else { delivery };
        if !issued.is_empty() {
            self.same_location(&a, delivery)?;
        }
        if is_auth_and_sign(&issued) {
            let mut all = true;
            for c in &issued {
                all &= delivery.delivered(c).map_err(RaError::Delivery)?;
            }
            if all {
                let application = self.complete_issuance(&a, &issued, actor)?;
                return Ok(Recovered { application, completed: true, revoked: Vec::new() });
            }
        }
        let revoked: Vec<SerialNumber> = issued.iter().map(|c| c.serial.clone()).collect();
        let why = format!(
            "recovered after an interrupted worker; certificates revoked because their keys were lost: {}",
            if revoked.is_empty() {
                "none".to_owned()
            } else {
                revoked.iter().map(SerialNumber::to_hex).collect::<Vec<_>>().join(", ")
            }
        );
        self.withdraw(&a, &issued, delivery, actor, &why)?;
        let application = self.store.application(number)?.ok_or_else(|| RaError::NotFound(number.clone()))?;
        Ok(Recovered { application, completed: false, revoked })
    }

    /// Revoke `certificates` (their keys are lost or undeliverable), take back whatever key store
    /// was delivered, and give the claimed application back with `why`.
    pub(super) fn withdraw(
        &self,
        claimed: &Application,
        certificates: &[IssuedCertificate],
        delivery: &dyn KeyStoreDelivery,
        actor: &str,
        why: &str,
    ) -> Result<(), RaError> {
        let who = format!("application:{} recovery", claimed.number);
        for c in certificates {
            crate::revocation::revoke(
                self.certificates,
                self.clock,
                &c.serial,
                RevocationReason::CessationOfOperation,
                None,
                &who,
            )?;
            // Revoked first: a key store left behind if this fails belongs to a revoked certificate.
            if let Err(e) = delivery.withdraw(c) {
                tracing::warn!(serial = %c.serial, error = %e, "the key store of a revoked certificate was not removed");
            }
        }
        self.release(claimed, actor, why)
    }

    /// Recovery must look where the interrupted worker delivered, or it would revoke
    /// certificates whose key stores are in place elsewhere.
    fn same_location(&self, a: &Application, delivery: &dyn KeyStoreDelivery) -> Result<(), RaError> {
        let claim = self.claim_details(a)?;
        match claim.get("key_stores").and_then(|l| l.as_str()) {
            Some(recorded) if recorded != delivery.location() => Err(RaError::Invalid(format!(
                "the interrupted issuance of {} delivered its key stores to {recorded}, not {}: recover with that \
                 location (--p12-dir)",
                a.number,
                delivery.location()
            ))),
            _ => Ok(()),
        }
    }

    /// What the latest claim of `a` recorded (`key_stores`, `serials`); `null` if nothing.
    fn claim_details(&self, a: &Application) -> Result<serde_json::Value, RaError> {
        let events = self.store.application_events(Some(&a.number))?;
        Ok(events.into_iter().rev().find(|e| e.step == Step::Claim).map(|e| e.details).unwrap_or_default())
    }

    /// The certificates of the claim's serials (recorded with the claim) that are issued.
    fn issued_under_claim(&self, a: &Application) -> Result<Vec<IssuedCertificate>, RaError> {
        let claim = self.claim_details(a)?;
        let Some(serials) = claim.get("serials").and_then(|s| s.as_array()) else {
            return self.issued_since_claim(a);
        };
        let mut out = Vec::new();
        for serial in serials {
            let serial: SerialNumber = serial
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|e| RaError::Invalid(format!("the claim of {} records a bad serial: {e}", a.number)))?;
            // A serial that was never reserved or recorded (a kill before that) has no record.
            if let Some(record) = self.certificates.certificate(&serial)? {
                if record.status == CertificateStatus::Issued {
                    out.push(issued_certificate(self, record)?);
                }
            }
        }
        Ok(out)
    }

    /// For a claim made before claims recorded their serials: the key-store profiles'
    /// certificates issued to the applicant since the claim, still issued.
    fn issued_since_claim(&self, a: &Application) -> Result<Vec<IssuedCertificate>, RaError> {
        let query = CertificateQuery {
            iin: Some(a.iin),
            bin: a.bin,
            status: Some(CertificateStatus::Issued),
            ..Default::default()
        };
        let mut out = Vec::new();
        for record in self.certificates.find(&query)? {
            let after_claim = record.issued_at.is_some_and(|t| t >= a.updated_at);
            if after_claim && KEY_STORE_PROFILES.iter().any(|p| p.name() == record.profile) {
                out.push(issued_certificate(self, record)?);
            }
        }
        Ok(out)
    }
}

/// One AUTH and one SIGN certificate: what a key-store issuance makes.
fn is_auth_and_sign(certificates: &[IssuedCertificate]) -> bool {
    let auth = |p: ProfileId| matches!(p, ProfileId::IndividualAuth | ProfileId::LegalAuth);
    certificates.len() == 2
        && certificates.iter().filter(|c| auth(c.profile)).count() == 1
        && certificates.iter().filter(|c| !auth(c.profile)).count() == 1
}

fn issued_certificate(ra: &RegistrationAuthority<'_>, record: CertificateRecord) -> Result<IssuedCertificate, RaError> {
    use der::Decode;
    let serial = record.serial.clone();
    let broken = |what: String| RaError::Invalid(format!("certificate {serial} in the store: {what}"));
    let der = match record.der {
        Some(d) => d,
        None => ra
            .certificates
            .certificate(&record.serial)?
            .and_then(|r| r.der)
            .ok_or_else(|| broken("no DER recorded".into()))?,
    };
    let certificate = x509_cert::Certificate::from_der(&der).map_err(|e| broken(e.to_string()))?;
    let profile = KEY_STORE_PROFILES
        .into_iter()
        .find(|p| p.name() == record.profile)
        .ok_or_else(|| broken(format!("unexpected profile {}", record.profile)))?;
    Ok(IssuedCertificate {
        serial: record.serial,
        profile,
        der,
        certificate,
        not_before: record.not_before,
        not_after: record.not_after,
    })
}

/// Where the key stores "go" when the applicant brought his own keys (CSRs): nowhere, he holds
/// the private keys. Recovery of such an issuance always completes it: nothing can be lost.
pub struct ApplicantHoldsKeys;

/// The location an applicant-key issuance records with its claim.
pub const APPLICANT_LOCATION: &str = "the applicant's own keys";

impl KeyStoreDelivery for ApplicantHoldsKeys {
    fn deliver(&self, _: &[IssuedCertificate]) -> Result<(), String> {
        Ok(())
    }
    fn delivered(&self, _: &IssuedCertificate) -> Result<bool, String> {
        Ok(true)
    }
    fn withdraw(&self, _: &IssuedCertificate) -> Result<(), String> {
        Ok(())
    }
    fn location(&self) -> String {
        APPLICANT_LOCATION.into()
    }
}

/// A delivery that has nothing: for callers that recover revocations and cards only, and for
/// tests. Every key store counts as not delivered.
pub struct NothingDelivered;

impl KeyStoreDelivery for NothingDelivered {
    fn deliver(&self, _: &[IssuedCertificate]) -> Result<(), String> {
        Err("no key store delivery is configured".into())
    }
    fn delivered(&self, _: &IssuedCertificate) -> Result<bool, String> {
        Ok(false)
    }
    fn withdraw(&self, _: &IssuedCertificate) -> Result<(), String> {
        Ok(())
    }
    fn location(&self) -> String {
        "nowhere".into()
    }
}
