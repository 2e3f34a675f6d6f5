//! Login by signature. `POST /api/v1/auth/challenge` issues a random 32-byte nonce that
//! expires after [`Services::nonce_ttl`]; the client signs it (CMS, attached or detached, with
//! its AUTH key: the signing client's `createCAdESFromBase64` signs the decoded bytes) and
//! `POST /api/v1/auth/login` verifies signature, chain and revocation *now* (the client's
//! signingTime is not trusted), requires an AUTH key, consumes the nonce and answers who logged
//! in. Nonces live in the store, so a restart neither forgets them nor allows a replay.
//! Instead of a CMS, the client may send an XML document signed as a whole with its AUTH key
//! (`signXml`), whose document element has a `<nonce>` child holding the challenge.

use std::sync::Arc;

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use ca_core::cms::{self, Requirements};
use ca_core::identity::KeyType;
use ca_core::store::NonceOutcome;
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::verify::{base64_field, cms_first_fatal, json_error};
use super::ApiError;
use crate::Services;

/// Nonce length in bytes.
pub const NONCE_LEN: usize = 32;
/// Consumed and expired nonces are kept this long after expiry (to tell a replay from an
/// unknown nonce), then purged.
const KEEP_AFTER_EXPIRY: time::Duration = time::Duration::hours(1);

fn unauthorized(kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, kind, message)
}

fn not_configured() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-configured", "login by signature needs the store and trust")
}

