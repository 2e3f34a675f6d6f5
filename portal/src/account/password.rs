//! Passwords: Argon2id hashes (parameters never below OWASP's minimum), the rules a new
//! password must meet, and generated passwords. A password is never logged or returned.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use zeroize::Zeroizing;

/// OWASP's minimum for Argon2id (Password Storage Cheat Sheet): m = 19 MiB, t = 2, p = 1.
pub const OWASP_MIN_MEMORY_KIB: u32 = 19 * 1024;
pub const OWASP_MIN_ITERATIONS: u32 = 2;
pub const OWASP_MIN_PARALLELISM: u32 = 1;

/// Shortest and longest password accepted.
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

const COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

/// Argon2id parameters, as configured (`[argon2]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Config {
    #[serde(default = "default_memory")]
    pub memory_kib: u32,
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
}

fn default_memory() -> u32 {
    OWASP_MIN_MEMORY_KIB
}
fn default_iterations() -> u32 {
    OWASP_MIN_ITERATIONS
}
fn default_parallelism() -> u32 {
    OWASP_MIN_PARALLELISM
}

impl Default for Argon2Config {
    fn default() -> Self {
        Self { memory_kib: OWASP_MIN_MEMORY_KIB, iterations: OWASP_MIN_ITERATIONS, parallelism: OWASP_MIN_PARALLELISM }
    }
}

/// A password could not be hashed or the parameters are too weak.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("Argon2id parameters below OWASP's minimum (m ≥ {OWASP_MIN_MEMORY_KIB} KiB, t ≥ {OWASP_MIN_ITERATIONS}, p ≥ 1): m = {0} KiB, t = {1}, p = {2}")]
    TooWeak(u32, u32, u32),
    #[error("Argon2id: {0}")]
    Argon2(String),
    #[error("random: {0}")]
    Random(String),
}

/// Hashes and verifies passwords with one set of parameters.
#[derive(Clone)]
pub struct PasswordHasherConfig {
    argon2: Argon2<'static>,
    /// A hash of a random password, verified against when the account does not exist, so an
    /// unknown login costs what a wrong password costs.
    dummy_hash: String,
}

impl PasswordHasherConfig {
    pub fn new(config: Argon2Config) -> Result<Self, PasswordError> {
        let Argon2Config { memory_kib: m, iterations: t, parallelism: p } = config;
        if m < OWASP_MIN_MEMORY_KIB || t < OWASP_MIN_ITERATIONS || p < OWASP_MIN_PARALLELISM {
            return Err(PasswordError::TooWeak(m, t, p));
        }
        let params = Params::new(m, t, p, None).map_err(|e| PasswordError::Argon2(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon2, dummy_hash: String::new() };
        hasher.dummy_hash = hasher.hash(&generate()?)?;
        Ok(hasher)
    }

    /// The PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `password`, fresh salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Argon2(e.to_string()))
    }

    /// Whether `password` matches `hash` (with the parameters written in the hash). A hash
    /// that cannot be read matches nothing.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        PasswordHash::new(hash).is_ok_and(|h| self.argon2.verify_password(password.as_bytes(), &h).is_ok())
    }

    /// Spend the time of one verification and match nothing (an unknown login).
    pub fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy_hash);
    }
}

/// Why a new password is refused (the message is shown to the user).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    #[error("Пароли не совпадают")]
    Mismatch,
    #[error("Пароль должен содержать не менее {MIN_LENGTH} символов")]
    TooShort,
    #[error("Пароль должен содержать не более {MAX_LENGTH} символов")]
    TooLong,
    #[error("Пароль должен содержать буквы и цифры")]
    NeedsLettersAndDigits,
    #[error("Пароль не должен содержать ИИН/БИН")]
    ContainsLogin,
    #[error("Пароль слишком распространен: выберите другой")]
    Common,
}

impl PasswordRule {
    /// The machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mismatch => "password-mismatch",
            Self::TooShort => "password-too-short",
            Self::TooLong => "password-too-long",
            Self::NeedsLettersAndDigits => "password-too-simple",
            Self::ContainsLogin => "password-contains-login",
            Self::Common => "password-common",
        }
    }
}

