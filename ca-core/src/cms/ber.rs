//! BER to DER normalisation, so that `der` (which is strict DER, as it should be) can decode
//! what signing clients send: `openssl cms -sign -stream` and Java-based clients (NCALayer)
//! write indefinite lengths and constructed OCTET STRINGs.
//!
//! The conversion is schema-free, so it only does what can be done without knowing the ASN.1
//! types: definite minimal lengths, constructed universal strings flattened to primitive ones,
//! BOOLEAN TRUE as 0xFF. It does not re-sort SET OF: `der` sorts on decode, and signed
//! attributes must be hashed in the order the signer wrote them.

/// Nesting deeper than this is refused (a real CMS is about 15 levels deep); it bounds the
/// recursion on hostile input.
const MAX_DEPTH: usize = 64;

/// Why the input is not BER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    #[error("input ends in the middle of an element (offset {0})")]
    Truncated(usize),
    #[error("length at offset {0} is invalid or too large")]
    BadLength(usize),
    #[error("indefinite length on a primitive element at offset {0}")]
    IndefinitePrimitive(usize),
    #[error("elements nested more than {MAX_DEPTH} deep")]
    TooDeep,
    #[error("constructed string (segment {0}) holds something other than strings of its type")]
    BadStringSegment(usize),
    #[error("{0} bytes of trailing data after the outermost element")]
    TrailingData(usize),
    #[error("empty input")]
    Empty,
}

/// One decoded element: tag octets as written (class, constructed bit, number) and its content.
struct Element {
    tag: Vec<u8>,
    constructed: bool,
    /// Universal-class tag number, if the element is universal.
    universal: Option<u32>,
    content: Content,
}

enum Content {
    Primitive(Vec<u8>),
    Constructed(Vec<Element>),
}

/// Convert one BER element (the whole input) to DER.
pub fn ber_to_der(input: &[u8]) -> Result<Vec<u8>, BerError> {
    if input.is_empty() {
        return Err(BerError::Empty);
    }
    if is_der(input) {
        // Nearly every client sends DER: recognise it in one pass without building a tree.
        return Ok(input.to_vec());
    }
    normalise(input)
}

/// Parse the whole tree and write it back as DER.
fn normalise(input: &[u8]) -> Result<Vec<u8>, BerError> {
    let mut pos = 0;
    let element = parse(input, &mut pos, 0)?;
    if pos != input.len() {
        return Err(BerError::TrailingData(input.len() - pos));
    }
    let mut out = Vec::with_capacity(input.len());
    write(&element, &mut out)?;
    Ok(out)
}

/// Whether `input` is one element exactly as [`ber_to_der`] would write it, so converting it
/// would copy it unchanged. Conservative: anything unusual answers false and takes the full
/// path, which converts it or says what is wrong.
fn is_der(input: &[u8]) -> bool {
    let mut pos = 0;
    scan(input, &mut pos, 0).is_some() && pos == input.len()
}

fn scan(input: &[u8], pos: &mut usize, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let first = *input.get(*pos)?;
    *pos += 1;
    let number = u32::from(first & 0x1f);
    if number == 0x1f {
        return None; // high tag numbers do not occur in CMS; leave them to the full path
    }
    let len_byte = *input.get(*pos)?;
    *pos += 1;
    let length = match len_byte {
        b if b < 0x80 => usize::from(b),
        0x80 => return None, // indefinite
        b => {
            let count = usize::from(b & 0x7f);
            let bytes = input.get(*pos..*pos + count).filter(|_| count <= 4)?;
            *pos += count;
            let len = bytes.iter().fold(0usize, |len, b| (len << 8) | usize::from(*b));
            if bytes[0] == 0 || len < 0x80 {
                return None; // not minimal
            }
            len
        }
    };
    let end = pos.checked_add(length).filter(|e| *e <= input.len())?;
    let universal = first & 0xc0 == 0;
    if first & 0x20 != 0 {
        if universal && is_string_type(number) {
            return None; // constructed string: flattened by the full path
        }
        let inner = &input[..end];
        while *pos < end {
            scan(inner, pos, depth + 1)?;
        }
    } else {
        if universal && number == BOOLEAN && length == 1 && !matches!(input[*pos], 0 | 0xff) {
            return None;
        }
        *pos = end;
    }
    Some(())
}

fn take(input: &[u8], pos: &mut usize) -> Result<u8, BerError> {
    let b = *input.get(*pos).ok_or(BerError::Truncated(*pos))?;
    *pos += 1;
    Ok(b)
}

