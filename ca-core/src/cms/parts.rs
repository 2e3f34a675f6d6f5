//! The SignedData structure read as slices of its DER: which fields verification needs, with
//! certificates and signer infos kept as their exact bytes.

use cms::content_info::CmsVersion;
use cms::signed_data::{EncapsulatedContentInfo, SignerInfo};
use const_oid::ObjectIdentifier;
use der::{Any, Decode, Encode, Header, Reader, SliceReader, Tag, TagNumber, Tagged};

use super::{CmsError, ID_SIGNED_DATA};

/// The fields of a SignedData that verification uses, with certificates and signer infos as
/// slices of the input: `der` would sort the SET OFs on decoding (re-encoding every certificate
/// to compare them), and each signer info must keep the exact bytes of its signed attributes.
pub(crate) struct SignedDataParts<'a> {
    pub encap_content_info: EncapsulatedContentInfo,
    /// The `certificates` field's Certificate choices (other choices are skipped).
    pub certificates: Vec<&'a [u8]>,
    /// The `crls` field's CertificateList choices (RevocationInfoChoices; other formats are
    /// skipped): revocation evidence the signer sent along.
    pub crls: Vec<&'a [u8]>,
    pub signer_infos: Vec<&'a [u8]>,
}

impl<'a> SignedDataParts<'a> {
    /// The parts of the SignedData in a DER ContentInfo.
    pub fn of(der: &'a [u8]) -> Result<Self, CmsError> {
        let malformed = |what: &str, e: der::Error| CmsError::Malformed(format!("{what}: {e}"));
        let (content_type, content) = content_info(der).map_err(|e| malformed("ContentInfo", e))?;
        if content_type != ID_SIGNED_DATA {
            return Err(CmsError::NotSignedData(content_type));
        }
        Self::read(content).map_err(|e| malformed("SignedData", e))
    }

    /// `value`: the contents of the SignedData SEQUENCE.
    fn read(value: &'a [u8]) -> der::Result<Self> {
        let mut r = SliceReader::new(value)?;
        let _version = CmsVersion::decode(&mut r)?;
        let digest_algorithms = Header::decode(&mut r)?;
        digest_algorithms.tag.assert_eq(Tag::Set)?;
        r.read_slice(digest_algorithms.length)?;
        let encap_content_info = EncapsulatedContentInfo::decode(&mut r)?;
        let mut certificates = Vec::new();
        if r.peek_tag()? == context_tag(0) {
            for raw in children(&mut r)? {
                if raw.first() == Some(&0x30) {
                    certificates.push(raw);
                }
            }
        }
        let mut crls = Vec::new();
        if r.peek_tag()? == context_tag(1) {
            for raw in children(&mut r)? {
                if raw.first() == Some(&0x30) {
                    crls.push(raw);
                }
            }
        }
        let signer_infos_tag = r.peek_tag()?;
        signer_infos_tag.assert_eq(Tag::Set)?;
        let signer_infos = children(&mut r)?;
        r.finish(Self { encap_content_info, certificates, crls, signer_infos })
    }
}

/// contentType and the contents of the `[0] EXPLICIT` SEQUENCE of a ContentInfo, borrowed.
fn content_info(der: &[u8]) -> der::Result<(ObjectIdentifier, &[u8])> {
    let mut outer = SliceReader::new(der)?;
    let result = outer.sequence(|r| {
        let content_type = ObjectIdentifier::decode(r)?;
        let explicit = Header::decode(r)?;
        explicit.tag.assert_eq(context_tag(0))?;
        let mut inner = SliceReader::new(r.read_slice(explicit.length)?)?;
        let sequence = Header::decode(&mut inner)?;
        sequence.tag.assert_eq(Tag::Sequence)?;
        let content = inner.read_slice(sequence.length)?;
        inner.finish(())?;
        Ok((content_type, content))
    })?;
    outer.finish(result)
}

fn context_tag(number: u8) -> Tag {
    Tag::ContextSpecific { constructed: true, number: TagNumber::new(number) }
}

/// The elements inside the next constructed element, each as its full encoding.
fn children<'a>(r: &mut SliceReader<'a>) -> der::Result<Vec<&'a [u8]>> {
    let header = Header::decode(r)?;
    let mut inner = SliceReader::new(r.read_slice(header.length)?)?;
    let mut out = Vec::new();
    while !inner.is_finished() {
        out.push(inner.tlv_bytes()?);
    }
    Ok(out)
}

/// A SignerInfo with the DER of its signed attributes as a SET OF (what was signed).
pub(crate) fn read_signer_info(raw: &[u8]) -> der::Result<(SignerInfo, Option<Vec<u8>>)> {
    let info = SignerInfo::from_der(raw)?;
    let mut outer = SliceReader::new(raw)?;
    let header = Header::decode(&mut outer)?;
    let mut fields = SliceReader::new(outer.read_slice(header.length)?)?;
    let mut attrs = None;
    while !fields.is_finished() {
        let field = Any::decode(&mut fields)?;
        if field.tag() == context_tag(0) {
            attrs = Some(Any::new(Tag::Set, field.value())?.to_der()?);
            break;
        }
    }
    Ok((info, attrs))
}
