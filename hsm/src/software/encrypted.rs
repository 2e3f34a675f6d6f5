//! CA private keys at rest: encrypted PKCS#8 (PEM label `ENCRYPTED PRIVATE KEY`) with
//! PBES2, scrypt and AES-256-CBC, readable by `openssl pkey`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use der::asn1::OctetStringRef;
use der::pem::LineEnding;
use der::{Decode, EncodePem, Sequence};
use pkcs5::pbes2;
use pkcs8::EncryptedPrivateKeyInfo;
use spki::AlgorithmIdentifierRef;
use zeroize::Zeroizing;

use super::SoftwareKey;
use crate::error::KeyError;

/// scrypt cost `N = 2^SCRYPT_LOG_N`. With `r = 8` this takes 16 MiB of memory. OpenSSL 3
/// refuses to derive a key that needs more than 32 MiB (its built-in scrypt `maxmem`), and
/// `N = 2^15, r = 8` already needs a little more than that, so this is the strongest
/// power-of-two setting `openssl pkey` can still open. It equals the defaults of
/// `openssl pkcs8 -topk8 -scrypt`.
pub const SCRYPT_LOG_N: u8 = 14;
/// scrypt block size `r`.
pub const SCRYPT_R: u32 = 8;
/// scrypt parallelisation `p`.
pub const SCRYPT_P: u32 = 1;

/// Upper bounds on the key derivation cost we accept when *reading* a file, so that a doctored
/// file cannot make us allocate gigabytes or spin for hours.
const MAX_SCRYPT_LOG_N: u32 = 20;
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";
const PLAIN_LABEL: &str = "PRIVATE KEY";

fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| KeyError::crypto("random generator failed"))?;
    Ok(bytes)
}

impl SoftwareKey {
    /// Encrypt the key as PKCS#8 `EncryptedPrivateKeyInfo` PEM with PBES2: scrypt
    /// (`N = 2^`[`SCRYPT_LOG_N`], `r = `[`SCRYPT_R`], `p = `[`SCRYPT_P`], 16-byte random salt)
    /// and AES-256-CBC. The passphrase must not be empty.
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> Result<String, KeyError> {
        let params = pkcs5::scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32)
            .map_err(|_| KeyError::crypto("invalid scrypt parameters"))?;
        self.to_encrypted_pem_with(passphrase, params)
    }

    pub(crate) fn to_encrypted_pem_with(
        &self,
        passphrase: &[u8],
        scrypt: pkcs5::scrypt::Params,
    ) -> Result<String, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::EmptyPassphrase);
        }
        let salt = random_bytes::<16>()?;
        let iv = random_bytes::<16>()?;
        let params = pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
            .map_err(|e| KeyError::Crypto(format!("PBES2 parameters: {e}")))?;
        let encrypted = encrypt_pkcs8(&params, passphrase, &self.to_pkcs8_der()?)?;
        EncryptedPrivateKeyInfo { encryption_algorithm: params.into(), encrypted_data: &encrypted }
            .to_pem(LineEnding::LF)
            .map_err(|e| KeyError::Crypto(format!("PEM encoding: {e}")))
    }

    /// Decrypt a key written by [`SoftwareKey::to_encrypted_pem`] (or any PBES2 encrypted
    /// PKCS#8 PEM using PBKDF2-HMAC-SHA-2 or scrypt with AES-CBC, as `openssl pkcs8 -topk8`
    /// writes it).
    ///
    /// A wrong passphrase gives [`KeyError::WrongPassphrase`]; input that is not an encrypted
    /// PKCS#8 PEM gives [`KeyError::Malformed`]; legacy (PBES1 / PKCS#12 PBE) or otherwise
    /// unsupported encryption gives [`KeyError::Unsupported`].
    pub fn from_encrypted_pem(pem: &str, passphrase: &[u8]) -> Result<Self, KeyError> {
        let (label, doc) = der::Document::from_pem(pem.trim_start()).map_err(|e| KeyError::malformed("PEM", e))?;
        match label {
            ENCRYPTED_LABEL => {}
            PLAIN_LABEL => {
                return Err(KeyError::Unsupported("unencrypted private key; CA keys are stored encrypted".into()))
            }
            other => {
                return Err(KeyError::Malformed(format!("expected an ENCRYPTED PRIVATE KEY PEM, found {other:?}")))
            }
        }
        let info = decode_encrypted_private_key_info(doc.as_bytes())?;
        let params = info
            .encryption_algorithm
            .pbes2()
            .ok_or_else(|| KeyError::Unsupported("PBES1 key encryption; re-encrypt the key with PBES2".into()))?;
        let plain = decrypt_pbes2(params, passphrase, info.encrypted_data)?;
        Self::from_decrypted_pkcs8(&plain)
    }

    /// Parse PKCS#8 that came out of a decryption. A wrong passphrase passes the CBC padding
    /// check about once in 256 tries and then yields garbage, so garbage means wrong passphrase.
    pub(crate) fn from_decrypted_pkcs8(plain: &[u8]) -> Result<Self, KeyError> {
        Self::from_pkcs8_der(plain).map_err(|e| match e {
            KeyError::Malformed(_) => KeyError::WrongPassphrase,
            other => other,
        })
    }
}