fn parse(input: &[u8], pos: &mut usize, depth: usize) -> Result<Element, BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::TooDeep);
    }
    let start = *pos;
    let first = take(input, pos)?;
    let constructed = first & 0x20 != 0;
    let mut tag = vec![first];
    let mut number = u32::from(first & 0x1f);
    if number == 0x1f {
        number = 0;
        loop {
            let b = take(input, pos)?;
            tag.push(b);
            number = number.checked_mul(128).ok_or(BerError::BadLength(start))? | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
            if tag.len() > 5 {
                return Err(BerError::BadLength(start));
            }
        }
    }
    let universal = (first & 0xc0 == 0).then_some(number);
    let len_pos = *pos;
    let len_byte = take(input, pos)?;
    let length = match len_byte {
        0x80 => None,
        b if b < 0x80 => Some(usize::from(b)),
        b => {
            let count = usize::from(b & 0x7f);
            if count > 4 {
                return Err(BerError::BadLength(len_pos));
            }
            let mut len = 0usize;
            for _ in 0..count {
                len = (len << 8) | usize::from(take(input, pos)?);
            }
            Some(len)
        }
    };
    let content = match (constructed, length) {
        (false, None) => return Err(BerError::IndefinitePrimitive(start)),
        (false, Some(len)) => {
            let end = pos.checked_add(len).filter(|e| *e <= input.len()).ok_or(BerError::Truncated(*pos))?;
            let bytes = input[*pos..end].to_vec();
            *pos = end;
            Content::Primitive(bytes)
        }
        (true, Some(len)) => {
            let end = pos.checked_add(len).filter(|e| *e <= input.len()).ok_or(BerError::Truncated(*pos))?;
            let inner = &input[..end];
            let mut children = Vec::new();
            while *pos < end {
                children.push(parse(inner, pos, depth + 1)?);
            }
            Content::Constructed(children)
        }
        (true, None) => {
            let mut children = Vec::new();
            loop {
                if input.get(*pos..*pos + 2) == Some(&[0, 0]) {
                    *pos += 2;
                    break;
                }
                if *pos >= input.len() {
                    return Err(BerError::Truncated(*pos));
                }
                children.push(parse(input, pos, depth + 1)?);
            }
            Content::Constructed(children)
        }
    };
    Ok(Element { tag, constructed, universal, content })
}

/// Universal string types that BER allows in constructed form and DER does not.
fn is_string_type(number: u32) -> bool {
    matches!(number, 3 | 4 | 12 | 18..=30)
}

const BIT_STRING: u32 = 3;
const BOOLEAN: u32 = 1;

fn write_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn write(element: &Element, out: &mut Vec<u8>) -> Result<(), BerError> {
    match (&element.content, element.universal) {
        (Content::Constructed(children), Some(number)) if is_string_type(number) => {
            let mut value = Vec::new();
            flatten(children, number, &mut value)?;
            if number == BIT_STRING {
                value = join_bit_string(children)?;
            }
            out.push(element.tag[0] & !0x20);
            write_length(value.len(), out);
            out.extend_from_slice(&value);
        }
        (Content::Primitive(bytes), Some(BOOLEAN)) if bytes.len() == 1 && bytes[0] != 0 => {
            out.extend_from_slice(&element.tag);
            out.extend_from_slice(&[1, 0xff]);
        }
        (Content::Primitive(bytes), _) => {
            out.extend_from_slice(&element.tag);
            write_length(bytes.len(), out);
            out.extend_from_slice(bytes);
        }
        (Content::Constructed(children), _) => {
            debug_assert!(element.constructed);
            let mut value = Vec::new();
            for child in children {
                write(child, &mut value)?;
            }
            out.extend_from_slice(&element.tag);
            write_length(value.len(), out);
            out.extend_from_slice(&value);
        }
    }
    Ok(())
}

/// Concatenate the segments of a constructed string (segments may themselves be constructed).
fn flatten(children: &[Element], number: u32, out: &mut Vec<u8>) -> Result<(), BerError> {
    for child in children {
        if child.universal != Some(number) {
            return Err(BerError::BadStringSegment(out.len()));
        }
        match &child.content {
            Content::Primitive(bytes) => out.extend_from_slice(bytes),
            Content::Constructed(inner) => flatten(inner, number, out)?,
        }
    }
    Ok(())
}

/// A constructed BIT STRING: every segment starts with its unused-bits octet, which must be
/// zero except in the last segment.
fn join_bit_string(children: &[Element]) -> Result<Vec<u8>, BerError> {
    let mut segments = Vec::new();
    collect_primitive(children, &mut segments);
    let mut data = Vec::new();
    let mut unused = 0u8;
    for (i, seg) in segments.iter().enumerate() {
        let (&first, rest) = seg.split_first().ok_or(BerError::BadStringSegment(i))?;
        if first > 7 || (first != 0 && i + 1 != segments.len()) {
            return Err(BerError::BadStringSegment(i));
        }
        unused = first;
        data.extend_from_slice(rest);
    }
    let mut value = vec![unused];
    value.extend_from_slice(&data);
    Ok(value)
}

