//! PEM as people hand it over. RFC 7468 §2 lets explanatory text precede the encapsulation
//! boundary, and parsers must not fail on it: `openssl pkcs12 -nokeys` (or `-nocerts`) writes
//! `Bag Attributes`, `localKeyID`, `friendlyName`, `subject=` and `issuer=` lines there, and
//! `openssl x509 -text` the whole decoded certificate.

const BEGIN: &[u8] = b"-----BEGIN ";
const DASHES: &[u8] = b"-----";

/// The first PEM block of `input`, from its `-----BEGIN <label>-----` line to the end of the
/// matching `-----END <label>-----`, with any text before and after left out. `None` when no
/// line starts a PEM block. A block without its END line is returned to the end of the input,
/// so that the PEM decoder names what is missing.
pub fn first_block(input: &[u8]) -> Option<&[u8]> {
    // Only line starts are looked at: base64 of a CMS (kilobytes on one line) is skipped whole.
    let mut start = 0;
    while !input[start..].starts_with(BEGIN) {
        start += input[start..].iter().position(|&b| b == b'\n')? + 1;
    }
    let rest = &input[start..];
    let label_end = rest[BEGIN.len()..].windows(DASHES.len()).position(|w| w == DASHES)? + BEGIN.len();
    let label = &rest[BEGIN.len()..label_end];
    let mut end_marker = b"-----END ".to_vec();
    end_marker.extend_from_slice(label);
    end_marker.extend_from_slice(DASHES);
    match rest.windows(end_marker.len()).position(|w| w == end_marker.as_slice()) {
        Some(at) => Some(&rest[..at + end_marker.len()]),
        None => Some(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----";

    #[test]
    fn skips_openssl_bag_attributes_and_trailing_blocks() {
        let text = format!(
            "Bag Attributes\n    localKeyID: 01 02 03\n    friendlyName: 0a1b2c\nsubject=CN = ТЕСТОВ ТЕСТ\n\
             issuer=CN = NCA\n{BLOCK}\nBag Attributes: <No Attributes>\n-----BEGIN CERTIFICATE-----\nMAE=\n\
             -----END CERTIFICATE-----\n"
        );
        assert_eq!(first_block(text.as_bytes()), Some(BLOCK.as_bytes()));
        let (label, der) = der::pem::decode_vec(first_block(text.as_bytes()).unwrap()).unwrap();
        assert_eq!((label, der), ("CERTIFICATE", vec![0x30, 0x00]));
        assert_eq!(first_block(BLOCK.as_bytes()), Some(BLOCK.as_bytes()));
    }

    #[test]
    fn no_block_or_an_unfinished_one() {
        assert_eq!(first_block(b"MAA="), None);
        assert_eq!(first_block(b"text -----BEGIN X-----"), None, "BEGIN must start a line");
        assert_eq!(first_block(b"-----BEGIN X-----\nMAA=\n"), Some(&b"-----BEGIN X-----\nMAA=\n"[..]));
    }
}
