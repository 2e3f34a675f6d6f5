//! Signed steps. The RA never parses CMS itself: a [`SignatureCheck`] (the CMS verifier of
//! `ca_core::cms`, once wired) verifies the SignedData against the CA chain and the signer's
//! revocation status at signing time and reports who signed. The RA then checks that the signer
//! is who the step needs ([`Expectation`]) and refuses with a reason otherwise.
//!
//! What is signed is the [`Statement`] of the step in its canonical encoding: UTF-8 JSON with
//! object keys sorted by code point, no insignificant whitespace, numbers as integers, strings
//! escaped as `serde_json` escapes them (only `"`, `\` and control characters). The CMS carries
//! it as encapsulated content or detached; either way its bytes must equal [`Statement::canonical`].

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::application::{ApplicationKind, ApplicationNumber};
use crate::identity::{Bin, Iin, KeyType};
use crate::profile::Role;
use crate::serial::SerialNumber;

/// What a signer signs for one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// `submit`, `head-confirm`, `operator-confirm`.
    pub action: &'static str,
    /// The application's number; `None` for a submission, which has none yet.
    pub number: Option<ApplicationNumber>,
    pub kind: ApplicationKind,
    pub iin: Iin,
    pub bin: Option<Bin>,
    pub serials: Vec<SerialNumber>,
    /// A submission with the applicant's own keys: the SHA-256 (hex) of the AUTH and the SIGN
    /// SubjectPublicKeyInfo, in that order, so the signature covers the keys to be certified.
    /// Encoded only when present (statements without keys keep their encoding).
    pub keys: Vec<String>,
}

impl Statement {
    /// The canonical encoding (see the module documentation).
    pub fn canonical(&self) -> Vec<u8> {
        let mut map: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        map.insert("action", self.action.into());
        map.insert("application", self.number.as_ref().map(|n| n.as_str().to_owned()).into());
        map.insert("bin", self.bin.map(|b| b.as_string()).into());
        map.insert("iin", self.iin.as_string().into());
        if !self.keys.is_empty() {
            map.insert("keys", self.keys.clone().into());
        }
        map.insert("kind", self.kind.name().into());
        let mut serials: Vec<String> = self.serials.iter().map(SerialNumber::to_hex).collect();
        serials.sort();
        map.insert("serials", serials.into());
        map.insert("version", 1.into());
        // BTreeMap keys are sorted, and serde_json writes no whitespace.
        serde_json::to_vec(&map).unwrap_or_default()
    }
}

/// A CMS SignedData and the canonical bytes it must sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPayload {
    pub cms: Vec<u8>,
    pub content: Vec<u8>,
}

/// Who the step needs as signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The signer's IIN, when a particular person must sign.
    pub iin: Option<Iin>,
    /// The signer's BIN, when he must act for a particular legal entity.
    pub bin: Option<Bin>,
    /// The signer must hold one of these roles (empty: any).
    pub any_role: Vec<Role>,
    pub key_type: KeyType,
    /// The signature must have been valid at this time (the step's time).
    pub at: OffsetDateTime,
}

/// What the checker established about a valid signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignerFacts {
    pub serial: SerialNumber,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    pub roles: Vec<Role>,
    pub key_type: Option<KeyType>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    /// SHA-256 of the signed attributes: names this one act of signing, however the CMS is
    /// re-encoded ([`crate::cms::SignerReport::signed_attributes_digest`]); `None` when the
    /// checker has none.
    #[serde(skip)]
    pub request_id: Option<[u8; 32]>,
    /// The end of the signer certificate's validity: a signature is refused after it anyway.
    #[serde(skip)]
    pub certificate_not_after: Option<OffsetDateTime>,
}

/// Why the checker did not accept a signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("the signature is not valid: {0}")]
    Invalid(String),
    #[error("the signed content is not this application")]
    ContentMismatch,
    #[error("the signer's certificate is not issued by a trusted CA: {0}")]
    Untrusted(String),
    #[error("the signer's certificate {0} had expired or was not yet valid at signing time")]
    Expired(SerialNumber),
    #[error("the signer's certificate {0} is revoked")]
    Revoked(SerialNumber),
    #[error("the signature cannot be checked now: {0}")]
    Unavailable(String),
    #[error("this signature was already used once; sign the statement again")]
    Replayed,
}

/// The CMS verifier, seen from the RA.
pub trait SignatureCheck: Send + Sync {
    /// Verify `signed` (signature, chain, validity and revocation at signing time, content equal
    /// to `signed.content`) and say who signed. `expected` is given so a checker can pick the
    /// right validation time and policy; the RA checks the facts against it again itself.
    fn check(&self, signed: &SignedPayload, expected: &Expectation) -> Result<SignerFacts, SignatureProblem>;
}

/// Why the facts do not fit the expectation, in words for the applicant/operator.
pub fn mismatch(facts: &SignerFacts, expected: &Expectation) -> Option<String> {
    if let Some(iin) = &expected.iin {
        if facts.iin.as_ref() != Some(iin) {
            return Some(format!(
                "signed by IIN {}, this step needs IIN {iin}",
                facts.iin.map_or_else(|| "(none)".to_owned(), |i| i.as_string())
            ));
        }
    }
    if let Some(bin) = &expected.bin {
        if facts.bin.as_ref() != Some(bin) {
            return Some(format!(
                "signed for BIN {}, this step needs BIN {bin}",
                facts.bin.map_or_else(|| "(none)".to_owned(), |b| b.as_string())
            ));
        }
    }
    if !expected.any_role.is_empty() && !facts.roles.iter().any(|r| expected.any_role.contains(r)) {
        let wanted: Vec<&str> = expected.any_role.iter().map(|r| r.name()).collect();
        return Some(format!("the signer's certificate has none of the roles {}", wanted.join(", ")));
    }
    if facts.key_type != Some(expected.key_type) {
        return Some(format!(
            "signed with a {} key, this step needs a {} key",
            facts.key_type.map_or("(unknown)", key_type_name),
            key_type_name(expected.key_type)
        ));
    }
    None
}

pub fn key_type_name(k: KeyType) -> &'static str {
    match k {
        KeyType::Auth => "AUTH",
        KeyType::Sign => "SIGN",
    }
}