fn collect_primitive<'a>(children: &'a [Element], out: &mut Vec<&'a [u8]>) {
    for child in children {
        match &child.content {
            Content::Primitive(bytes) => out.push(bytes),
            Content::Constructed(inner) => collect_primitive(inner, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path must agree with the full conversion: whatever `is_der` accepts, the full
    /// path writes back unchanged. Checked on a real CMS and on thousands of corruptions of it.
    #[test]
    fn the_der_fast_path_agrees_with_the_full_conversion() {
        let ca = crate::cms::tests::fixture_cms();
        assert!(is_der(&ca), "a CMS we produced is DER");
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut input = ca.clone();
            for _ in 0..1 + next() % 3 {
                let i = (next() as usize) % input.len();
                input[i] = match next() % 4 {
                    0 => 0x80,
                    1 => 0x00,
                    2 => input[i] ^ 0x20,
                    _ => next() as u8,
                };
            }
            if is_der(&input) {
                accepted += 1;
                assert_eq!(
                    normalise(&input).as_deref(),
                    Ok(input.as_slice()),
                    "is_der accepted what normalise changes"
                );
            } else {
                refused += 1;
            }
        }
        assert!(accepted > 100 && refused > 100, "both paths exercised: {accepted} accepted, {refused} refused");
    }

    #[test]
    fn der_passes_through_unchanged() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        assert_eq!(ber_to_der(&der).unwrap(), der);
    }

    #[test]
    fn indefinite_lengths_become_definite() {
        // SEQUENCE (indefinite) { INTEGER 5, SEQUENCE (indefinite) { NULL } }
        let ber = [0x30, 0x80, 0x02, 0x01, 0x05, 0x30, 0x80, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(ber_to_der(&ber).unwrap(), [0x30, 0x07, 0x02, 0x01, 0x05, 0x30, 0x02, 0x05, 0x00]);
    }

    #[test]
    fn constructed_octet_strings_are_flattened_inside_context_tags() {
        // [0] (indefinite) { OCTET STRING constructed (indefinite) { "ab", "c" } }, as -stream writes eContent
        let ber = [0xa0, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00, 0x00];
        assert_eq!(ber_to_der(&ber).unwrap(), [0xa0, 0x05, 0x04, 0x03, b'a', b'b', b'c']);
    }

    #[test]
    fn non_minimal_lengths_and_booleans_are_normalised() {
        let ber = [0x30, 0x82, 0x00, 0x03, 0x01, 0x01, 0x01];
        assert_eq!(ber_to_der(&ber).unwrap(), [0x30, 0x03, 0x01, 0x01, 0xff]);
    }

    #[test]
    fn long_lengths_are_written_minimally() {
        let mut ber = vec![0x04, 0x84, 0x00, 0x00, 0x01, 0x00];
        ber.extend(std::iter::repeat_n(7u8, 256));
        let der = ber_to_der(&ber).unwrap();
        assert_eq!(&der[..4], &[0x04, 0x82, 0x01, 0x00]);
        assert_eq!(der.len(), 4 + 256);
    }

    #[test]
    fn constructed_bit_string_keeps_the_last_unused_bits() {
        let ber = [0x23, 0x80, 0x03, 0x02, 0x00, 0xaa, 0x03, 0x02, 0x04, 0xf0, 0x00, 0x00];
        assert_eq!(ber_to_der(&ber).unwrap(), [0x03, 0x03, 0x04, 0xaa, 0xf0]);
    }

    #[test]
    fn high_tag_numbers_are_copied() {
        let ber = [0x9f, 0x81, 0x00, 0x01, 0x07];
        assert_eq!(ber_to_der(&ber).unwrap(), ber);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        assert_eq!(ber_to_der(&[]), Err(BerError::Empty));
        assert!(matches!(ber_to_der(&[0x30]), Err(BerError::Truncated(_))));
        assert!(matches!(ber_to_der(&[0x30, 0x05, 0x02, 0x01]), Err(BerError::Truncated(_))));
        assert!(matches!(ber_to_der(&[0x30, 0x80, 0x02, 0x01, 0x05]), Err(BerError::Truncated(_))));
        assert!(matches!(ber_to_der(&[0x04, 0x80, 0x00, 0x00]), Err(BerError::IndefinitePrimitive(_))));
        assert!(matches!(ber_to_der(&[0x04, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]), Err(BerError::BadLength(_))));
        assert!(matches!(ber_to_der(&[0x05, 0x00, 0x05]), Err(BerError::TrailingData(1))));
        assert!(matches!(ber_to_der(&[0x24, 0x03, 0x02, 0x01, 0x00]), Err(BerError::BadStringSegment(_))));
        // A child claiming more than its parent holds.
        assert!(matches!(ber_to_der(&[0x30, 0x02, 0x04, 0x05, 0, 0, 0, 0, 0]), Err(BerError::Truncated(_))));
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 200).flatten().collect();
        assert_eq!(ber_to_der(&deep), Err(BerError::TooDeep));
    }

    #[test]
    fn every_prefix_and_bit_flip_of_a_ber_message_is_handled() {
        let ber = [0x30, 0x80, 0x24, 0x80, 0x04, 0x01, b'x', 0x00, 0x00, 0x31, 0x03, 0x01, 0x01, 0x01, 0x00, 0x00];
        for n in 0..ber.len() {
            let _ = ber_to_der(&ber[..n]);
        }
        for i in 0..ber.len() * 8 {
            let mut m = ber;
            m[i / 8] ^= 1 << (i % 8);
            let _ = ber_to_der(&m);
        }
    }
}