/// Check a new password (typed twice) for the account of `login` (IIN/BIN).
pub fn check_new_password(password: &str, repeat: &str, login: &str) -> Result<(), PasswordRule> {
    if password != repeat {
        return Err(PasswordRule::Mismatch);
    }
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordRule::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PasswordRule::TooLong);
    }
    if !password.chars().any(char::is_alphabetic) || !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(PasswordRule::NeedsLettersAndDigits);
    }
    if !login.is_empty() && password.contains(login) {
        return Err(PasswordRule::ContainsLogin);
    }
    if is_common(password) {
        return Err(PasswordRule::Common);
    }
    Ok(())
}

/// Whether the password is on the list of common passwords (case-insensitive).
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| l.to_lowercase() == lower)
}

/// A generated password: 12 characters from a CSPRNG over letters and digits without the
/// look-alikes (0/O, 1/l/I), always with a lower-case letter, an upper-case letter and a digit.
pub fn generate() -> Result<String, PasswordError> {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    loop {
        let mut bytes = Zeroizing::new([0u8; 12]);
        OsRng.try_fill_bytes(bytes.as_mut()).map_err(|e| PasswordError::Random(e.to_string()))?;
        let all: Vec<u8> = [LOWER, UPPER, DIGITS].concat();
        // 256 % 57 ≠ 0: reject the top values so every character is equally likely.
        let limit = 256 - 256 % all.len();
        if bytes.iter().any(|&b| usize::from(b) >= limit) {
            continue;
        }
        let password: String = bytes.iter().map(|&b| char::from(all[usize::from(b) % all.len()])).collect();
        let has = |set: &[u8]| password.bytes().any(|c| set.contains(&c));
        if has(LOWER) && has(UPPER) && has(DIGITS) {
            return Ok(password);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let login = "900101300017";
        assert_eq!(check_new_password("Abcdefg1", "Abcdefg2", login), Err(PasswordRule::Mismatch));
        assert_eq!(check_new_password("Abc1", "Abc1", login), Err(PasswordRule::TooShort));
        assert_eq!(check_new_password("abcdefgh", "abcdefgh", login), Err(PasswordRule::NeedsLettersAndDigits));
        assert_eq!(check_new_password("12345678", "12345678", login), Err(PasswordRule::NeedsLettersAndDigits));
        let with_login = format!("x{login}");
        assert_eq!(check_new_password(&with_login, &with_login, login), Err(PasswordRule::ContainsLogin));
        assert_eq!(check_new_password("PASSWORD123", "PASSWORD123", login), Err(PasswordRule::Common));
        assert_eq!(check_new_password("Qwerty123", "Qwerty123", login), Err(PasswordRule::Common));
        let long = "a1".repeat(65);
        assert_eq!(check_new_password(&long, &long, login), Err(PasswordRule::TooLong));
        assert_eq!(check_new_password("Кенгуру7Степь", "Кенгуру7Степь", login), Ok(()));
    }

    #[test]
    fn generated_passwords_pass_the_rules_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        check_new_password(&a, &a, "900101300017").unwrap();
        assert_eq!(a.len(), 12);
    }

    #[test]
    fn owasp_floor_and_round_trip() {
        let weak = Argon2Config { memory_kib: 8 * 1024, ..Argon2Config::default() };
        assert!(matches!(PasswordHasherConfig::new(weak), Err(PasswordError::TooWeak(..))));
        let one_pass = Argon2Config { iterations: 1, ..Argon2Config::default() };
        assert!(PasswordHasherConfig::new(one_pass).is_err());
        let hasher = PasswordHasherConfig::new(Argon2Config::default()).unwrap();
        let hash = hasher.hash("Кенгуру7Степь").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("Кенгуру7Степь", &hash));
        assert!(!hasher.verify("Кенгуру7степь", &hash));
        assert!(!hasher.verify("Кенгуру7Степь", "not a hash"));
    }
}