pub(crate) async fn challenge(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let Some(nonces) = services.nonces.clone() else {
        return not_configured().into_response();
    };
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let client = services.challenge_limiter.client(peer, &headers);
    if let Err(wait) = services.challenge_limiter.check(client, std::time::Instant::now()) {
        let seconds = wait.as_secs_f64().ceil().clamp(1.0, 3600.0) as u64;
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("too many login challenges from this client; retry in {seconds} s"),
        )
        .into_response();
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        return response;
    }
    let mut nonce = [0u8; NONCE_LEN];
    if let Err(e) = OsRng.try_fill_bytes(&mut nonce) {
        return ApiError::internal(format!("random: {e}")).into_response();
    }
    let now = services.clock.now();
    let expires_at = now + services.nonce_ttl;
    let purge_before = now - KEEP_AFTER_EXPIRY;
    match tokio::task::spawn_blocking(move || nonces.issue_nonce(&nonce, now, expires_at, purge_before)).await {
        Ok(Ok(())) => Json(serde_json::json!({
            "nonce": base64::engine::general_purpose::STANDARD.encode(nonce),
            "expires_at": expires_at.format(&Rfc3339).unwrap_or_default(),
        }))
        .into_response(),
        Ok(Err(e)) => ApiError::internal(format!("store: {e}")).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginJson {
    /// A CMS over the nonce.
    #[serde(default)]
    cms: Option<String>,
    /// The nonce (base64) for a detached signature.
    #[serde(default)]
    data: Option<String>,
    /// Or an XML document signed as a whole (enveloped, `URI=""`) whose document element has
    /// a `nonce` child holding the challenge (base64): the signing client's `signXml`.
    #[serde(default)]
    xml: Option<String>,
}

const LOGIN_JSON: &str = r#"{"cms": …, "data"?: base64} or {"xml": signed XML with <nonce>…</nonce>}"#;

/// What a login signature proved, CMS or XML alike.
struct Proof {
    valid: bool,
    reasons: Vec<cms::Reason>,
    fatal_messages: Vec<String>,
    first_fatal: Option<cms::Reason>,
    signers: Vec<cms::SignerReport>,
    /// The nonce the signed content carries, if it carries one.
    nonce: Option<Vec<u8>>,
}

impl Proof {
    fn of_cms(v: cms::CmsVerification) -> Self {
        let fatal_messages = v
            .findings
            .iter()
            .chain(v.signers.iter().flat_map(|s| &s.findings))
            .filter(|f| f.fatal)
            .map(|f| f.message.clone())
            .collect();
        Self {
            valid: v.valid,
            reasons: v.reasons(),
            fatal_messages,
            first_fatal: cms_first_fatal(&v),
            nonce: v.content.as_deref().and_then(nonce_of),
            signers: v.signers,
        }
    }

    fn of_xml(v: ca_core::xml::XmlVerification, document: &[u8]) -> Self {
        let fatal_messages = v
            .findings
            .iter()
            .chain(v.signatures.iter().flat_map(|s| &s.signer.findings))
            .filter(|f| f.fatal)
            .map(|f| f.message.clone())
            .collect();
        // Read only from a document whose signatures all cover the document element (the
        // verification required it), so the nonce is signed content.
        let nonce = match v.valid {
            true => {
                ca_core::xml::document_child_text(document, "nonce").ok().flatten().and_then(|t| nonce_of(t.as_bytes()))
            }
            false => None,
        };
        Self {
            valid: v.valid,
            reasons: v.reasons(),
            fatal_messages,
            first_fatal: v.first_fatal().map(|f| f.reason),
            nonce,
            signers: v.signatures.into_iter().map(|s| s.signer).collect(),
        }
    }
}

/// The nonce a signed content stands for: the raw 32 bytes, or their base64 text (clients
/// that sign the challenge string as it was handed to them).
fn nonce_of(content: &[u8]) -> Option<Vec<u8>> {
    if content.len() == NONCE_LEN {
        return Some(content.to_vec());
    }
    let text = std::str::from_utf8(content).ok()?.trim();
    base64::engine::general_purpose::STANDARD.decode(text).ok().filter(|n| n.len() == NONCE_LEN)
}

/// The signed login as sent.
pub(crate) enum Signed {
    Cms(Vec<u8>, Option<Vec<u8>>),
    Xml(Vec<u8>),
}

pub(crate) async fn login(State(services): State<Arc<Services>>, _headers: HeaderMap, body: Bytes) -> Response {
    match login_inner(services, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn login_inner(services: Arc<Services>, body: &[u8]) -> Result<Response, ApiError> {
    let req: LoginJson = serde_json::from_slice(body).map_err(|e| json_error(e, LOGIN_JSON))?;
    let data = req.data.map(|d| base64_field("data", &d)).transpose()?;
    let signed = match (req.cms, req.xml) {
        (Some(cms), None) => Signed::Cms(cms.into_bytes(), data),
        (None, Some(xml)) if data.is_none() => Signed::Xml(xml.into_bytes()),
        _ => return Err(ApiError::bad_request("malformed-request", format!("expected {LOGIN_JSON}"))),
    };
    let signer = signed_login(services, signed).await?;
    let Some(cert) = &signer.certificate else {
        return Err(ApiError::internal("a valid signer without certificate"));
    };
    let id = &cert.identity;
    tracing::info!(serial = %cert.serial, iin = ?id.iin.map(|i| i.to_string()), "login by signature");
    Ok(Json(serde_json::json!({
        "iin": id.iin,
        "bin": id.bin,
        "common_name": id.common_name,
        "surname": id.surname,
        "first_name": id.first_name,
        "patronymic": id.patronymic,
        "organisation": id.organisation,
        "email": id.email,
        "roles": id.roles,
        "key_usage": id.key_type,
        "certificate": {
            "serial": cert.serial,
            "subject": cert.subject,
            "issuer": cert.issuer,
            "not_after": cert.not_after.format(&Rfc3339).unwrap_or_default(),
        },
    }))
    .into_response())
}

/// Verify a login signature over a challenge of ours (signature, AUTH key, chain and
/// revocation now) and consume the challenge: the one signer, with his certificate. The JSON
/// login and the operator console's login both come through here.
pub(crate) async fn signed_login(services: Arc<Services>, signed: Signed) -> Result<cms::SignerReport, ApiError> {
    let (Some(verifier), Some(nonces)) = (services.verifier.clone(), services.nonces.clone()) else {
        return Err(not_configured());
    };
    let svc = services.clone();
    let proof =
        tokio::task::spawn_blocking(move || {
            let now = svc.clock.now();
            let requirements = Requirements { key_type: Some(KeyType::Auth), ..Requirements::default() };
            // Revocation required (the default) for every certificate of the signer's path.
            verifier.with_context(svc.store.as_deref(), now, Some(now), requirements, Default::default(), |ctx| {
                match signed {
                    Signed::Cms(input, data) => cms::verify(&input, data.as_deref(), ctx)
                        .map(Proof::of_cms)
                        .map_err(|e| ApiError::bad_request("malformed-cms", e.to_string())),
                    Signed::Xml(document) => {
                        ca_core::xml::verify(&document, &ca_core::xml::ReliedElement::Document, ctx)
                            .map(|v| Proof::of_xml(v, &document))
                            .map_err(|e| ApiError::bad_request("malformed-xml", e.to_string()))
                    }
                }
            })
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    services.metrics.count_verdict("login", proof.valid, proof.first_fatal);
    if !proof.valid {
        let reasons = serde_json::to_value(&proof.reasons).unwrap_or_default();
        return Err(unauthorized("signature-invalid", proof.fatal_messages.join("; "))
            .with_details(serde_json::json!({ "reasons": reasons })));
    }
    let Ok::<[cms::SignerReport; 1], _>([signer]) = proof.signers.try_into() else {
        return Err(unauthorized("signature-invalid", "a login signature has exactly one signer"));
    };
    let nonce =
        proof.nonce.ok_or_else(|| unauthorized("nonce-unknown", "the signed content is not a challenge nonce"))?;
    let now = services.clock.now();
    let outcome = tokio::task::spawn_blocking(move || nonces.consume_nonce(&nonce, now))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("store: {e}")))?;
    match outcome {
        NonceOutcome::Consumed => {}
        NonceOutcome::AlreadyUsed => return Err(unauthorized("nonce-replayed", "this challenge was already used")),
        NonceOutcome::Expired => return Err(unauthorized("nonce-expired", "this challenge has expired")),
        NonceOutcome::Unknown => return Err(unauthorized("nonce-unknown", "this server did not issue this challenge")),
    }
    if signer.certificate.is_none() {
        return Err(ApiError::internal("a valid signer without certificate"));
    }
    Ok(signer)
}
