//! Reading an XML document within limits, and naming its elements for reports.

use xml_sec::{Node, ParseError, XmlDocument, XmlDocumentError};

use super::XmlError;

/// The largest XML document accepted, in bytes (a signed login or service request is a few KB).
pub const MAX_XML_BYTES: usize = 1024 * 1024;
/// The deepest element nesting accepted (the document element is depth 1).
pub const MAX_DEPTH: usize = 64;

/// Attribute names that carry an element's ID for `#id` references (unqualified). xmlsec1 and
/// the national signing client use these spellings.
const ID_ATTRIBUTES: [&str; 3] = ["Id", "ID", "id"];

/// Parse `xml` (UTF-8 or with a BOM/declaration naming its encoding): no DTD, at most
/// [`MAX_XML_BYTES`] and [`MAX_DEPTH`].
pub(crate) fn parse(xml: &[u8]) -> Result<XmlDocument, XmlError> {
    if xml.iter().all(u8::is_ascii_whitespace) {
        return Err(XmlError::Empty);
    }
    if xml.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge { size: xml.len(), limit: MAX_XML_BYTES });
    }
    let document = XmlDocument::parse_bytes(xml).map_err(|e| match e {
        XmlDocumentError::Parse(ParseError::DtdDetected) => XmlError::Dtd,
        XmlDocumentError::DocumentTooDeep { .. } => XmlError::TooDeep { limit: MAX_DEPTH },
        XmlDocumentError::DocumentTooLarge { actual, .. } => XmlError::TooLarge { size: actual, limit: MAX_XML_BYTES },
        other => XmlError::Malformed(other.to_string()),
    })?;
    let too_deep = document.with_view(|view| {
        view.document()
            .descendants()
            .filter(|n| n.is_element())
            .any(|n| n.ancestors().filter(|a| a.is_element()).take(MAX_DEPTH + 1).count() > MAX_DEPTH)
    });
    if too_deep {
        return Err(XmlError::TooDeep { limit: MAX_DEPTH });
    }
    Ok(document)
}

/// The element's qualified name as written (`prefix:local` or `local`).
pub(crate) fn qualified_name(node: Node<'_, '_>) -> String {
    match node.prefix() {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}:{}", node.tag_name().name()),
        _ => node.tag_name().name().to_string(),
    }
}

/// A path naming the element unambiguously: `/a[1]/b[2]` (position among same-named siblings).
pub(crate) fn element_path(node: Node<'_, '_>) -> String {
    let mut steps: Vec<String> = node
        .ancestors()
        .filter(|n| n.is_element())
        .map(|n| {
            let name = n.tag_name();
            let position = 1 + std::iter::successors(n.prev_sibling(), |s| s.prev_sibling())
                .filter(|s| s.is_element() && s.tag_name() == name)
                .count();
            format!("{}[{position}]", qualified_name(n))
        })
        .collect();
    steps.reverse();
    format!("/{}", steps.join("/"))
}

/// The element's ID, if it has one of the [`ID_ATTRIBUTES`].
pub(crate) fn element_id<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    ID_ATTRIBUTES.iter().find_map(|name| node.attribute(*name))
}

/// Every element whose ID is `id`: a reference is only followed when there is exactly one.
pub(crate) fn elements_with_id<'a, 'i>(document: &'a xml_sec::Document<'i>, id: &str) -> Vec<Node<'a, 'i>> {
    document.descendants().filter(|n| n.is_element() && element_id(*n) == Some(id)).collect()
}

/// Whether `node` is `ancestor` or lies inside it.
pub(crate) fn within(node: Node<'_, '_>, ancestor: Node<'_, '_>) -> bool {
    node.id() == ancestor.id() || node.ancestors().any(|a| a.id() == ancestor.id())
}

/// The text of the document element's child element named `local_name` (any namespace), for
/// a relying party that reads one value from a signed document (a login nonce): `None` when
/// there is none, an error when there are several (which one would a reader take?).
pub fn document_child_text(xml: &[u8], local_name: &str) -> Result<Option<String>, XmlError> {
    let document = parse(xml)?;
    document.with_view(|view| {
        let root = view.document().root_element();
        let mut found = root.children().filter(|n| n.is_element() && n.tag_name().name() == local_name);
        let first = found.next();
        if found.next().is_some() {
            return Err(XmlError::Ambiguous(local_name.to_string()));
        }
        Ok(first.map(|n| n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect::<String>()))
    })
}
