//! Revocation reasons of RFC 5280 section 5.3.1.

use std::fmt;
use std::str::FromStr;

/// CRLReason. Value 7 is unused in RFC 5280.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    RemoveFromCrl = 8,
    PrivilegeWithdrawn = 9,
    AaCompromise = 10,
}

impl RevocationReason {
    /// The key (or a CA's key) is known or suspected to be in other hands: from the compromise
    /// on, anyone may have signed with it, at any claimed time.
    pub fn is_compromise(self) -> bool {
        matches!(self, Self::KeyCompromise | Self::CaCompromise | Self::AaCompromise)
    }
}

const ALL: [RevocationReason; 10] = [
    RevocationReason::Unspecified,
    RevocationReason::KeyCompromise,
    RevocationReason::CaCompromise,
    RevocationReason::AffiliationChanged,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
    RevocationReason::CertificateHold,
    RevocationReason::RemoveFromCrl,
    RevocationReason::PrivilegeWithdrawn,
    RevocationReason::AaCompromise,
];

impl From<RevocationReason> for x509_cert::ext::pkix::CrlReason {
    fn from(reason: RevocationReason) -> Self {
        use x509_cert::ext::pkix::CrlReason as C;
        match reason {
            RevocationReason::Unspecified => C::Unspecified,
            RevocationReason::KeyCompromise => C::KeyCompromise,
            RevocationReason::CaCompromise => C::CaCompromise,
            RevocationReason::AffiliationChanged => C::AffiliationChanged,
            RevocationReason::Superseded => C::Superseded,
            RevocationReason::CessationOfOperation => C::CessationOfOperation,
            RevocationReason::CertificateHold => C::CertificateHold,
            RevocationReason::RemoveFromCrl => C::RemoveFromCRL,
            RevocationReason::PrivilegeWithdrawn => C::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => C::AaCompromise,
        }
    }
}

/// The reason is not one of RFC 5280's. The message lists the reasons an operator can give
/// (not removeFromCRL, which is refused anyway).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown revocation reason {0:?}; expected one of: {list}", list = RevocationReason::operator_reasons())]
pub struct UnknownReason(pub String);

impl RevocationReason {
    /// Every reason, in code order.
    pub fn all() -> &'static [RevocationReason] {
        &ALL
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason for a CRLReason code.
    pub fn from_code(code: u8) -> Option<Self> {
        ALL.into_iter().find(|r| r.code() == code)
    }

    /// RFC 5280's ASN.1 name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The names of the reasons an operator may give, comma-separated, for messages and help.
    pub fn operator_reasons() -> String {
        ALL.iter().filter(|r| r.is_revocation()).map(|r| r.name()).collect::<Vec<_>>().join(", ")
    }

    /// Whether an operator may put a certificate into this state with `revoke`.
    /// removeFromCRL only exists inside delta CRLs; a release of a hold is its own operation.
    pub fn is_revocation(self) -> bool {
        self != Self::RemoveFromCrl
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RevocationReason {
    type Err = UnknownReason;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted: String = s.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_lowercase();
        if let Ok(code) = wanted.parse::<u8>() {
            return Self::from_code(code).ok_or_else(|| UnknownReason(s.to_owned()));
        }
        ALL.into_iter().find(|r| r.name().to_lowercase() == wanted).ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// The CRL partition of a serial among `partitions`: fixed by the serial alone, so it can be
/// written into the certificate at issuance. Serials are random, so partitions fill evenly.
pub fn crl_partition(serial: &crate::serial::SerialNumber, partitions: u32) -> u32 {
    let bytes = serial.as_bytes();
    // Skip the first octet, whose range is narrowed to keep the INTEGER positive.
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(bytes.iter().skip(1)) {
        *w = *b;
    }
    (u64::from_be_bytes(word) % u64::from(partitions.max(1))) as u32
}

/// Why a revocation was not done.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("{0} is not a revocation reason an operator can give (removeFromCRL only appears in delta CRLs)")]
    NotARevocationReason(RevocationReason),
    #[error("the invalidity date {0} lies in the future")]
    InvalidityInFuture(time::OffsetDateTime),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Revoke a certificate: one status change and one audit entry in one transaction. It never
/// builds a CRL; publication picks the change up.
pub fn revoke(
    store: &dyn crate::store::Store,
    clock: &dyn crate::clock::Clock,
    serial: &crate::serial::SerialNumber,
    reason: RevocationReason,
    invalidity_date: Option<time::OffsetDateTime>,
    actor: &str,
) -> Result<crate::store::RevokeOutcome, RevokeError> {
    if !reason.is_revocation() {
        return Err(RevokeError::NotARevocationReason(reason));
    }
    let now = clock.now();
    if let Some(d) = invalidity_date {
        if d > now {
            return Err(RevokeError::InvalidityInFuture(d));
        }
    }
    let revocation = crate::store::Revocation { reason, revoked_at: now, invalidity_date };
    let event = crate::store::AuditEvent::new(actor, "certificate.revoke").target(serial.to_hex()).details(
        serde_json::json!({ "reason": reason.name(), "invalidity_date": invalidity_date.map(|d| d.unix_timestamp()) }),
    );
    Ok(store.revoke(serial, &revocation, &event)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_codes_and_kebab_case() {
        assert_eq!("keyCompromise".parse::<RevocationReason>().unwrap(), RevocationReason::KeyCompromise);
        assert_eq!("key-compromise".parse::<RevocationReason>().unwrap(), RevocationReason::KeyCompromise);
        assert_eq!("6".parse::<RevocationReason>().unwrap(), RevocationReason::CertificateHold);
        assert!("7".parse::<RevocationReason>().is_err());
        // The list offered never includes the reason that is then refused.
        let message = "nonsense".parse::<RevocationReason>().unwrap_err().to_string();
        assert!(message.contains("keyCompromise") && message.contains("certificateHold"), "{message}");
        assert!(!message.contains("removeFromCRL"), "{message}");
        assert!("stolen".parse::<RevocationReason>().is_err());
        for r in RevocationReason::all() {
            assert_eq!(RevocationReason::from_code(r.code()), Some(*r));
            assert_eq!(r.name().parse::<RevocationReason>().unwrap(), *r);
        }
    }
}
