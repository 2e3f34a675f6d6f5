//! The install link of the issuance notice and the applicant's status token: a random token
//! (256 bits, URL-safe base64) handed to the applicant, of which the store keeps only the
//! SHA-256. The install token expires and is spent by the first successful download; the status
//! token lets the applicant read his application until it expires.

use base64::Engine as _;
use time::{Duration, OffsetDateTime};

use super::store::{NewToken, TokenPurpose};
use super::ApplicationNumber;

/// How long the status token given at registration is valid.
pub const STATUS_TOKEN_TTL: Duration = Duration::days(60);

/// A fresh token: what the applicant gets, and what the store keeps.
pub struct IssuedToken {
    /// URL-safe base64 of 32 random bytes.
    pub secret: String,
    pub stored: NewToken,
}

/// Draw a token from the operating system's CSPRNG.
pub fn new_token(purpose: TokenPurpose, now: OffsetDateTime, ttl: Duration) -> IssuedToken {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    IssuedToken { stored: NewToken { purpose, sha256: token_sha256(&secret), expires_at: now + ttl }, secret }
}

/// What the store compares a presented token by.
pub fn token_sha256(secret: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `{base}/install/{number}?t={token}`.
pub fn install_link(base: &str, number: &ApplicationNumber, secret: &str) -> String {
    format!("{}/install/{number}?t={secret}", base.trim_end_matches('/'))
}

/// `{base}/api/v1/applications/{number}?t={token}`; `{number}` stays a placeholder at
/// registration, where the store fills it in.
pub fn status_link(base: &str, number: &str, secret: &str) -> String {
    format!("{}/api/v1/applications/{number}?t={secret}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_kept_as_their_digest() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let a = new_token(TokenPurpose::Install, now, Duration::hours(72));
        let b = new_token(TokenPurpose::Install, now, Duration::hours(72));
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 43, "32 bytes, URL-safe base64 without padding");
        assert!(a.secret.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(a.stored.sha256, token_sha256(&a.secret));
        assert_ne!(a.stored.sha256.as_slice(), a.secret.as_bytes());
        assert_eq!(a.stored.expires_at, now + Duration::hours(72));
        let n: ApplicationNumber = "A-2026-000007".parse().unwrap();
        assert_eq!(install_link("https://ca.test/", &n, "tok"), "https://ca.test/install/A-2026-000007?t=tok");
    }
}
