//! `POST /api/v1/cms/sign`: the service signs content with its own system certificate (a portal
//! signing its answers to counter workstations). The key is a [`Signer`]; callers prove they
//! are authorised with a bearer token whose SHA-256 is listed, unrevoked, in
//! `<ca dir>/system/api-tokens` (read again when it changes: a revocation counts from the next
//! request). No token: 401; a token not listed or revoked: 403; no system key configured: 503.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use ca_core::signer::Signer;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::verify::{base64_field, json_error};
use super::ApiError;
use crate::Services;

/// The service's signing identity.
pub struct SystemSigner {
    pub signer: Arc<dyn Signer>,
    pub certificate: Vec<u8>,
    /// Further certificates put into every SignedData (the issuing CA).
    pub chain: Vec<Vec<u8>>,
}

/// SHA-256 digests of the bearer tokens allowed to use the service's key.
#[derive(Default)]
pub struct ApiTokens(Vec<[u8; 32]>);

impl ApiTokens {
    pub fn new(digests: Vec<[u8; 32]>) -> Self {
        Self(digests)
    }

    /// The tokens of a token list ([`ca_core::api_tokens`]) that are not revoked.
    pub fn parse(text: &str) -> Result<Self, String> {
        let list = ca_core::api_tokens::parse(text).map_err(|e| e.to_string())?;
        Ok(Self(list.into_iter().filter(|t| t.is_active()).map(|t| t.digest).collect()))
    }

    /// Whether `token` is allowed. Every listed digest is compared, in constant time each.
    pub fn allows(&self, token: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(token).into();
        self.0.iter().fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&digest)).into()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignJson {
    /// The content, base64.
    data: String,
    #[serde(default)]
    detached: bool,
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| value[7..].trim_ascii()).filter(|t| !t.is_empty())
}

/// The system signer, for a caller whose bearer token is listed (`/api/v1/cms/sign` and
/// `/api/v1/xml/sign`).
pub(crate) fn authorised_signer(services: &Services, headers: &HeaderMap) -> Result<Arc<SystemSigner>, ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "a bearer token is required"));
    };
    if !services.current_api_tokens().allows(token) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this token may not sign"));
    }
    services.system_signer.get().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-configured", "no system signing key is configured")
    })
}

pub(crate) async fn sign(State(services): State<Arc<Services>>, headers: HeaderMap, body: Bytes) -> Response {
    let system = match authorised_signer(&services, &headers) {
        Ok(system) => system,
        Err(e) => return e.into_response(),
    };
    let req: SignJson = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return json_error(e, r#"{"data": base64, "detached"?: bool}"#).into_response(),
    };
    let data = match base64_field("data", &req.data) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let now = services.clock.now();
    let detached = req.detached;
    let result = tokio::task::spawn_blocking(move || {
        ca_core::cms::sign(&data, detached, system.signer.as_ref(), &system.certificate, &system.chain, now)
    })
    .await;
    match result {
        Ok(Ok(der)) => {
            tracing::info!(bytes = der.len(), detached, "signed with the system key");
            Json(serde_json::json!({ "cms": base64::engine::general_purpose::STANDARD.encode(der) })).into_response()
        }
        Ok(Err(e)) => ApiError::internal(format!("signing: {e}")).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_matched_by_digest() {
        let digest = hex::encode(Sha256::digest(b"secret-token"));
        let tokens = ApiTokens::parse(&format!("# portal\n\n{digest}\n")).unwrap();
        assert!(tokens.allows(b"secret-token"));
        assert!(!tokens.allows(b"secret-tokem"));
        assert!(!ApiTokens::default().allows(b""));
        assert!(ApiTokens::parse("abc").is_err());
        let created = time::OffsetDateTime::UNIX_EPOCH;
        let mut entry = ca_core::api_tokens::ApiToken::new(b"secret-token", "portal", created).unwrap();
        assert!(ApiTokens::parse(&entry.line()).unwrap().allows(b"secret-token"));
        entry.revoked = Some(created);
        assert!(!ApiTokens::parse(&entry.line()).unwrap().allows(b"secret-token"), "a revoked token is refused");
    }
}
