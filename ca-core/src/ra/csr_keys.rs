//! Applicants' own keys: the "on the applicant's computer" flows bring an AUTH and a SIGN
//! PKCS#10 request made by the applicant's signing client. Only the public keys are taken: the
//! subject and the roles of the certificates come from the registry and the application, never
//! from a CSR, and the CA never holds the applicant's private keys.
//!
//! A CSR is refused when its signature does not verify with its own key (no proof of
//! possession), when its key fails the issuer's key policy ([`crate::keys::check_key_policy`]),
//! when AUTH and SIGN are one key, and when the key is already in a certificate that is not
//! revoked or on another open application.

use super::service::RegistrationAuthority;
use super::store::ApplicantKey;
use super::{ApplicationNumber, RaError};
use crate::identity::KeyType;

/// The applicant's two requests, PEM or DER, as he sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicantCsrs {
    pub auth: Vec<u8>,
    pub sign: Vec<u8>,
}

impl ApplicantCsrs {
    /// The two public keys, after each request's proof of possession and key policy (not yet
    /// checked against the keys in use: see [`RegistrationAuthority::check_csrs`]).
    pub fn keys(&self) -> Result<Vec<ApplicantKey>, RaError> {
        Ok(vec![
            ApplicantKey { key_type: KeyType::Auth, spki: check_one(KeyType::Auth, &self.auth)? },
            ApplicantKey { key_type: KeyType::Sign, spki: check_one(KeyType::Sign, &self.sign)? },
        ])
    }
}

/// The SHA-256 of a DER SubjectPublicKeyInfo: how a key is found among certificates and
/// applications.
pub fn spki_sha256(spki_der: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Parse and check one CSR; the public key as DER.
fn check_one(what: KeyType, csr: &[u8]) -> Result<Vec<u8>, RaError> {
    use der::Encode;
    let verified = crate::csr::parse_and_verify(csr)
        .map_err(|e| RaError::Invalid(format!("the {} key's request (CSR) is refused: {e}", what.name())))?;
    verified.public_key.to_der().map_err(|e| RaError::Invalid(format!("the {} key's request (CSR): {e}", what.name())))
}

impl RegistrationAuthority<'_> {
    /// Check the applicant's CSRs (see the module documentation); the keys to store with the
    /// application. `except`: the application they already belong to (a check at issuance).
    pub fn check_csrs(
        &self,
        csrs: &ApplicantCsrs,
        except: Option<&ApplicationNumber>,
    ) -> Result<Vec<ApplicantKey>, RaError> {
        let keys = csrs.keys()?;
        self.check_keys_unused(&keys, except)?;
        Ok(keys)
    }

    /// Refuse keys that are one key, or already certified (not revoked), or on another open
    /// application.
    pub(super) fn check_keys_unused(
        &self,
        keys: &[ApplicantKey],
        except: Option<&ApplicationNumber>,
    ) -> Result<(), RaError> {
        if keys.len() == 2 && keys[0].spki == keys[1].spki {
            return Err(RaError::Invalid("the AUTH and SIGN requests must be for two different keys".into()));
        }
        for key in keys {
            if let Some(holder) = self.store.key_in_use(&spki_sha256(&key.spki), except)? {
                return Err(RaError::Invalid(format!(
                    "the {} key is already in use ({holder}): make a new key pair",
                    key.key_type.name()
                )));
            }
        }
        Ok(())
    }

    /// The statement digests of the applicant's keys, AUTH then SIGN, hex (what a signed
    /// submission with CSRs signs, see [`super::Statement::keys`]).
    pub fn key_digests(keys: &[ApplicantKey]) -> Vec<String> {
        let mut keys: Vec<&ApplicantKey> = keys.iter().collect();
        keys.sort_by_key(|k| k.key_type != KeyType::Auth);
        keys.iter().map(|k| hex::encode(spki_sha256(&k.spki))).collect()
    }
}
