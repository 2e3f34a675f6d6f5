//! Streaming CRL construction (RFC 5280 section 5.1).
//!
//! Entries are DER-encoded one by one into a single buffer, already at their final place in
//! the TBSCertList, so memory stays near the size of the output whatever the entry count. The
//! buffer starts with room for the outer and TBSCertList headers, and the fields that precede
//! revokedCertificates (version … nextUpdate) are followed by room for its header: lengths are
//! only known once the last entry is in. On finishing, `der::Header`s are encoded into that room
//! and only the short prefix is moved up to meet them, never the entries.
//!
//! ```text
//! [outer hdr room][TBS hdr room][version sig issuer thisUpdate nextUpdate][revoked hdr room][entries…][[0] extensions]
//! ```

use std::io::Write;

use ca_core::signer::Signer;
use der::asn1::{BitString, ContextSpecificRef};
use der::{Encode, Header, Length, Tag, TagMode, TagNumber};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::name::Name;
use x509_cert::Version;

use crate::entry::{encode_entry, CrlEntry};
use crate::error::BuildError;
use crate::extensions::{self, IssuingDistributionPoint};
use crate::time_codec::to_time;

/// A DER header is at most one tag octet, 0x84 and four length octets (der caps lengths at
/// 256 MiB).
const MAX_HEADER_LEN: usize = 6;
/// Room for the CertificateList and TBSCertList headers.
const FRONT: usize = 2 * MAX_HEADER_LEN;
/// A typical entry: 20-octet serial, UTCTime and a reasonCode is 55 octets.
const TYPICAL_ENTRY_LEN: usize = 64;

/// Everything about a CRL except its entries.
#[derive(Clone, Debug)]
pub struct CrlParams {
    /// The CA's subject name.
    pub issuer: Name,
    /// The CA's subject key identifier, written as the CRL's authority key identifier.
    pub authority_key_id: Vec<u8>,
    /// CRL Number, shared and increasing across full and delta CRLs of the CA.
    pub crl_number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// `Some(base)` makes this a delta CRL on top of the full CRL numbered `base`
    /// (Delta CRL Indicator, critical).
    pub delta_base: Option<u64>,
    /// Scope of a partitioned CRL (Issuing Distribution Point, critical).
    pub issuing_distribution_point: Option<IssuingDistributionPoint>,
    /// Where the delta CRLs for this full CRL are published (FreshestCRL). Full CRLs only.
    pub freshest_crl: Option<String>,
}

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrlSummary {
    pub entries: u64,
    /// Octets of DER written.
    pub len: usize,
}

fn length(len: usize) -> Result<Length, BuildError> {
    Length::try_from(len).map_err(|_| BuildError::TooLarge)
}

/// A CRL being built: create it, [`push`](Self::push) the entries in any order, then
/// [`finish`](Self::finish) or [`finish_into`](Self::finish_into) to sign it.
pub struct CrlBuilder<'s> {
    signer: &'s dyn Signer,
    algorithm: AlgorithmIdentifierOwned,
    buf: Vec<u8>,
    prefix_end: usize,
    entries_start: usize,
    entries: u64,
    extensions: Vec<u8>,
}

impl<'s> CrlBuilder<'s> {
    /// Check the parameters and encode everything that precedes the entries.
    pub fn new(params: &CrlParams, signer: &'s dyn Signer) -> Result<Self, BuildError> {
        if params.issuer.0.is_empty() {
            return Err(BuildError::InvalidParams("the issuer name is empty (RFC 5280 5.1.2.3)"));
        }
        if params.authority_key_id.is_empty() {
            return Err(BuildError::InvalidParams("the authority key identifier is empty"));
        }
        if params.next_update <= params.this_update {
            return Err(BuildError::InvalidParams("nextUpdate must be later than thisUpdate"));
        }
        if let Some(base) = params.delta_base {
            if base >= params.crl_number {
                return Err(BuildError::InvalidParams("a delta CRL's number must be greater than its base CRL number"));
            }
            if params.freshest_crl.is_some() {
                return Err(BuildError::InvalidParams("FreshestCRL must not appear in a delta CRL (RFC 5280 5.2.6)"));
            }
        }
        let algorithm = signer.algorithm().algorithm_identifier();
        let this_update = to_time(params.this_update).ok_or(BuildError::CrlTime(params.this_update))?;
        let next_update = to_time(params.next_update).ok_or(BuildError::CrlTime(params.next_update))?;

        let mut buf = vec![0u8; FRONT];
        Version::V2.encode_to_vec(&mut buf)?;
        algorithm.encode_to_vec(&mut buf)?;
        params.issuer.encode_to_vec(&mut buf)?;
        this_update.encode_to_vec(&mut buf)?;
        next_update.encode_to_vec(&mut buf)?;
        let prefix_end = buf.len();
        buf.resize(prefix_end + MAX_HEADER_LEN, 0);
        let entries_start = buf.len();

        let list = extensions::build(
            &params.authority_key_id,
            params.crl_number,
            params.issuing_distribution_point.as_ref(),
            params.delta_base,
            params.freshest_crl.as_deref(),
        )?;
        let explicit = ContextSpecificRef { tag_number: TagNumber::N0, tag_mode: TagMode::Explicit, value: &list };
        let extensions = explicit.to_der()?;
        Ok(Self { signer, algorithm, buf, prefix_end, entries_start, entries: 0, extensions })
    }

