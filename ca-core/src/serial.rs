//! Certificate serial numbers: 20 random bytes, first byte in 0x10..=0x7F, so the DER INTEGER
//! is positive, always exactly 20 octets (the RFC 5280 maximum) and carries > 150 bits of entropy.

use std::fmt;
use std::str::FromStr;

/// Length of every serial this CA issues.
pub const SERIAL_LEN: usize = 20;

/// A serial number as it appears in a certificate or CRL entry.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNumber(Vec<u8>);

/// A serial number could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error("invalid serial number {0:?}: expected hexadecimal digits")]
    NotHex(String),
    #[error("invalid serial number: {0} octets, at most 20 allowed")]
    TooLong(usize),
    #[error("invalid serial number: empty")]
    Empty,
}

impl SerialNumber {
    /// A fresh random serial from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut bytes = vec![0u8; SERIAL_LEN];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
        // Map the first byte into 0x10..=0x7F: positive, no leading zero octet, fixed length.
        bytes[0] = 0x10 + bytes[0] % 0x70;
        Self(bytes)
    }

    /// A serial read from a certificate or CRL (big-endian magnitude, leading zeros stripped).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SerialError> {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
        let trimmed = &bytes[start..];
        if trimmed.is_empty() {
            return Err(SerialError::Empty);
        }
        if trimmed.len() > SERIAL_LEN {
            return Err(SerialError::TooLong(trimmed.len()));
        }
        Ok(Self(trimmed.to_vec()))
    }

    /// Big-endian magnitude bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex, the form used in the store, file names and the CLI.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// The serial as an `x509_cert` value for a TBSCertificate.
    pub fn to_x509(&self) -> x509_cert::serial_number::SerialNumber {
        x509_cert::serial_number::SerialNumber::new(&self.0).expect("20 positive octets always encode")
    }
}

impl AsRef<[u8]> for SerialNumber {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for SerialNumber {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The store's form (hex digits, even length): decoded on the stack, one allocation for
        // the result — a million-entry CRL reads a million of these.
        if s.len() % 2 == 0 && s.len() <= 2 * SERIAL_LEN {
            let mut buf = [0u8; SERIAL_LEN];
            let bytes = &mut buf[..s.len() / 2];
            if hex::decode_to_slice(s, bytes).is_ok() {
                return Self::from_bytes(bytes);
            }
        }
        let cleaned: String = s.trim().chars().filter(|c| *c != ':' && *c != ' ').collect();
        let cleaned = cleaned.strip_prefix("0x").unwrap_or(&cleaned);
        if cleaned.is_empty() {
            return Err(SerialError::Empty);
        }
        let padded = if cleaned.len() % 2 == 1 { format!("0{cleaned}") } else { cleaned.to_owned() };
        let bytes = hex::decode(&padded).map_err(|_| SerialError::NotHex(s.chars().take(60).collect()))?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({})", self.to_hex())
    }
}

impl serde::Serialize for SerialNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_20_positive_octets_and_distinct() {
        let a = SerialNumber::random();
        let b = SerialNumber::random();
        assert_ne!(a, b);
        for s in [&a, &b] {
            assert_eq!(s.as_bytes().len(), 20);
            assert!((0x10..=0x7f).contains(&s.as_bytes()[0]));
            use der::Encode;
            // DER INTEGER: tag, length 20, no padding octet.
            assert_eq!(s.to_x509().to_der().unwrap().len(), 22);
        }
    }

    #[test]
    fn parses_hex_forms() {
        let s = SerialNumber::random();
        assert_eq!(s.to_hex().parse::<SerialNumber>().unwrap(), s);
        assert_eq!(s.to_hex().to_uppercase().parse::<SerialNumber>().unwrap(), s);
        assert!("zz".parse::<SerialNumber>().is_err());
        assert!("".parse::<SerialNumber>().is_err());
        assert!("00".repeat(22).parse::<SerialNumber>().is_ok());
        assert!(matches!("11".repeat(21).parse::<SerialNumber>(), Err(SerialError::TooLong(21))));
    }
}
