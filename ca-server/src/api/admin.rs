//! Administration for the registration-authority flows. Every call is a request signed (CMS,
//! SIGN key) by a CA operator — a certificate of this CA carrying the CA-operator role OID —
//! valid and unrevoked now. No valid signature: 401; a valid signature without the operator role
//! or with an AUTH key: 403. Every call, accepted or refused, is written to the audit journal.
//!
//! - `POST /api/v1/admin/applications/{number}/confirm`: the body is the operator's CMS over the
//!   application's statement (`ca application statement --action operator-confirm`); the RA then
//!   confirms, refusing a signature over anything else.
//! - `POST /api/v1/admin/revocations`: the body is a CMS whose content is the JSON
//!   `{"action":"revoke","serial":"…","reason":"keyCompromise"}`, signed at most 10 minutes ago.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ca_core::cms::{self, CmsVerification, Reason, Requirements};
use ca_core::identity::KeyType;
use ca_core::profile::Role;
use ca_core::ra::cms_check::facts_from_verification;
use ca_core::ra::{
    Expectation, RaError, RegistrationAuthority, SignatureCheck, SignatureProblem, SignedPayload, SignerFacts,
    StoreRegistry,
};
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::serial::SerialNumber;
use ca_core::store::{AuditEvent, RevokeOutcome, Store};
use time::Duration;

use super::ApiError;
use crate::Services;

/// How old a signed administration request may be.
const MAX_REQUEST_AGE: Duration = Duration::minutes(10);

/// The operator behind a verified request.
struct Operator {
    serial: String,
    name: String,
}

impl Operator {
    fn actor(&self) -> String {
        format!("operator {} ({})", self.name, self.serial)
    }
}

fn audit_refusal(services: &Services, endpoint: &str, status: StatusCode, why: &str) {
    if let Some(store) = &services.store {
        let event = AuditEvent::new("api", "admin.refused")
            .target(endpoint)
            .details(serde_json::json!({ "status": status.as_u16(), "reason": why }));
        let _ = store.append_audit(&event);
    }
}

/// Authenticate and authorise: a valid CMS by a CA operator's SIGN key, checked now.
fn authenticate(services: &Services, body: &[u8], endpoint: &str) -> Result<(CmsVerification, Operator), ApiError> {
    let refuse = |status: StatusCode, kind: &'static str, message: String| {
        audit_refusal(services, endpoint, status, &message);
        ApiError::new(status, kind, message)
    };
    let Some(verifier) = &services.verifier else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no trust store configured"));
    };
    if body.is_empty() {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "an operator-signed CMS request is required".into(),
        ));
    }
    let now = services.clock.now();
    let requirements =
        Requirements { key_type: Some(KeyType::Sign), roles: vec![Role::CaOperator], ..Default::default() };
    let v = verifier
        .with_context(services.store.as_deref(), now, Some(now), requirements, |ctx| cms::verify(body, None, ctx))
        .map_err(|e| refuse(StatusCode::UNAUTHORIZED, "unauthenticated", format!("not a CMS signature: {e}")))?;
    let [signer] = v.signers.as_slice() else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "unauthenticated", "exactly one signer is required".into()));
    };
    let certificate = signer.certificate.clone();
    if !v.valid {
        let reasons: Vec<Reason> =
            signer.findings.iter().chain(v.findings.iter()).filter(|f| f.fatal).map(|f| f.reason).collect();
        let only_authorisation =
            !reasons.is_empty() && reasons.iter().all(|r| matches!(r, Reason::MissingRole | Reason::WrongKeyType));
        let message = format!("{reasons:?}");
        return Err(if only_authorisation {
            refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("the signer is not a CA operator with a SIGN key: {message}"),
            )
        } else {
            refuse(StatusCode::UNAUTHORIZED, "unauthenticated", format!("the signature is not valid: {message}"))
        });
    }
    let signed_at = signer.signing_time.unwrap_or(now);
    if now - signed_at > MAX_REQUEST_AGE {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the request was signed more than 10 minutes ago".into(),
        ));
    }
    let certificate = certificate.ok_or_else(|| ApiError::internal("a valid signer without a certificate"))?;
    let name = certificate.identity.common_name.clone().unwrap_or_default();
    Ok((v, Operator { serial: certificate.serial, name }))
}

