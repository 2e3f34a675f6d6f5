//! A State Corporation receipt as a one-page A4 PDF (`ca application receipt --pdf`): the same
//! lines as the text receipt, in a TrueType font embedded in the file so Cyrillic renders on
//! any reader. The font is DejaVu Sans from Debian's `fonts-dejavu-core` (scripts/setup.sh
//! installs it), or the file in `CA_RECEIPT_FONT`.

use ca_core::ra::receipt::Receipt;
use printpdf::{Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem};

use crate::failure::Failure;

/// Where Debian's fonts-dejavu-core puts the font.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Characters per printed line at 10 pt on A4 with 20 mm margins.
const WIDTH: usize = 88;

/// Break `line` at spaces into pieces of at most [`WIDTH`] characters (a longer word stays
/// whole); a continuation keeps the line's indentation.
fn wrap(line: &str) -> Vec<String> {
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for word in line.split_whitespace() {
        let len = current.chars().count();
        if len > 0 && len + 1 + word.chars().count() > WIDTH {
            out.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current.push_str(&indent);
            if !out.is_empty() {
                current.push_str("   ");
            }
        } else {
            current.push(' ');
        }
        current.push_str(word);
    }
    out.push(current);
    out
}

/// The receipt as PDF bytes.
pub fn render(receipt: &Receipt) -> Result<Vec<u8>, Failure> {
    let path = std::env::var("CA_RECEIPT_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_owned());
    let bytes = std::fs::read(&path).map_err(|e| {
        Failure::Input(format!(
            "cannot read the receipt font {path}: {e} (install fonts-dejavu-core or set CA_RECEIPT_FONT)"
        ))
    })?;
    let font = ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
        .ok_or_else(|| Failure::Input(format!("{path} is not a TrueType/OpenType font")))?;
    let mut doc = PdfDocument::new(&format!("Расписка № {}", receipt.number));
    let font = PdfFontHandle::External(doc.add_font(&font));
    let mut ops = vec![
        Op::StartTextSection,
        Op::SetTextCursor { pos: Point::new(Mm(20.0), Mm(277.0)) },
        Op::SetLineHeight { lh: Pt(14.0) },
    ];
    for (i, line) in receipt.lines().iter().enumerate() {
        // The number and the title stand out.
        let size = if i < 2 { Pt(14.0) } else { Pt(10.0) };
        ops.push(Op::SetFont { font: font.clone(), size });
        for piece in wrap(line) {
            ops.push(Op::ShowText { items: vec![TextItem::Text(piece)] });
            ops.push(Op::AddLineBreak);
        }
    }
    ops.push(Op::EndTextSection);
    let page = PdfPage::new(Mm(210.0), Mm(297.0), ops);
    Ok(doc.with_pages(vec![page]).save(&PdfSaveOptions::default(), &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_break_at_spaces_and_keep_their_indent() {
        let line = format!("  1) {}", "слово ".repeat(40));
        let pieces = wrap(&line);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.chars().count() <= WIDTH + 3 && p.starts_with("  ")));
        assert_eq!(pieces.join(" ").split_whitespace().count(), line.split_whitespace().count());
        assert_eq!(wrap("short"), vec!["short".to_owned()]);
    }
}
