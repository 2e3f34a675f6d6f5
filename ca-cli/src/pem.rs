//! PEM in and out (the PEM error type does not implement std::error::Error, hence these).

/// DER to PEM with LF line endings.
pub fn encode(label: &str, der_bytes: &[u8]) -> anyhow::Result<String> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der_bytes)
        .map_err(|e| anyhow::anyhow!("PEM encoding: {e}"))
}

/// The DER inside the first PEM block of `text` (text before it, such as openssl's "Bag
/// Attributes", is skipped), whose label must be `label`.
pub fn decode(label: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let block = ca_core::pem::first_block(text.as_bytes()).ok_or_else(|| anyhow::anyhow!("not PEM: no BEGIN line"))?;
    let (found, der_bytes) = der::pem::decode_vec(block).map_err(|e| anyhow::anyhow!("not PEM: {e}"))?;
    anyhow::ensure!(found == label, "PEM label is {found:?}, expected {label:?}");
    Ok(der_bytes)
}
