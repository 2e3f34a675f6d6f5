//! The response side of RFC 3161 2.4.2: `TimeStampResp` and its `PKIStatusInfo`.
//!
//! `x509-tsp` 0.1 takes `PKIStatusInfo` from `cmpv2` 0.2, whose `PKIFailureInfo` flag values are
//! bit *positions* used as *masks* (badAlg = 0, badDataFormat = 5 = badMessageCheck|badRequest,
//! badTime = badRequest): it cannot encode the failInfo RFC 3161 prescribes. So the response
//! is modelled here, derive-based like the rest, with failInfo a named-bit BIT STRING.
//! Requests and TSTInfo come from `x509-tsp`, which gets them right.

use der::asn1::BitString;
use der::{Enumerated, Sequence};

/// `PKIStatus` (RFC 3161 2.4.2): granted, grantedWithMods, rejection, waiting, …
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub enum PkiStatus {
    Granted = 0,
    GrantedWithMods = 1,
    Rejection = 2,
    Waiting = 3,
    RevocationWarning = 4,
    RevocationNotification = 5,
}

/// The failures a TSA reports (RFC 3161 2.4.2 `PKIFailureInfo`), by their bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureInfo {
    /// Unrecognized or unsupported algorithm identifier.
    BadAlg,
    /// Transaction not permitted or supported.
    BadRequest,
    /// The data submitted has the wrong format.
    BadDataFormat,
    /// The TSA's time source is not available.
    TimeNotAvailable,
    /// The requested TSA policy is not supported by the TSA.
    UnacceptedPolicy,
    /// The requested extension is not supported by the TSA.
    UnacceptedExtension,
    /// The additional information requested could not be understood or is not available.
    AddInfoNotAvailable,
    /// The request cannot be handled due to system failure.
    SystemFailure,
}

impl FailureInfo {
    const ALL: [FailureInfo; 8] = [
        Self::BadAlg,
        Self::BadRequest,
        Self::BadDataFormat,
        Self::TimeNotAvailable,
        Self::UnacceptedPolicy,
        Self::UnacceptedExtension,
        Self::AddInfoNotAvailable,
        Self::SystemFailure,
    ];

    /// The bit number in `PKIFailureInfo`.
    pub fn bit(self) -> usize {
        match self {
            Self::BadAlg => 0,
            Self::BadRequest => 2,
            Self::BadDataFormat => 5,
            Self::TimeNotAvailable => 14,
            Self::UnacceptedPolicy => 15,
            Self::UnacceptedExtension => 16,
            Self::AddInfoNotAvailable => 17,
            Self::SystemFailure => 25,
        }
    }

    /// The name RFC 3161 gives it (also OpenSSL's in `ts -reply -text`).
    pub fn name(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadRequest => "badRequest",
            Self::BadDataFormat => "badDataFormat",
            Self::TimeNotAvailable => "timeNotAvailable",
            Self::UnacceptedPolicy => "unacceptedPolicy",
            Self::UnacceptedExtension => "unacceptedExtension",
            Self::AddInfoNotAvailable => "addInfoNotAvailable",
            Self::SystemFailure => "systemFailure",
        }
    }

    /// The DER named-bit BIT STRING with only this bit set (no trailing zero bits, X.690 11.2.2).
    pub fn to_bit_string(self) -> BitString {
        let bit = self.bit();
        let mut bytes = vec![0u8; bit / 8 + 1];
        bytes[bit / 8] = 0x80 >> (bit % 8);
        BitString::new((7 - bit % 8) as u8, bytes).expect("at most 7 unused bits")
    }

    /// The failures named in a `PKIFailureInfo` (unknown bits are left out).
    pub fn from_bit_string(bits: &BitString) -> Vec<FailureInfo> {
        let set: Vec<usize> = bits.bits().enumerate().filter(|(_, on)| *on).map(|(i, _)| i).collect();
        Self::ALL.into_iter().filter(|f| set.contains(&f.bit())).collect()
    }
}

/// `PKIStatusInfo ::= SEQUENCE { status, statusString PKIFreeText OPTIONAL, failInfo OPTIONAL }`
/// (`PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String`).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PkiStatusInfo {
    pub status: PkiStatus,
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    pub fail_info: Option<BitString>,
}

/// `TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TimeStampResp {
    pub status: PkiStatusInfo,
    #[asn1(optional = "true")]
    pub time_stamp_token: Option<cms::content_info::ContentInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn fail_info_bits_are_rfc_3161_bit_numbers() {
        // badAlg: bit 0, one octet, 7 unused bits.
        assert_eq!(FailureInfo::BadAlg.to_bit_string().to_der().unwrap(), [0x03, 0x02, 0x07, 0x80]);
        // badDataFormat: bit 5 -> 0b0000_0100, 2 unused bits.
        assert_eq!(FailureInfo::BadDataFormat.to_bit_string().to_der().unwrap(), [0x03, 0x02, 0x02, 0x04]);
        // unacceptedPolicy: bit 15 -> second octet's last bit.
        assert_eq!(FailureInfo::UnacceptedPolicy.to_bit_string().to_der().unwrap(), [0x03, 0x03, 0x00, 0x00, 0x01]);
        for f in FailureInfo::ALL {
            let der = f.to_bit_string().to_der().unwrap();
            assert_eq!(FailureInfo::from_bit_string(&BitString::from_der(&der).unwrap()), vec![f]);
        }
    }
}
