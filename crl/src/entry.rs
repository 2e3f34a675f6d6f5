//! One revokedCertificates entry: encoding without per-entry heap allocation, and decoding
//! from borrowed input.
//!
//! ```text
//! SEQUENCE { userCertificate CertificateSerialNumber, revocationDate Time,
//!            crlEntryExtensions Extensions OPTIONAL }
//! ```

use ca_core::revocation::RevocationReason;
use const_oid::db::rfc5280::{ID_CE_CRL_REASONS, ID_CE_INVALIDITY_DATE};
use const_oid::ObjectIdentifier;
use der::asn1::{GeneralizedTime, OctetStringRef, SequenceOf, UintRef};
use der::{Decode, Encode, Reader, Sequence, Tagged};
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::time::Time;

use crate::error::{BuildError, ParseError};
use crate::time_codec::{from_generalized, from_time, to_generalized, to_time};

/// RFC 5280 4.1.2.2: serial numbers are at most 20 octets.
const MAX_SERIAL_LEN: usize = 20;

/// A revoked certificate as the builder receives it. `S` is anything holding the serial's
/// big-endian magnitude: `&[u8]`, `Vec<u8>`, `[u8; 20]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry<S> {
    pub serial: S,
    pub revoked_at: OffsetDateTime,
    /// `None` and `Some(Unspecified)` both leave the reasonCode extension out (RFC 5280 5.3.1).
    pub reason: Option<RevocationReason>,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// A revoked certificate as read from a CRL; the serial borrows from the CRL's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedEntry<'a> {
    /// Big-endian magnitude, leading zero octets stripped.
    pub serial: &'a [u8],
    pub revoked_at: OffsetDateTime,
    pub reason: Option<RevocationReason>,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// `Extension` borrowing its value, so an entry needs no heap.
#[derive(Sequence)]
pub(crate) struct ExtensionRef<'a> {
    pub extn_id: ObjectIdentifier,
    #[asn1(default = "Default::default")]
    pub critical: bool,
    pub extn_value: OctetStringRef<'a>,
}

#[derive(Sequence)]
struct RevokedCertRef<'a> {
    serial_number: UintRef<'a>,
    revocation_date: Time,
    crl_entry_extensions: Option<SequenceOf<ExtensionRef<'a>, 2>>,
}

/// Append the DER of `entry` (the `index`-th) to `out`.
pub(crate) fn encode_entry<S: AsRef<[u8]>>(
    entry: &CrlEntry<S>,
    index: u64,
    out: &mut Vec<u8>,
) -> Result<(), BuildError> {
    let serial = entry.serial.as_ref();
    let magnitude_len = serial.iter().position(|b| *b != 0).map_or(0, |start| serial.len() - start);
    if magnitude_len == 0 || magnitude_len > MAX_SERIAL_LEN {
        return Err(BuildError::InvalidSerial { index, len: magnitude_len });
    }
    let revocation_date = to_time(entry.revoked_at).ok_or(BuildError::EntryTime { index, time: entry.revoked_at })?;

    // Both extension values are encoded into stack buffers: ENUMERATED is 3 octets,
    // a GeneralizedTime 17.
    let mut reason_buf = [0u8; 3];
    let mut invalidity_buf = [0u8; 17];
    let mut extensions = SequenceOf::<ExtensionRef<'_>, 2>::new();
    if let Some(reason) = entry.reason.filter(|r| *r != RevocationReason::Unspecified) {
        let value = CrlReason::from(reason).encode_to_slice(&mut reason_buf)?;
        extensions.add(ExtensionRef {
            extn_id: ID_CE_CRL_REASONS,
            critical: false,
            extn_value: OctetStringRef::new(value)?,
        })?;
    }
    if let Some(date) = entry.invalidity_date {
        let time = to_generalized(date).ok_or(BuildError::EntryTime { index, time: date })?;
        let value = time.encode_to_slice(&mut invalidity_buf)?;
        extensions.add(ExtensionRef {
            extn_id: ID_CE_INVALIDITY_DATE,
            critical: false,
            extn_value: OctetStringRef::new(value)?,
        })?;
    }
    let revoked = RevokedCertRef {
        serial_number: UintRef::new(serial)?,
        revocation_date,
        crl_entry_extensions: (!extensions.is_empty()).then_some(extensions),
    };
    revoked.encode_to_vec(out)?;
    Ok(())
}

fn from_crl_reason(reason: CrlReason) -> RevocationReason {
    match reason {
        CrlReason::Unspecified => RevocationReason::Unspecified,
        CrlReason::KeyCompromise => RevocationReason::KeyCompromise,
        CrlReason::CaCompromise => RevocationReason::CaCompromise,
        CrlReason::AffiliationChanged => RevocationReason::AffiliationChanged,
        CrlReason::Superseded => RevocationReason::Superseded,
        CrlReason::CessationOfOperation => RevocationReason::CessationOfOperation,
        CrlReason::CertificateHold => RevocationReason::CertificateHold,
        CrlReason::RemoveFromCRL => RevocationReason::RemoveFromCrl,
        CrlReason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        CrlReason::AaCompromise => RevocationReason::AaCompromise,
    }
}

fn decode_reason(value: &[u8], index: u64) -> Result<RevocationReason, ParseError> {
    let entry_err = |source| ParseError::Entry { index, source };
    // Decode the number first so that an undefined value (7, 11, …) is reported as such.
    let raw = der::asn1::AnyRef::from_der(value).map_err(entry_err)?;
    raw.tag().assert_eq(der::Tag::Enumerated).map_err(entry_err)?;
    CrlReason::from_der(value).map(from_crl_reason).map_err(|_| ParseError::UnknownReason {
        index,
        value: raw.value().iter().fold(0u32, |acc, b| acc.saturating_mul(256).saturating_add(u32::from(*b))),
    })
}

