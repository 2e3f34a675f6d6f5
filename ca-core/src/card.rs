//! Card personalization (the regulation's third flow): AUTH and SIGN key pairs generated on the
//! applicant's ID card or SIM, a CSR for each signed on the card, both certificates issued and
//! written back to the card with the CA chain.
//!
//! Every run is resumable. A key pair is found again by its label (`AUTH <IIN>`, `SIGN <IIN>`);
//! a certificate already issued for that key is found again in the store and written instead of
//! issuing a second one; a certificate already on the card is left alone. So a run that fails
//! midway (token pulled, full, PIN blocked) leaves no key a re-run cannot pick up, and never a
//! certificate on record that is not on the card without the operator being told.

use der::Decode;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use crate::csr::{build_csr, parse_and_verify};
use crate::identity::Subject;
use crate::issuer::{IssuanceRequest, IssueError, Issuer};
use crate::profile::{ProfileId, Role};
use crate::serial::SerialNumber;
use crate::signer::Signer;
use crate::store::{CertificateQuery, CertificateStatus, Store};

/// Keys a card can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CardKeyKind {
    Rsa2048,
    P256,
}

/// What went wrong on the card.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("the card was removed or stopped answering: {0}")]
    Removed(String),
    #[error("the card is full: {0}")]
    Full(String),
    #[error("{0}")]
    Other(String),
}

/// The operations personalization needs from a card (implemented for PKCS#11 tokens in `hsm`).
pub trait CardToken {
    /// A private key on the card with this label, if there is one.
    fn find_key(&self, label: &str) -> Result<Option<Box<dyn Signer>>, CardError>;
    /// Generate a non-extractable signing key pair on the card, with CKA_ID = its SKI.
    fn generate_key(&self, kind: CardKeyKind, label: &str) -> Result<Box<dyn Signer>, CardError>;
    /// Write a certificate object linked to its key by CKA_ID (idempotent).
    fn write_certificate(&self, der: &[u8], label: &str, authority: bool) -> Result<(), CardError>;
    /// The certificates on the card (DER).
    fn certificates(&self) -> Result<Vec<Vec<u8>>, CardError>;
}

/// What the operator's application says.
#[derive(Clone, Debug)]
pub struct CardRequest {
    pub subject: Subject,
    pub roles: Vec<Role>,
    pub key_kind: CardKeyKind,
}

/// One of the two certificates, as it ended up on the card.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CardCertificate {
    pub profile: ProfileId,
    pub serial: SerialNumber,
    pub label: String,
    /// The key was already on the card from an interrupted run.
    pub key_resumed: bool,
    /// The certificate was already issued by an interrupted run and only written now.
    pub certificate_resumed: bool,
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// Why personalization stopped; says what was issued but not yet written.
#[derive(Debug, thiserror::Error)]
#[error("card personalization stopped at {step}: {cause}{}", pending_note(.issued_not_on_card))]
pub struct CardFailure {
    pub step: &'static str,
    pub cause: String,
    /// Certificates issued and recorded but not (yet) written to the card: a re-run writes them.
    pub issued_not_on_card: Vec<SerialNumber>,
}

fn pending_note(serials: &[SerialNumber]) -> String {
    if serials.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = serials.iter().map(|s| s.to_hex()).collect();
        format!(
            ". Issued but not yet on the card: {} — run the personalization again with the same card to write them",
            list.join(", ")
        )
    }
}

fn spki_of(der: &[u8]) -> Option<SubjectPublicKeyInfoOwned> {
    Certificate::from_der(der).ok().map(|c| c.tbs_certificate.subject_public_key_info)
}

