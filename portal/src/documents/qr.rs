//! QR images of an access URL: SVG (text) and PNG (1-bit greyscale), from the `qrcode` crate's
//! module matrix, error correction level M, a quiet zone of four modules.

use qrcode::{Color, EcLevel, QrCode};

use crate::error::PortalError;

/// Pixels per module in the PNG.
const SCALE: usize = 8;
const QUIET: usize = 4;

fn code(payload: &str) -> Result<QrCode, PortalError> {
    QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .map_err(|e| PortalError::internal(format!("QR code: {e}")))
}

/// An SVG image of `payload`.
pub fn svg(payload: &str) -> Result<String, PortalError> {
    Ok(code(payload)?.render::<qrcode::render::svg::Color<'_>>().quiet_zone(true).min_dimensions(200, 200).build())
}

/// A PNG image of `payload`.
pub fn png(payload: &str) -> Result<Vec<u8>, PortalError> {
    let code = code(payload)?;
    let width = code.width();
    let modules = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xffu8; row_bytes * side];
    for (i, color) in modules.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % width + QUIET, i / width + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            for x in mx * SCALE..(mx + 1) * SCALE {
                pixels[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
            }
        }
    }
    let mut out = Vec::new();
    let side = u32::try_from(side).map_err(PortalError::internal)?;
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().map_err(PortalError::internal)?;
    writer.write_image_data(&pixels).map_err(PortalError::internal)?;
    writer.finish().map_err(PortalError::internal)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_of_a_url() {
        let url = "https://egov.kz/documents/open?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let svg = svg(url).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
        let png = png(url).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(png.as_slice());
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        let modules = code(url).unwrap().width();
        assert_eq!(info.width as usize, (modules + 2 * QUIET) * SCALE);
    }
}
