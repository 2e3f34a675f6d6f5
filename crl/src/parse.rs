//! Reading a CRL: the TBSCertList fields and extensions are decoded up front, entries are
//! validated in one pass and then decoded again lazily from the borrowed input, so parsing a
//! CRL of a million entries allocates nothing per entry.

use ca_core::verify::verify_signature;
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitStringRef, ContextSpecific};
use der::{Reader, SliceReader, Tag, TagNumber};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::time::Time;
use x509_cert::Version;

use crate::entry::{decode_entry, ParsedEntry};
use crate::error::{ParseError, VerifyError};
use crate::extensions::{self, ParsedIssuingDistributionPoint};
use crate::time_codec::from_time;

/// A decoded CertificateList that borrows its entries and signed bytes from the input.
#[derive(Clone, Debug)]
pub struct ParsedCrl<'a> {
    /// 1 (no version field) or 2.
    pub version: u8,
    pub issuer: Name,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub authority_key_id: Option<Vec<u8>>,
    pub crl_number: Option<u64>,
    /// The base CRL number of a delta CRL (Delta CRL Indicator).
    pub delta_base: Option<u64>,
    pub issuing_distribution_point: Option<ParsedIssuingDistributionPoint>,
    /// The first FreshestCRL URI.
    pub freshest_crl: Option<String>,
    pub signature_algorithm: ObjectIdentifier,
    tbs: &'a [u8],
    signature: &'a [u8],
    entries: &'a [u8],
    entry_count: u64,
}

impl<'a> ParsedCrl<'a> {
    /// The revoked certificates, in the order of the CRL.
    pub fn entries(&self) -> Entries<'a> {
        Entries { reader: SliceReader::new(self.entries).ok(), index: 0, remaining: self.entry_count }
    }

    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    pub fn is_delta(&self) -> bool {
        self.delta_base.is_some()
    }

    /// The DER of the TBSCertList, as signed.
    pub fn tbs_der(&self) -> &'a [u8] {
        self.tbs
    }

    pub fn signature(&self) -> &'a [u8] {
        self.signature
    }
}

/// Iterator over a parsed CRL's entries. [`parse`] has already decoded every entry once, so
/// this yields exactly [`ParsedCrl::entry_count`] items.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    reader: Option<SliceReader<'a>>,
    index: u64,
    remaining: u64,
}

impl<'a> Iterator for Entries<'a> {
    type Item = ParsedEntry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let entry = decode_entry(self.reader.as_mut()?, self.index).ok();
        // Unreachable after parse's validation; stop rather than loop on a broken reader.
        self.remaining = if entry.is_some() { self.remaining - 1 } else { 0 };
        self.index += 1;
        entry
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Entries<'_> {}

struct Tbs<'a> {
    version: Option<Version>,
    signature: AlgorithmIdentifierRef<'a>,
    issuer: Name,
    this_update: Time,
    next_update: Option<Time>,
    revoked: Option<&'a [u8]>,
    extensions: Option<Extensions>,
}

fn is_time(tag: Tag) -> bool {
    matches!(tag, Tag::UtcTime | Tag::GeneralizedTime)
}

fn decode_tbs(tbs: &[u8]) -> der::Result<Tbs<'_>> {
    let mut reader = SliceReader::new(tbs)?;
    let decoded = reader.sequence(|r| {
        let version = if r.peek_tag()? == Tag::Integer { Some(r.decode()?) } else { None };
        let signature = r.decode()?;
        let issuer = r.decode()?;
        let this_update = r.decode()?;
        let next_update = if !r.is_finished() && is_time(r.peek_tag()?) { Some(r.decode()?) } else { None };
        let revoked = if !r.is_finished() && r.peek_tag()? == Tag::Sequence {
            Some(r.decode::<AnyRef<'_>>()?.value())
        } else {
            None
        };
        let extensions = ContextSpecific::<Extensions>::decode_explicit(r, TagNumber::N0)?.map(|c| c.value);
        Ok(Tbs { version, signature, issuer, this_update, next_update, revoked, extensions })
    })?;
    reader.finish(decoded)
}

/// Decode a DER CertificateList. Any malformed, truncated or trailing input is an error.
pub fn parse(der: &[u8]) -> Result<ParsedCrl<'_>, ParseError> {
    let mut reader = SliceReader::new(der)?;
    let (tbs, algorithm, signature) = reader.sequence(|r| {
        let tbs = r.tlv_bytes()?;
        let algorithm: AlgorithmIdentifierRef<'_> = r.decode()?;
        let signature: BitStringRef<'_> = r.decode()?;
        Ok((tbs, algorithm, signature))
    })?;
    reader.finish(())?;
    let signature = signature.as_bytes().ok_or(ParseError::SignatureBits)?;

    let fields = decode_tbs(tbs)?;
    let version = match fields.version {
        None => 1,
        Some(Version::V2) => 2,
        Some(other) => return Err(ParseError::Version(other as u8 + 1)),
    };
    if fields.signature != algorithm {
        return Err(ParseError::AlgorithmMismatch);
    }
    let ext = extensions::parse(fields.extensions.as_deref().unwrap_or_default())?;

    let entries = fields.revoked.unwrap_or_default();
    let mut entry_count = 0u64;
    let mut entry_reader = SliceReader::new(entries)?;
    while !entry_reader.is_finished() {
        decode_entry(&mut entry_reader, entry_count)?;
        entry_count += 1;
    }

    Ok(ParsedCrl {
        version,
        issuer: fields.issuer,
        this_update: from_time(&fields.this_update).ok_or(ParseError::Time)?,
        next_update: fields.next_update.as_ref().map(|t| from_time(t).ok_or(ParseError::Time)).transpose()?,
        authority_key_id: ext.authority_key_id,
        crl_number: ext.crl_number,
        delta_base: ext.delta_base,
        issuing_distribution_point: ext.issuing_distribution_point,
        freshest_crl: ext.freshest_crl,
        signature_algorithm: algorithm.oid,
        tbs,
        signature,
        entries,
        entry_count,
    })
}

/// Check the CRL's signature with the issuer's public key.
pub fn verify(crl: &ParsedCrl<'_>, issuer_key: &SubjectPublicKeyInfoOwned) -> Result<(), VerifyError> {
    verify_signature(issuer_key, &crl.signature_algorithm, crl.tbs, crl.signature)?;
    Ok(())
}

/// [`parse`], then [`verify`].
pub fn parse_and_verify<'a>(
    der: &'a [u8],
    issuer_key: &SubjectPublicKeyInfoOwned,
) -> Result<ParsedCrl<'a>, VerifyError> {
    let crl = parse(der)?;
    verify(&crl, issuer_key)?;
    Ok(crl)
}
