//! Opening CA keys wherever they live: an encrypted file under `private/`, or a PKCS#11 token
//! (HSM) found by module, token label and CKA_ID. The same commands work either way.

use std::path::Path;

use anyhow::Context as _;
use ca_core::ca_dir::{CaDir, KeyLocation};
use ca_core::signer::Signer;
use hsm::pkcs11::{KeySelector, Pkcs11Module, SecretPin, Token, TokenError, TokenSelector};
use hsm::SoftwareKey;

use crate::failure::Failure;
use crate::secrets::SecretSource;

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::WrongPin { .. } | TokenError::PinLocked | TokenError::PinRejected => {
                Failure::Auth(e.to_string())
            }
            TokenError::ModuleNotFound(_) | TokenError::TokenAbsent(_) | TokenError::KeyNotFound(_) => {
                Failure::NotFound(e.to_string())
            }
            other => Failure::Internal(anyhow::Error::new(other)),
        }
    }
}

/// Open a token and log in with the PIN from `pin`.
pub fn open_token(module: &Path, label: &str, pin: &SecretSource) -> Result<Token, Failure> {
    let module = Pkcs11Module::load(module)?;
    let token = module.open_token(&TokenSelector::Label(label.to_owned()))?;
    let secret = SecretPin::new(pin.read(false)?);
    token.login(&secret)?;
    Ok(token)
}

/// The signer for the key of the CA `name` (root, issuing or retired), at `location`.
pub fn load_ca_signer(
    dir: &CaDir,
    name: &str,
    location: Option<&KeyLocation>,
    passphrase: &SecretSource,
    pin: &SecretSource,
) -> Result<Box<dyn Signer>, Failure> {
    let what = format!("CA {name}");
    load_signer(location, &dir.key(name), &what, passphrase, pin)
}

/// The signer for a key at `location`: a token key, or (no location) the encrypted `file`.
pub fn load_signer(
    location: Option<&KeyLocation>,
    file: &Path,
    what: &str,
    passphrase: &SecretSource,
    pin: &SecretSource,
) -> Result<Box<dyn Signer>, Failure> {
    match location.unwrap_or(&KeyLocation::File) {
        KeyLocation::File => {
            let pem = zeroize::Zeroizing::new(
                std::fs::read_to_string(file).with_context(|| format!("cannot read the key of {what}"))?,
            );
            let secret = passphrase.read(false)?;
            Ok(Box::new(SoftwareKey::from_encrypted_pem(&pem, secret.as_bytes())?))
        }
        KeyLocation::Pkcs11 { module, token, id } => {
            let token = open_token(module, token, pin)?;
            let id = hex::decode(id).map_err(|_| Failure::Input(format!("ca.toml: key id {id:?} is not hex")))?;
            Ok(Box::new(token.find_key(&KeySelector::Id(id))?))
        }
    }
}