/// Personalize a card: keys on the card, certificates issued and written, chain written.
pub fn personalize(
    card: &dyn CardToken,
    issuer: &Issuer<'_>,
    request: &CardRequest,
    chain: &[Vec<u8>],
) -> Result<Vec<CardCertificate>, CardFailure> {
    let fail = |step: &'static str, cause: String, pending: &[SerialNumber]| CardFailure {
        step,
        cause,
        issued_not_on_card: pending.to_vec(),
    };
    let iin = request.subject.iin().ok_or_else(|| fail("the application", "a card holder needs an IIN".into(), &[]))?;
    let (auth, sign) = match request.subject {
        Subject::Employee { .. } => (ProfileId::LegalAuth, ProfileId::LegalSign),
        _ => (ProfileId::IndividualAuth, ProfileId::IndividualSign),
    };
    let on_card = card.certificates().map_err(|e| fail("reading the card", e.to_string(), &[]))?;
    let mut pending: Vec<SerialNumber> = Vec::new();
    let mut done = Vec::new();
    for (profile, kind) in [(auth, "AUTH"), (sign, "SIGN")] {
        let label = format!("{kind} {iin}");
        let (key, key_resumed) =
            match card.find_key(&label).map_err(|e| fail("looking for keys", e.to_string(), &pending))? {
                Some(k) => (k, true),
                None => {
                    let k = card
                        .generate_key(request.key_kind, &label)
                        .map_err(|e| fail("generating a key pair on the card", e.to_string(), &pending))?;
                    (k, false)
                }
            };
        let spki = key.public_key().clone();
        // Already complete from an earlier run?
        if let Some(der) = on_card.iter().find(|d| spki_of(d).as_ref() == Some(&spki)) {
            let cert = Certificate::from_der(der).map_err(|e| fail("reading the card", e.to_string(), &pending))?;
            let serial = SerialNumber::from_bytes(cert.tbs_certificate.serial_number.as_bytes())
                .map_err(|e| fail("reading the card", e.to_string(), &pending))?;
            done.push(CardCertificate {
                profile,
                serial,
                label,
                key_resumed,
                certificate_resumed: true,
                der: der.clone(),
            });
            continue;
        }
        // Issued by an interrupted run but never written?
        let recorded = find_issued_for_key(issuer.store, &request.subject, profile, &spki)
            .map_err(|e| fail("looking up earlier issuance", e, &pending))?;
        let (serial, der, certificate_resumed) = match recorded {
            Some((serial, der)) => (serial, der, true),
            None => {
                let name = request.subject.to_name().map_err(|e| fail("the application", e.to_string(), &pending))?;
                let csr = build_csr(name, key.as_ref())
                    .map_err(|e| fail("signing the CSR on the card", e.to_string(), &pending))?;
                let verified =
                    parse_and_verify(&csr).map_err(|e| fail("checking the card's CSR", e.to_string(), &pending))?;
                let issued = issuer
                    .issue(&IssuanceRequest {
                        profile,
                        subject: request.subject.clone(),
                        roles: request.roles.clone(),
                        public_key: verified.public_key,
                    })
                    .map_err(|e: IssueError| fail("issuing", e.to_string(), &pending))?;
                (issued.serial, issued.der, false)
            }
        };
        pending.push(serial.clone());
        card.write_certificate(&der, &label, false)
            .map_err(|e| fail("writing the certificate to the card", e.to_string(), &pending))?;
        pending.retain(|s| *s != serial);
        done.push(CardCertificate { profile, serial, label, key_resumed, certificate_resumed, der });
    }
    for (i, ca) in chain.iter().enumerate() {
        card.write_certificate(ca, &format!("CA {i}"), true)
            .map_err(|e| fail("writing the CA chain to the card", e.to_string(), &pending))?;
    }
    Ok(done)
}

/// A certificate of `profile` for `subject` already issued for this public key.
fn find_issued_for_key(
    store: &dyn Store,
    subject: &Subject,
    profile: ProfileId,
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<Option<(SerialNumber, Vec<u8>)>, String> {
    let query = CertificateQuery {
        iin: subject.iin(),
        status: Some(CertificateStatus::Issued),
        limit: Some(50),
        ..Default::default()
    };
    for record in store.find(&query).map_err(|e| e.to_string())? {
        if record.profile != profile.name() {
            continue;
        }
        if let Some(der) = record.der {
            if spki_of(&der).as_ref() == Some(spki) {
                return Ok(Some((record.serial, der)));
            }
        }
    }
    Ok(None)
}
