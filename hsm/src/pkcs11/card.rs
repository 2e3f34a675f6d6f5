//! A PKCS#11 token as the card that personalization writes to.

use ca_core::card::{CardError, CardKeyKind, CardToken};
use ca_core::signer::Signer;

use super::{CertificateCategory, KeySelector, Token, TokenError};
use crate::KeyAlgorithm;

fn card_error(e: TokenError) -> CardError {
    match e {
        TokenError::TokenRemoved(_) | TokenError::ObjectGone(_) | TokenError::TokenAbsent(_) => {
            CardError::Removed(e.to_string())
        }
        TokenError::TokenFull => CardError::Full(e.to_string()),
        other => CardError::Other(other.to_string()),
    }
}

impl CardToken for Token {
    fn find_key(&self, label: &str) -> Result<Option<Box<dyn Signer>>, CardError> {
        match Token::find_key(self, &KeySelector::Label(label.to_owned())) {
            Ok(key) => Ok(Some(Box::new(key))),
            Err(TokenError::KeyNotFound(_)) => Ok(None),
            Err(e) => Err(card_error(e)),
        }
    }

    fn generate_key(&self, kind: CardKeyKind, label: &str) -> Result<Box<dyn Signer>, CardError> {
        let algorithm = match kind {
            CardKeyKind::Rsa2048 => KeyAlgorithm::Rsa2048,
            CardKeyKind::P256 => KeyAlgorithm::P256,
        };
        self.generate_key_pair(algorithm, label).map(|k| Box::new(k) as Box<dyn Signer>).map_err(card_error)
    }

    fn write_certificate(&self, der: &[u8], label: &str, authority: bool) -> Result<(), CardError> {
        let category = if authority { CertificateCategory::Authority } else { CertificateCategory::TokenUser };
        Token::write_certificate(self, der, label, category).map(|_| ()).map_err(card_error)
    }

    fn certificates(&self) -> Result<Vec<Vec<u8>>, CardError> {
        Ok(self.list_objects().map_err(card_error)?.into_iter().filter_map(|o| o.certificate_der).collect())
    }
}