/// Decode one entry from `reader`: the `index`-th of its CRL.
pub(crate) fn decode_entry<'a, R: Reader<'a>>(reader: &mut R, index: u64) -> Result<ParsedEntry<'a>, ParseError> {
    let entry_err = |source| ParseError::Entry { index, source };
    let (serial, revocation_date, extensions) = reader
        .sequence(|r| {
            let serial: UintRef<'a> = r.decode()?;
            let date: Time = r.decode()?;
            // Kept as the raw SEQUENCE body and walked below: no Vec per entry.
            let extensions = if r.is_finished() {
                None
            } else {
                let any: der::asn1::AnyRef<'a> = r.decode()?;
                any.tag().assert_eq(der::Tag::Sequence)?;
                Some(any.value())
            };
            Ok((serial.as_bytes(), date, extensions))
        })
        .map_err(entry_err)?;
    let mut parsed = ParsedEntry {
        serial,
        revoked_at: from_time(&revocation_date).ok_or(ParseError::Time)?,
        reason: None,
        invalidity_date: None,
    };
    let Some(body) = extensions else { return Ok(parsed) };
    let mut r = der::SliceReader::new(body).map_err(entry_err)?;
    let mut seen_reason = false;
    while !r.is_finished() {
        let ext: ExtensionRef<'_> = r.decode().map_err(entry_err)?;
        let value = ext.extn_value.as_bytes();
        let duplicate = || ParseError::DuplicateEntryExtension { index, oid: ext.extn_id };
        match ext.extn_id {
            ID_CE_CRL_REASONS => {
                if std::mem::replace(&mut seen_reason, true) {
                    return Err(duplicate());
                }
                parsed.reason = Some(decode_reason(value, index)?);
            }
            ID_CE_INVALIDITY_DATE => {
                if parsed.invalidity_date.is_some() {
                    return Err(duplicate());
                }
                let t = GeneralizedTime::from_der(value).map_err(entry_err)?;
                parsed.invalidity_date = Some(from_generalized(&t).ok_or(ParseError::Time)?);
            }
            oid if ext.critical => return Err(ParseError::UnsupportedCriticalEntryExtension { index, oid }),
            _ => {}
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn encoded(entry: &CrlEntry<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_entry(entry, 0, &mut out).unwrap();
        out
    }

    fn decoded(der: &[u8]) -> ParsedEntry<'_> {
        let mut r = der::SliceReader::new(der).unwrap();
        let parsed = decode_entry(&mut r, 0).unwrap();
        assert!(r.is_finished());
        parsed
    }

    #[test]
    fn entries_round_trip_with_and_without_extensions() {
        let at = datetime!(2025-03-04 5:06:07 UTC);
        for reason in RevocationReason::all() {
            let entry = CrlEntry {
                serial: &[0x81u8, 0x02][..],
                revoked_at: at,
                reason: Some(*reason),
                invalidity_date: Some(datetime!(2025-03-01 0:00 UTC)),
            };
            let der = encoded(&entry);
            let parsed = decoded(&der);
            assert_eq!(parsed.serial, &[0x81, 0x02]);
            assert_eq!(parsed.revoked_at, at);
            let expected = (*reason != RevocationReason::Unspecified).then_some(*reason);
            assert_eq!(parsed.reason, expected);
            assert_eq!(parsed.invalidity_date, entry.invalidity_date);
        }
        let bare = CrlEntry { serial: &[0x7fu8; 20][..], revoked_at: at, reason: None, invalidity_date: None };
        let der = encoded(&bare);
        let parsed = decoded(&der);
        // SEQUENCE { INTEGER (20 octets), UTCTime } and nothing else.
        assert_eq!(der.len(), 2 + 22 + 15);
        assert_eq!(parsed.reason, None);
    }

    #[test]
    fn serial_with_high_bit_gets_a_sign_octet() {
        let entry = CrlEntry {
            serial: &[0x00u8, 0x80][..],
            revoked_at: datetime!(2025-01-01 0:00 UTC),
            reason: None,
            invalidity_date: None,
        };
        let der = encoded(&entry);
        let parsed = decoded(&der);
        assert_eq!(&der[2..6], &[0x02, 0x02, 0x00, 0x80]);
        assert_eq!(parsed.serial, &[0x80]);
    }

    #[test]
    fn bad_serials_and_times_are_refused() {
        let at = datetime!(2025-01-01 0:00 UTC);
        let mut out = Vec::new();
        for serial in [&[][..], &[0, 0][..], &[1u8; 21][..]] {
            let entry = CrlEntry { serial, revoked_at: at, reason: None, invalidity_date: None };
            assert!(matches!(encode_entry(&entry, 3, &mut out), Err(BuildError::InvalidSerial { index: 3, .. })));
        }
        let old = CrlEntry {
            serial: &[1u8][..],
            revoked_at: datetime!(1960-01-01 0:00 UTC),
            reason: None,
            invalidity_date: None,
        };
        assert!(matches!(encode_entry(&old, 0, &mut out), Err(BuildError::EntryTime { .. })));
    }

    #[test]
    fn undefined_or_mistyped_reasons_are_errors() {
        // reason value 7 (unused in RFC 5280)
        assert!(matches!(decode_reason(&[0x0a, 0x01, 0x07], 5), Err(ParseError::UnknownReason { index: 5, value: 7 })));
        assert!(decode_reason(&[0x02, 0x01, 0x01], 0).is_err());
        assert!(decode_reason(&[0x0a], 0).is_err());
    }
}