/// Encrypt `plain` without leaving an unzeroized copy of it behind.
pub(crate) fn encrypt_pkcs8(
    params: &pbes2::Parameters<'_>,
    passphrase: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, KeyError> {
    const BLOCK: usize = 16;
    let mut buffer = Zeroizing::new(Vec::with_capacity(plain.len() + BLOCK));
    buffer.extend_from_slice(plain);
    buffer.resize(plain.len() + BLOCK, 0);
    let ciphertext = params
        .encrypt_in_place(passphrase, &mut buffer, plain.len())
        .map_err(|e| KeyError::Crypto(format!("PBES2 encryption: {e}")))?;
    Ok(ciphertext.to_vec())
}

/// Decrypt PBES2 ciphertext into a zeroizing buffer, after checking that the key derivation
/// cost is within bounds.
pub(crate) fn decrypt_pbes2(
    params: &pbes2::Parameters<'_>,
    passphrase: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    check_kdf_cost(&params.kdf)?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(KeyError::Malformed("encrypted data is not a whole number of AES blocks".into()));
    }
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let len = match params.decrypt_in_place(passphrase, &mut buffer) {
        Ok(plain) => plain.len(),
        // pkcs5 0.7 reports a bad CBC padding as `EncryptFailed` even when decrypting.
        Err(pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed) => return Err(KeyError::WrongPassphrase),
        Err(pkcs5::Error::UnsupportedAlgorithm { oid }) => {
            return Err(KeyError::Unsupported(format!("PBES2 algorithm {oid}")))
        }
        Err(e) => return Err(KeyError::malformed("PBES2 parameters", e)),
    };
    buffer.truncate(len);
    Ok(buffer)
}

fn check_kdf_cost(kdf: &pbes2::Kdf<'_>) -> Result<(), KeyError> {
    if let Some(scrypt) = kdf.scrypt() {
        let n = scrypt.cost_parameter;
        let r = u64::from(scrypt.block_size);
        let p = u64::from(scrypt.parallelization);
        let log_n = n.checked_ilog2().unwrap_or(0);
        if log_n > MAX_SCRYPT_LOG_N || 128 * r * (n + p) > MAX_SCRYPT_MEMORY {
            return Err(KeyError::Unsupported(format!("scrypt cost N={n} r={r} p={p} is beyond the accepted limit")));
        }
    }
    if let Some(pbkdf2) = kdf.pbkdf2() {
        if pbkdf2.iteration_count > MAX_PBKDF2_ITERATIONS {
            return Err(KeyError::Unsupported(format!(
                "PBKDF2 iteration count {} is beyond the accepted limit",
                pbkdf2.iteration_count
            )));
        }
    }
    Ok(())
}

/// The shape of `EncryptedPrivateKeyInfo` with the algorithm left open, so that an algorithm
/// the pkcs8 crate does not know is reported as unsupported rather than as malformed.
#[derive(Sequence)]
struct OpaqueEncryptedPrivateKeyInfo<'a> {
    encryption_algorithm: AlgorithmIdentifierRef<'a>,
    _encrypted_data: OctetStringRef<'a>,
}

/// The error for a password-based encryption scheme other than PBES2 with AES-CBC (PBES1, the
/// legacy PKCS#12 PBEs with 3DES or RC2, or PBES2 with a cipher pkcs5 does not implement).
pub(crate) fn unsupported_encryption(oid: der::oid::ObjectIdentifier) -> KeyError {
    KeyError::Unsupported(format!("password-based encryption {oid}; only PBES2 with AES-CBC is supported"))
}

pub(crate) fn decode_encrypted_private_key_info(der: &[u8]) -> Result<EncryptedPrivateKeyInfo<'_>, KeyError> {
    EncryptedPrivateKeyInfo::from_der(der).map_err(|e| match OpaqueEncryptedPrivateKeyInfo::from_der(der) {
        Ok(opaque) => unsupported_encryption(opaque.encryption_algorithm.oid),
        Err(_) => KeyError::malformed("EncryptedPrivateKeyInfo", e),
    })
}

fn pem_rfc7468_label(pem: &str) -> Option<&str> {
    der::pem::decode_label(pem.trim_start().as_bytes()).ok()
}

