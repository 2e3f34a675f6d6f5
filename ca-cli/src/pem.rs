//! PEM in and out (the PEM error type does not implement std::error::Error, hence these).

/// DER to PEM with LF line endings.
pub fn encode(label: &str, der_bytes: &[u8]) -> anyhow::Result<String> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der_bytes)
        .map_err(|e| anyhow::anyhow!("PEM encoding: {e}"))
}

/// The DER inside a PEM document whose label is `label`.
pub fn decode(label: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let (found, der_bytes) = der::pem::decode_vec(text.as_bytes()).map_err(|e| anyhow::anyhow!("not PEM: {e}"))?;
    anyhow::ensure!(found == label, "PEM label is {found:?}, expected {label:?}");
    Ok(der_bytes)
}
