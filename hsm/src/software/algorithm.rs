//! The key types the CA generates and accepts.

use std::fmt;
use std::str::FromStr;

use ca_core::signer::SignatureAlgorithm;

/// A key type and size. The signature algorithm follows from it: RSA keys sign with
/// PKCS#1 v1.5 and SHA-256, P-256 with ECDSA/SHA-256, P-384 with ECDSA/SHA-384.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256 (secp256r1).
    P256,
    /// ECDSA on NIST P-384 (secp384r1).
    P384,
}

impl KeyAlgorithm {
    /// Every supported algorithm, in the order they are listed to users.
    pub const ALL: [Self; 5] = [Self::Rsa2048, Self::Rsa3072, Self::Rsa4096, Self::P256, Self::P384];

    /// The name used in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::P256 => "p256",
            Self::P384 => "p384",
        }
    }

    /// The signature algorithm a key of this type signs with.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => SignatureAlgorithm::RsaPkcs1Sha256,
            Self::P256 => SignatureAlgorithm::EcdsaP256Sha256,
            Self::P384 => SignatureAlgorithm::EcdsaP384Sha384,
        }
    }

    /// Whether this is one of the RSA sizes.
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// The RSA algorithm with a modulus of `bytes` bytes, if that is a size we support.
    pub(crate) fn rsa_from_modulus_len(bytes: usize) -> Option<Self> {
        match bytes {
            256 => Some(Self::Rsa2048),
            384 => Some(Self::Rsa3072),
            512 => Some(Self::Rsa4096),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given is not one of [`KeyAlgorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key algorithm {0:?}; expected one of rsa2048, rsa3072, rsa4096, p256, p384")]
pub struct UnknownKeyAlgorithm(pub String);

impl FromStr for KeyAlgorithm {
    type Err = UnknownKeyAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownKeyAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.to_string().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        assert_eq!("P256".parse::<KeyAlgorithm>().unwrap(), KeyAlgorithm::P256);
        assert!("rsa1024".parse::<KeyAlgorithm>().is_err());
        assert!("".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn serde_names_match_display() {
        for alg in KeyAlgorithm::ALL {
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{}\"", alg.name()));
            assert_eq!(serde_json::from_str::<KeyAlgorithm>(&json).unwrap(), alg);
        }
    }
}
