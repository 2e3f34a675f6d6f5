//! PKCS#10 certification requests: parsing (PEM or DER), proof of possession and key policy.
//! Only the public key is taken from a CSR; subject and roles come from the application.

use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::keys::PublicKeyKind;
use crate::signer::{Signer, SignerError};
use crate::verify::{verify_signature, SignatureError};

/// Why a CSR is refused.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("malformed CSR: {0}")]
    Malformed(String),
    #[error("CSR signature check failed (no proof of possession of the private key): {0}")]
    ProofOfPossession(SignatureError),
    #[error("CSR key refused: {0}")]
    KeyPolicy(#[from] crate::keys::KeyPolicyError),
    #[error("CSR signing failed: {0}")]
    Signing(#[from] SignerError),
}

/// A CSR whose signature verified and whose key passed the key policy.
#[derive(Clone, Debug)]
pub struct VerifiedCsr {
    pub public_key: SubjectPublicKeyInfoOwned,
    pub key_kind: PublicKeyKind,
    /// The subject the requester wrote; informational only, never copied into a certificate.
    pub requested_subject: Name,
}

const PEM_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

/// Parse a CSR in PEM (explanatory text before it is skipped) or DER, verify its
/// self-signature and apply the key policy.
pub fn parse_and_verify(input: &[u8]) -> Result<VerifiedCsr, CsrError> {
    let pem = if input.first() == Some(&0x30) { None } else { crate::pem::first_block(input) };
    let der_bytes = if let Some(block) = pem {
        let (label, der) = der::pem::decode_vec(block).map_err(|e| CsrError::Malformed(format!("PEM: {e}")))?;
        if !PEM_LABELS.contains(&label) {
            return Err(CsrError::Malformed(format!("PEM label {label:?} is not a certificate request")));
        }
        der
    } else {
        input.to_vec()
    };
    if der_bytes.is_empty() {
        return Err(CsrError::Malformed("empty input".into()));
    }
    let req = CertReq::from_der(&der_bytes).map_err(|e| CsrError::Malformed(e.to_string()))?;
    // The der crate only accepts DER, so re-encoding gives back the signed bytes exactly.
    let info = req.info.to_der().map_err(|e| CsrError::Malformed(e.to_string()))?;
    let signature =
        req.signature.as_bytes().ok_or_else(|| CsrError::Malformed("signature BIT STRING has unused bits".into()))?;
    crate::keys::check_key_policy(&req.info.public_key)?;
    let key_kind =
        verify_signature(&req.info.public_key, &req.algorithm.oid, &info, signature).map_err(|e| match e {
            SignatureError::KeyPolicy(k) => CsrError::KeyPolicy(k),
            other => CsrError::ProofOfPossession(other),
        })?;
    Ok(VerifiedCsr { public_key: req.info.public_key, key_kind, requested_subject: req.info.subject })
}

/// Build a CSR for the key behind `signer` (used for keys generated on tokens and in tests).
pub fn build_csr(subject: Name, signer: &dyn Signer) -> Result<Vec<u8>, CsrError> {
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: signer.public_key().clone(),
        attributes: Default::default(),
    };
    let tbs = info.to_der().map_err(|e| CsrError::Malformed(e.to_string()))?;
    let signature = signer.sign(&tbs)?;
    let req = CertReq {
        info,
        algorithm: signer.algorithm().algorithm_identifier(),
        signature: der::asn1::BitString::from_bytes(&signature).map_err(|e| CsrError::Malformed(e.to_string()))?,
    };
    req.to_der().map_err(|e| CsrError::Malformed(e.to_string()))
}