    /// Make room for `additional` more entries up front (e.g. a count from the store).
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional.saturating_mul(TYPICAL_ENTRY_LEN));
    }

    /// Append one entry. On error the builder is unchanged and may go on.
    pub fn push<S: AsRef<[u8]>>(&mut self, entry: &CrlEntry<S>) -> Result<(), BuildError> {
        let before = self.buf.len();
        if let Err(e) = encode_entry(entry, self.entries, &mut self.buf) {
            self.buf.truncate(before);
            return Err(e);
        }
        self.entries += 1;
        Ok(())
    }

    /// Entries pushed so far.
    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Close the TBSCertList and sign it. Returns where the TBSCertList starts in `buf`, and
    /// the signature.
    fn seal(&mut self) -> Result<(usize, BitString), BuildError> {
        // RFC 5280 5.1.2.6: without revoked certificates the list is absent, not empty.
        let revoked_header_len = if self.entries == 0 {
            0
        } else {
            let header = Header::new(Tag::Sequence, length(self.buf.len() - self.entries_start)?)?;
            let len = usize::try_from(header.encoded_len()?)?;
            header.encode_to_slice(&mut self.buf[self.entries_start - len..self.entries_start])?;
            len
        };
        let body_start = FRONT + MAX_HEADER_LEN - revoked_header_len;
        self.buf.copy_within(FRONT..self.prefix_end, body_start);
        self.buf.extend_from_slice(&self.extensions);

        let tbs_header = Header::new(Tag::Sequence, length(self.buf.len() - body_start)?)?;
        let tbs_start = body_start - usize::try_from(tbs_header.encoded_len()?)?;
        tbs_header.encode_to_slice(&mut self.buf[tbs_start..body_start])?;

        let signature = self.signer.sign(&self.buf[tbs_start..])?;
        Ok((tbs_start, BitString::from_bytes(&signature)?))
    }

    fn outer_header(&self, tbs_len: usize, signature: &BitString) -> Result<Header, BuildError> {
        let tail = (self.algorithm.encoded_len()? + signature.encoded_len()?)?;
        let total = (length(tbs_len)? + tail).map_err(|_| BuildError::TooLarge)?;
        Ok(Header::new(Tag::Sequence, total)?)
    }

    /// Sign and write the CertificateList to `out`.
    pub fn finish_into<W: Write>(mut self, mut out: W) -> Result<CrlSummary, BuildError> {
        let (tbs_start, signature) = self.seal()?;
        let tbs = &self.buf[tbs_start..];
        let header = self.outer_header(tbs.len(), &signature)?;
        let mut header_buf = [0u8; MAX_HEADER_LEN];
        let header = header.encode_to_slice(&mut header_buf)?;
        let algorithm = self.algorithm.to_der()?;
        let signature = signature.to_der()?;
        for part in [header, tbs, &algorithm, &signature] {
            out.write_all(part)?;
        }
        out.flush()?;
        let len = header.len() + tbs.len() + algorithm.len() + signature.len();
        Ok(CrlSummary { entries: self.entries, len })
    }

    /// Sign and return the CertificateList, reusing the entry buffer (no second copy).
    pub fn finish(mut self) -> Result<Vec<u8>, BuildError> {
        let (tbs_start, signature) = self.seal()?;
        let header = self.outer_header(self.buf.len() - tbs_start, &signature)?;
        self.algorithm.encode_to_vec(&mut self.buf)?;
        signature.encode_to_vec(&mut self.buf)?;
        let start = tbs_start - usize::try_from(header.encoded_len()?)?;
        header.encode_to_slice(&mut self.buf[start..tbs_start])?;
        self.buf.drain(..start);
        Ok(self.buf)
    }
}

/// Build, sign and write a CRL with `entries` to `out`.
pub fn write_crl<W, I, S>(params: &CrlParams, entries: I, signer: &dyn Signer, out: W) -> Result<CrlSummary, BuildError>
where
    W: Write,
    I: IntoIterator<Item = CrlEntry<S>>,
    S: AsRef<[u8]>,
{
    let mut builder = CrlBuilder::new(params, signer)?;
    let entries = entries.into_iter();
    builder.reserve(entries.size_hint().0);
    for entry in entries {
        builder.push(&entry)?;
    }
    builder.finish_into(out)
}

/// Build and sign a CRL with `entries`; the DER.
pub fn build_crl<I, S>(params: &CrlParams, entries: I, signer: &dyn Signer) -> Result<Vec<u8>, BuildError>
where
    I: IntoIterator<Item = CrlEntry<S>>,
    S: AsRef<[u8]>,
{
    let mut builder = CrlBuilder::new(params, signer)?;
    let entries = entries.into_iter();
    builder.reserve(entries.size_hint().0);
    for entry in entries {
        builder.push(&entry)?;
    }
    builder.finish()
}