/// Create `path` holding `pem` (which must be an `ENCRYPTED PRIVATE KEY` PEM), readable and
/// writable by the owner only (mode 0600).
///
/// The file appears complete or not at all: the PEM is written and synced to a temporary file
/// in the same directory, which is then hard-linked to `path` (an atomic create that fails if
/// `path` exists, unlike `rename`) and unlinked. An existing file is never overwritten.
pub fn write_encrypted_key_file(path: &Path, pem: &str) -> Result<(), KeyError> {
    write_key_file(path, pem, false)
}

/// Replace the key file at `path` with `pem` (an `ENCRYPTED PRIVATE KEY` PEM, mode 0600), for
/// a key renewal: written and synced to a temporary file in the same directory, then renamed
/// over `path`, so a reader sees the old key or the new one, never a part.
pub fn replace_encrypted_key_file(path: &Path, pem: &str) -> Result<(), KeyError> {
    write_key_file(path, pem, true)
}

fn write_key_file(path: &Path, pem: &str, replace: bool) -> Result<(), KeyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    // A guard against writing an unencrypted key (or anything else) by mistake.
    let label = pem_rfc7468_label(pem);
    if label != Some(ENCRYPTED_LABEL) {
        return Err(KeyError::Malformed("only an ENCRYPTED PRIVATE KEY PEM may be written as a key file".into()));
    }
    if !replace && path.symlink_metadata().is_ok() {
        return Err(KeyError::AlreadyExists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name =
        path.file_name().ok_or_else(|| KeyError::Malformed(format!("{} is not a file path", path.display())))?;
    let suffix = hex::encode(random_bytes::<8>()?);
    let temp = dir.join(format!(".{}.{suffix}.tmp", file_name.to_string_lossy()));

    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp).map_err(io(&temp))?;
        file.write_all(pem.as_bytes()).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        if replace {
            return fs::rename(&temp, path).map_err(io(path));
        }
        fs::hard_link(&temp, path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::AlreadyExists(path.to_path_buf())
            } else {
                KeyError::Io { path: path.to_path_buf(), source }
            }
        })
    })();
    // After a rename the temporary name is gone; after a hard link (or a failure) remove it.
    let removed = if replace && result.is_ok() { Ok(()) } else { fs::remove_file(&temp) };
    result?;
    removed.map_err(io(&temp))?;
    // Make the new directory entry durable too.
    if let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::test_support::{openssl, openssl_ok};
    use crate::software::KeyAlgorithm;
    use ca_core::signer::Signer;

    /// Cheap scrypt for tests that do not check the production cost.
    fn cheap() -> pkcs5::scrypt::Params {
        pkcs5::scrypt::Params::new(4, 8, 1, 32).unwrap()
    }

    #[test]
    fn round_trip_with_production_parameters() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let pem = key.to_encrypted_pem(b"correct horse").unwrap();
        assert!(pem.starts_with(concat!("-----BEGIN ENCRYPTED ", "PRIVATE KEY-----\n")));
        let loaded = SoftwareKey::from_encrypted_pem(&pem, b"correct horse").unwrap();
        assert_eq!(loaded.public_key(), key.public_key());

        let (_, doc) = der::Document::from_pem(&pem).unwrap();
        let info = EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).unwrap();
        let params = info.encryption_algorithm.pbes2().unwrap();
        let scrypt = params.kdf.scrypt().unwrap();
        assert_eq!(scrypt.cost_parameter, 1 << SCRYPT_LOG_N);
        assert_eq!(u32::from(scrypt.block_size), SCRYPT_R);
        assert_eq!(u32::from(scrypt.parallelization), SCRYPT_P);
        assert_eq!(scrypt.salt.len(), 16);
        assert_eq!(params.encryption.oid(), pbes2::AES_256_CBC_OID);
    }

    #[test]
    fn round_trip_rsa() {
        let key = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let pem = key.to_encrypted_pem_with(b"pw", cheap()).unwrap();
        let loaded = SoftwareKey::from_encrypted_pem(&pem, b"pw").unwrap();
        assert_eq!(loaded.key_algorithm(), KeyAlgorithm::Rsa2048);
        assert_eq!(loaded.public_key(), key.public_key());
    }

    #[test]
    fn wrong_passphrase_is_its_own_error() {
        let key = SoftwareKey::generate(KeyAlgorithm::P384).unwrap();
        let pem = key.to_encrypted_pem_with(b"right", cheap()).unwrap();
        // Many tries, so that wrong keys that happen to pass the padding check are covered.
        for i in 0..300u32 {
            let wrong = format!("wrong-{i}");
            let err = SoftwareKey::from_encrypted_pem(&pem, wrong.as_bytes()).unwrap_err();
            assert!(matches!(err, KeyError::WrongPassphrase), "{err}");
        }
        let message = KeyError::WrongPassphrase.to_string();
        assert_eq!(message, "wrong passphrase for the CA key (or the key file is corrupt)");
    }

    #[test]
    fn empty_passphrase_is_refused() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        assert!(matches!(key.to_encrypted_pem(b""), Err(KeyError::EmptyPassphrase)));
    }

    #[test]
    fn malformed_input_is_not_a_wrong_passphrase() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let pem = key.to_encrypted_pem_with(b"pw", cheap()).unwrap();
        for bad in [
            "",
            "not a pem",
            concat!("-----BEGIN ENCRYPTED ", "PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
            &pem[..pem.len() / 2],
        ] {
            let err = SoftwareKey::from_encrypted_pem(bad, b"pw").unwrap_err();
            assert!(matches!(err, KeyError::Malformed(_)), "{bad:?}: {err}");
        }
        let plain = der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &key.to_pkcs8_der().unwrap()).unwrap();
        assert!(matches!(SoftwareKey::from_encrypted_pem(&plain, b"pw"), Err(KeyError::Unsupported(_))));
    }

    #[test]
    fn openssl_reads_our_key_and_rejects_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let key = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let pem = key.to_encrypted_pem(b"s3cret pass").unwrap();
        let path = dir.path().join("ca.key");
        write_encrypted_key_file(&path, &pem).unwrap();
        let file = path.to_str().unwrap();

        openssl_ok(&["pkey", "-in", file, "-passin", "pass:s3cret pass", "-noout"]);
        let out = openssl_ok(&["pkey", "-in", file, "-passin", "pass:s3cret pass", "-pubout", "-outform", "DER"]);
        assert_eq!(out.stdout, der::Encode::to_der(key.public_key()).unwrap());
        let wrong = openssl(&["pkey", "-in", file, "-passin", "pass:wrong", "-noout"]);
        assert!(!wrong.status.success());
    }

    #[test]
    fn we_read_what_openssl_encrypts() {
        let dir = tempfile::tempdir().unwrap();
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let plain = crate::software::test_support::write_plain_key_pem(dir.path(), "k.pem", &key);
        for extra in [&["-v2", "aes-256-cbc"][..], &["-scrypt"][..]] {
            let out = dir.path().join("enc.pem");
            let _ = fs::remove_file(&out);
            let mut args = vec!["pkcs8", "-topk8", "-in", plain.to_str().unwrap()];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["-passout", "pass:pw", "-out", out.to_str().unwrap()]);
            openssl_ok(&args);
            let pem = fs::read_to_string(&out).unwrap();
            let loaded = SoftwareKey::from_encrypted_pem(&pem, b"pw").unwrap();
            assert_eq!(loaded.public_key(), key.public_key());
        }

        // Legacy PKCS#12 PBE (3DES) is refused as unsupported, not as garbage.
        let out = dir.path().join("legacy.pem");
        openssl_ok(&[
            "pkcs8",
            "-topk8",
            "-in",
            plain.to_str().unwrap(),
            "-v1",
            "PBE-SHA1-3DES",
            "-passout",
            "pass:pw",
            "-out",
            out.to_str().unwrap(),
        ]);
        let pem = fs::read_to_string(&out).unwrap();
        let err = SoftwareKey::from_encrypted_pem(&pem, b"pw").unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)), "{err}");
    }

    #[test]
    fn key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let first = key.to_encrypted_pem_with(b"pw", cheap()).unwrap();
        let second = key.to_encrypted_pem_with(b"pw2", cheap()).unwrap();
        let path = dir.path().join("ca.key.pem");
        let plain = der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &key.to_pkcs8_der().unwrap()).unwrap();
        assert!(matches!(write_encrypted_key_file(&path, &plain), Err(KeyError::Malformed(_))));
        assert!(!path.exists());
        write_encrypted_key_file(&path, &first).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = write_encrypted_key_file(&path, &second).unwrap_err();
        assert!(matches!(err, KeyError::AlreadyExists(_)));
        assert_eq!(fs::read_to_string(&path).unwrap(), first);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");

        // A renewal replaces it, keeping it private.
        replace_encrypted_key_file(&path, &second).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), second);
        assert!(matches!(replace_encrypted_key_file(&path, &plain), Err(KeyError::Malformed(_))));
        assert_eq!(fs::read_to_string(&path).unwrap(), second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary files left behind");
    }

    #[test]
    fn absurd_kdf_cost_is_refused() {
        let params =
            pbes2::Parameters::pbkdf2_sha256_aes256cbc(MAX_PBKDF2_ITERATIONS + 1, &[0u8; 16], &[0u8; 16]).unwrap();
        let err = decrypt_pbes2(&params, b"pw", &[0u8; 32]).unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)));
    }
}
