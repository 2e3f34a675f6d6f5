//! What a CMS arrives as: DER, BER (indefinite lengths), base64 of either, or PEM with a
//! `CMS`, `PKCS7` or `PKCS #7 SIGNED DATA` label. Everything is normalised to DER here.

use std::borrow::Cow;

use base64::Engine;

use super::{ber_to_der, CmsError};

/// Turn any accepted form of a CMS into DER.
pub fn decode_input(input: &[u8]) -> Result<Vec<u8>, CmsError> {
    let trimmed = input.trim_ascii();
    if trimmed.is_empty() {
        return Err(CmsError::Empty);
    }
    // A SEQUENCE tag cannot start base64 text or PEM armour, so binary is recognised at once.
    let binary = if trimmed[0] == 0x30 { input.to_vec() } else { from_text(trimmed)? };
    Ok(ber_to_der(&binary)?)
}

/// `text` without ASCII whitespace (line breaks in base64), copied only when there is some.
pub fn without_whitespace(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(text.chars().filter(|c| !c.is_ascii_whitespace()).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn from_text(text: &[u8]) -> Result<Vec<u8>, CmsError> {
    let text = std::str::from_utf8(text).map_err(|_| CmsError::NotEncoded)?;
    // Text before the armour (openssl's "Bag Attributes", RFC 7468 explanatory text) is skipped.
    let armour = crate::pem::first_block(text.as_bytes()).and_then(|b| std::str::from_utf8(b).ok());
    let body: Cow<'_, str> = if let Some(text) = armour {
        let mut lines = text.lines().map(str::trim);
        let begin = lines.next().unwrap_or_default();
        let label = begin.trim_start_matches("-----BEGIN ").trim_end_matches("-----");
        if !matches!(label, "CMS" | "PKCS7" | "PKCS #7 SIGNED DATA") {
            return Err(CmsError::Malformed(format!("PEM label {label:?} is not CMS, PKCS7 or PKCS #7 SIGNED DATA")));
        }
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut ended = false;
        for line in lines {
            if line == end {
                ended = true;
                break;
            }
            // RFC 1421 headers (Proc-Type …) never occur in CMS PEM; skip them anyway.
            if !line.contains(':') {
                body.push_str(line);
            }
        }
        if !ended {
            return Err(CmsError::Malformed(format!("PEM armour has no {end:?} line")));
        }
        Cow::Owned(body)
    } else {
        without_whitespace(text)
    };
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine
        .decode(body.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body.trim_end_matches('=')))
        .map_err(|_| CmsError::NotEncoded)?;
    if decoded.first() != Some(&0x30) {
        return Err(CmsError::NotEncoded);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DER: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x07];

    #[test]
    fn der_base64_and_pem_are_accepted() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(DER);
        assert_eq!(decode_input(&DER).unwrap(), DER);
        assert_eq!(decode_input(b64.as_bytes()).unwrap(), DER);
        assert_eq!(decode_input(format!("  {b64}\r\n").as_bytes()).unwrap(), DER);
        for label in ["CMS", "PKCS7", "PKCS #7 SIGNED DATA"] {
            let pem = format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n");
            assert_eq!(decode_input(pem.as_bytes()).unwrap(), DER, "{label}");
            let annotated = format!("Bag Attributes\n    friendlyName: x\nsubject=CN = X\n{pem}");
            assert_eq!(decode_input(annotated.as_bytes()).unwrap(), DER, "{label} after explanatory text");
        }
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(DER);
        assert_eq!(decode_input(url.as_bytes()).unwrap(), DER);
    }

    #[test]
    fn ber_is_normalised() {
        assert_eq!(decode_input(&[0x30, 0x80, 0x02, 0x01, 0x07, 0, 0]).unwrap(), DER);
    }

    #[test]
    fn garbage_is_refused_with_a_message() {
        assert!(matches!(decode_input(b""), Err(CmsError::Empty)));
        assert!(matches!(decode_input(b"  \n"), Err(CmsError::Empty)));
        assert!(matches!(decode_input(b"hello world!"), Err(CmsError::NotEncoded)));
        assert!(matches!(decode_input(&[0xff, 0xfe, 0x00]), Err(CmsError::NotEncoded)));
        assert!(matches!(
            decode_input(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----"),
            Err(CmsError::Malformed(_))
        ));
        assert!(matches!(decode_input(b"-----BEGIN CMS-----\nMAA="), Err(CmsError::Malformed(_))));
        assert!(matches!(decode_input(&[0x30, 0x05, 0x02]), Err(CmsError::Ber(_))));
        let msg = decode_input(b"%%%").unwrap_err().to_string();
        assert!(msg.contains("not a CMS SignedData"), "{msg}");
    }
}