/// The RA's signature check, over the verification already made for authentication.
struct AlreadyVerified<'a>(&'a CmsVerification);

impl SignatureCheck for AlreadyVerified<'_> {
    fn check(&self, signed: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        facts_from_verification(self.0, &signed.content)
    }
}

fn ra_error(e: RaError) -> ApiError {
    let status = match &e {
        RaError::NotFound(_) => StatusCode::NOT_FOUND,
        RaError::Refused(_) => StatusCode::FORBIDDEN,
        RaError::WrongState { .. } | RaError::AlreadyDone(_) | RaError::InProgress(_) => StatusCode::CONFLICT,
        RaError::Invalid(_) | RaError::NotSupported(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, "refused", e.to_string())
}

pub(crate) async fn confirm(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    body: Bytes,
) -> Response {
    let svc = services.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, ApiError> {
        let endpoint = format!("/api/v1/admin/applications/{number}/confirm");
        let (verification, operator) = authenticate(&svc, &body, &endpoint)?;
        let sqlite = svc.sqlite.as_ref().ok_or_else(|| ApiError::internal("no registration authority store"))?;
        let number = number.parse().map_err(|e: ca_core::ra::application::BadNumber| {
            ApiError::bad_request("malformed-request", e.to_string())
        })?;
        let registry = StoreRegistry(sqlite.as_ref());
        let check = AlreadyVerified(&verification);
        let ra = RegistrationAuthority {
            store: sqlite.as_ref(),
            certificates: sqlite.as_ref(),
            registry: &registry,
            signatures: &check,
            clock: svc.clock.as_ref(),
            install_url: "",
        };
        let confirmed = ra.confirm(&number, &operator.actor(), &body).map_err(ra_error)?;
        Ok(serde_json::to_value(confirmed.application()).unwrap_or_default())
    })
    .await;
    match result {
        Ok(Ok(application)) => Json(serde_json::json!({ "application": application })).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    action: String,
    serial: String,
    reason: String,
}

pub(crate) async fn revoke_certificate(State(services): State<Arc<Services>>, body: Bytes) -> Response {
    let svc = services.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, ApiError> {
        let endpoint = "/api/v1/admin/revocations";
        let (verification, operator) = authenticate(&svc, &body, endpoint)?;
        let content = verification.content.clone().unwrap_or_default();
        let request: RevokeRequest = serde_json::from_slice(&content).map_err(|e| {
            ApiError::bad_request(
                "malformed-request",
                format!(r#"signed content must be {{"action":"revoke","serial":…,"reason":…}}: {e}"#),
            )
        })?;
        if request.action != "revoke" {
            return Err(ApiError::bad_request("malformed-request", "action must be \"revoke\""));
        }
        let serial: SerialNumber = request
            .serial
            .parse()
            .map_err(|e: ca_core::serial::SerialError| ApiError::bad_request("malformed-request", e.to_string()))?;
        let reason: RevocationReason = request.reason.parse().map_err(|e: ca_core::revocation::UnknownReason| {
            ApiError::bad_request("malformed-request", e.to_string())
        })?;
        let store: &dyn Store = svc.store.as_deref().ok_or_else(|| ApiError::internal("no store"))?;
        let outcome = revoke(store, svc.clock.as_ref(), &serial, reason, None, &operator.actor()).map_err(|e| {
            let status =
                if e.to_string().contains("no certificate") { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            ApiError::new(status, "refused", e.to_string())
        })?;
        let (already, record) = match outcome {
            RevokeOutcome::Revoked(r) => (false, r),
            RevokeOutcome::AlreadyRevoked(r) => (true, r),
        };
        Ok(serde_json::json!({ "revoked": true, "already": already, "certificate": record }))
    })
    .await;
    match result {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
