//! Administration for the registration-authority flows. Every call is a request signed (CMS,
//! SIGN key) by a CA operator — a certificate of this CA carrying the CA-operator role OID —
//! valid and unrevoked now. No valid signature: 401; a valid signature without the operator role
//! or with an AUTH key: 403.
//!
//! A request must carry signed attributes (contentType, messageDigest, signingTime), be signed at
//! most 10 minutes ago, and is single use: the SHA-256 of its signed attributes (which cover the
//! content's digest and the signingTime) is remembered in the store until the request would be
//! too old anyway, and the same signature sent again is refused as `replayed`.
//!
//! Refusals of requests signed by a certificate of this CA (wrong role, too old, replayed, a
//! malformed body, an RA refusal) are journaled one by one with the signer as actor. Refusals of
//! anonymous junk are counted (`ca_admin_refusals_total`) and summed into one journal entry per
//! minute ([`crate::refusals`]); a client with too many of them is answered 429 before its CMS
//! is verified.
//!
//! - `POST /api/v1/admin/applications/{number}/confirm`: the body is the operator's CMS over the
//!   application's statement (`ca application statement --action operator-confirm`); the RA then
//!   confirms, refusing a signature over anything else.
//! - `POST /api/v1/admin/revocations`: the body is a CMS whose content is the JSON
//!   `{"action":"revoke","serial":"…","reason":"keyCompromise"}`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ca_core::cms::{self, CmsVerification, Reason, Requirements};
use ca_core::identity::KeyType;
use ca_core::profile::Role;
use ca_core::ra::cms_check::{facts_from_verification, require_signed_attributes};
use ca_core::ra::{
    Expectation, RaError, Refusal, RegistrationAuthority, SignatureCheck, SignatureProblem, SignedPayload, SignerFacts,
    StoreRegistry,
};
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::serial::SerialNumber;
use ca_core::store::{AuditEvent, RevokeOutcome, Store};
use time::Duration;

use super::ApiError;
use crate::refusals::AnonymousReason;
use crate::Services;

/// How old a signed administration request may be.
const MAX_REQUEST_AGE: Duration = Duration::minutes(10);

/// How an operator's signature is checked: by the same path engine as any relying party's,
/// with revocation required for every certificate of the path (the operators are this CA's,
/// so the store has their status; a store that cannot answer refuses the request).
fn operator_options() -> ca_core::cms::PathOptions {
    ca_core::cms::PathOptions { revocation: ca_core::pkix::RevocationPolicy::Require, ..Default::default() }
}

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

/// One administration request on its way through: where it came from and where it went, so
/// that every refusal is accounted for the right way.
struct AdminCall<'a> {
    services: &'a Services,
    endpoint: String,
    client: IpAddr,
}

impl AdminCall<'_> {
    /// A refusal of a request no signature of ours stands behind: counted, charged to the
    /// client's limit, summed into the journal once per interval.
    fn anonymous(&self, reason: AnonymousReason, status: StatusCode, message: String) -> ApiError {
        let services = self.services;
        services.metrics.count_admin_refusal("anonymous", reason.as_str());
        if reason != AnonymousReason::RateLimited {
            let _ = services.admin_refusal_limiter.check(self.client, std::time::Instant::now());
        }
        let summed = services.anonymous_refusals.record(reason, self.client, services.clock.now());
        if let (Some(event), Some(store)) = (summed, &services.store) {
            if let Err(e) = store.append_audit(&event) {
                tracing::error!(error = %e, "cannot journal the anonymous admin refusals");
            }
        }
        ApiError::new(status, if status == StatusCode::FORBIDDEN { "forbidden" } else { "unauthenticated" }, message)
    }

    /// A refusal of a request signed by a certificate of this CA: journaled on its own, with
    /// the signer as actor.
    fn signed(&self, actor: &str, reason: &'static str, error: ApiError) -> ApiError {
        self.services.metrics.count_admin_refusal("known", reason);
        if let Some(store) = &self.services.store {
            let event = AuditEvent::new(actor, "admin.refused").target(self.endpoint.clone()).details(
                serde_json::json!({ "status": error.status.as_u16(), "reason": reason, "message": error.message }),
            );
            if let Err(e) = store.append_audit(&event) {
                tracing::error!(error = %e, "cannot journal an admin refusal");
            }
        }
        error
    }

    /// Authenticate and authorise: a valid CMS by the SIGN key of an operator with `role` (a
    /// CA operator; a State Corporation operator for the confirmation of its applications),
    /// checked now, with signed attributes, recent, and not seen before.
    fn authenticate(&self, body: &[u8], role: Role) -> Result<(CmsVerification, Operator), ApiError> {
        let services = self.services;
        let Some(verifier) = &services.verifier else {
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no trust store configured"));
        };
        let wait = services.admin_refusal_limiter.wait(self.client, std::time::Instant::now());
        if !wait.is_zero() {
            let seconds = wait.as_secs_f64().ceil().clamp(1.0, 3600.0) as u64;
            let mut e = self.anonymous(
                AnonymousReason::RateLimited,
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many refused requests from this client; retry in {seconds} s"),
            );
            e.kind = "rate-limited";
            return Err(e);
        }
        if body.is_empty() {
            return Err(self.anonymous(
                AnonymousReason::Empty,
                StatusCode::UNAUTHORIZED,
                "an operator-signed CMS request is required".into(),
            ));
        }
        let now = services.clock.now();
        let requirements = Requirements { key_type: Some(KeyType::Sign), roles: vec![role], ..Default::default() };
        let v = verifier
            .with_context(services.store.as_deref(), now, Some(now), requirements, operator_options(), |ctx| {
                cms::verify(body, None, ctx)
            })
            .map_err(|e| {
                self.anonymous(AnonymousReason::NotCms, StatusCode::UNAUTHORIZED, format!("not a CMS signature: {e}"))
            })?;
        let [signer] = v.signers.as_slice() else {
            return Err(self.anonymous(
                AnonymousReason::NotSigned,
                StatusCode::UNAUTHORIZED,
                "exactly one signer is required".into(),
            ));
        };
        let fatal: Vec<Reason> =
            signer.findings.iter().chain(v.findings.iter()).filter(|f| f.fatal).map(|f| f.reason).collect();
        // Anyone can sign with a certificate of his own making: only a signature that verifies
        // with a certificate chaining to this CA names someone.
        let Some(certificate) = signer.certificate.as_ref().filter(|_| signer.signature_valid && signer.chain_trusted)
        else {
            return Err(self.anonymous(
                AnonymousReason::NotSigned,
                StatusCode::UNAUTHORIZED,
                format!("the signature is not valid: {fatal:?}"),
            ));
        };
        let operator = Operator {
            serial: certificate.serial.clone(),
            name: certificate.identity.common_name.clone().unwrap_or_default(),
        };
        let actor = operator.actor();
        if !v.valid {
            let only_authorisation =
                !fatal.is_empty() && fatal.iter().all(|r| matches!(r, Reason::MissingRole | Reason::WrongKeyType));
            return Err(if only_authorisation {
                let message = format!("the signer is not a {role} with a SIGN key: {fatal:?}");
                self.signed(&actor, "not-an-operator", ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))
            } else {
                let message = format!("the signature is not valid: {fatal:?}");
                self.signed(&actor, "invalid", ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message))
            });
        }
        let unauthenticated = |message: String| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message);
        let signed_at = require_signed_attributes(signer)
            .map_err(|message| self.signed(&actor, "no-signed-attributes", unauthenticated(message)))?;
        if now - signed_at > MAX_REQUEST_AGE {
            let message = "the request was signed more than 10 minutes ago".to_string();
            return Err(self.signed(&actor, "too-old", unauthenticated(message)));
        }
        let attributes =
            signer.signed_attributes_digest.ok_or_else(|| ApiError::internal("signed attributes without a digest"))?;
        // Two operators signing the same request in the same second make two requests.
        let id = ca_core::ra::cms_check::request_id(b"admin-request", &attributes, operator.serial.as_bytes());
        let nonces = services.nonces.as_ref().ok_or_else(|| ApiError::internal("no store for request ids"))?;
        // Kept until the request would be refused as too old anyway (a second's margin for the
        // store's millisecond times).
        let keep_until = signed_at + MAX_REQUEST_AGE + Duration::seconds(1);
        let first_use =
            nonces.use_request_id(&id, now, keep_until).map_err(|e| ApiError::internal(format!("store: {e}")))?;
        if !first_use {
            let message = "this signed request was already used; sign a new one".to_string();
            let error = ApiError::new(StatusCode::UNAUTHORIZED, "replayed", message);
            return Err(self.signed(&actor, "replayed", error));
        }
        Ok((v, operator))
    }
}

/// The client of a request (behind trusted proxies, what they say).
fn client_of(services: &Services, headers: &HeaderMap, extensions: &axum::http::Extensions) -> IpAddr {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    services.admin_refusal_limiter.client(peer, headers)
}

/// The RA's signature check, over the verification already made for authentication.
struct AlreadyVerified<'a>(&'a CmsVerification);

impl SignatureCheck for AlreadyVerified<'_> {
    fn check(&self, signed: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        facts_from_verification(self.0, &signed.content)
    }
}

/// Why an authenticated request was refused after authentication.
enum Refused {
    /// To be journaled, with a short reason.
    Journal(&'static str, ApiError),
    /// The RA journaled it already (a signature refusal).
    Journaled(ApiError),
}

fn ra_error(e: RaError) -> Refused {
    let status = match &e {
        RaError::NotFound(_) => StatusCode::NOT_FOUND,
        RaError::Refused(_) => StatusCode::FORBIDDEN,
        RaError::WrongState { .. } | RaError::AlreadyDone(_) | RaError::InProgress(_) => StatusCode::CONFLICT,
        RaError::Invalid(_) | RaError::NotSupported(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let journaled = matches!(e, RaError::Refused(Refusal::Signature(_)));
    let error = ApiError::new(status, "refused", e.to_string());
    if journaled {
        Refused::Journaled(error)
    } else {
        Refused::Journal("ra-refused", error)
    }
}

fn malformed(message: impl Into<String>) -> Refused {
    Refused::Journal("malformed-request", ApiError::bad_request("malformed-request", message))
}

/// Authenticate the request by a CA operator, then carry it out with `act`; every refusal is
/// accounted for.
async fn admin_call(
    services: Arc<Services>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    endpoint: String,
    body: Bytes,
    act: impl FnOnce(&Services, &CmsVerification, &Operator) -> Result<serde_json::Value, Refused> + Send + 'static,
) -> Response {
    admin_call_as(services, headers, extensions, endpoint, body, |_| Role::CaOperator, act).await
}

/// [`admin_call`] by an operator with the role `role` picks.
async fn admin_call_as(
    services: Arc<Services>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    endpoint: String,
    body: Bytes,
    role: impl FnOnce(&Services) -> Role + Send + 'static,
    act: impl FnOnce(&Services, &CmsVerification, &Operator) -> Result<serde_json::Value, Refused> + Send + 'static,
) -> Response {
    let client = client_of(&services, &headers, &extensions);
    let result = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, ApiError> {
        let call = AdminCall { services: &services, endpoint, client };
        let (verification, operator) = call.authenticate(&body, role(&services))?;
        act(&services, &verification, &operator).map_err(|refused| match refused {
            Refused::Journal(reason, error) => call.signed(&operator.actor(), reason, error),
            Refused::Journaled(error) => {
                services.metrics.count_admin_refusal("known", "signature-refused");
                error
            }
        })
    })
    .await;
    match result {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

pub(crate) async fn confirm(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let endpoint = format!("/api/v1/admin/applications/{number}/confirm");
    let cms = body.clone();
    // An application taken at a State Corporation counter is confirmed by its operator; any
    // other (and a number that does not parse or exist, refused below) by a CA operator.
    let parsed: Option<ca_core::ra::ApplicationNumber> = number.parse().ok();
    let role = move |svc: &Services| {
        let channel = match (&svc.ra_store, &parsed) {
            (Some(store), Some(n)) => store.application(n).ok().flatten().map(|a| a.channel),
            _ => None,
        };
        ca_core::ra::confirmer_role(channel.unwrap_or_default())
    };
    admin_call_as(services, headers, extensions, endpoint, body, role, move |svc, verification, operator| {
        let ra_store = svc
            .ra_store
            .as_ref()
            .ok_or_else(|| Refused::Journal("unavailable", ApiError::internal("no registration authority store")))?;
        let number = number.parse().map_err(|e: ca_core::ra::application::BadNumber| malformed(e.to_string()))?;
        let registry = StoreRegistry(ra_store.as_ref());
        let check = AlreadyVerified(verification);
        let ra = super::applications::registration_authority(svc, ra_store.as_ref(), &registry, &check);
        let confirmed = ra.confirm(&number, &operator.actor(), &cms).map_err(ra_error)?;
        Ok(serde_json::json!({ "application": confirmed.application() }))
    })
    .await
}

/// The signed content of an operator's verify or refuse request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplicationStep {
    action: String,
    application: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Authenticate an operator's request on application `number` whose signed content is an
/// [`ApplicationStep`] with `action`, then carry it out with `act`.
async fn application_step(
    services: Arc<Services>,
    number: String,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
    action: &'static str,
    act: fn(
        &RegistrationAuthority<'_>,
        &ca_core::ra::ApplicationNumber,
        &str,
        Option<&str>,
    ) -> Result<ca_core::ra::Application, RaError>,
) -> Response {
    let endpoint = format!("/api/v1/admin/applications/{number}/{}", action.trim_start_matches("operator-"));
    admin_call(services, headers, extensions, endpoint, body, move |svc, verification, operator| {
        let content = verification.content.clone().unwrap_or_default();
        let step: ApplicationStep = serde_json::from_slice(&content).map_err(|e| {
            malformed(format!(r#"signed content must be {{"action":"{action}","application":…}}: {e}"#))
        })?;
        // The signature must be for this step of this application, not another one's.
        if step.action != action || step.application != number {
            return Err(malformed(format!("the signed request is not {action} of application {number}")));
        }
        let ra_store = svc
            .ra_store
            .as_ref()
            .ok_or_else(|| Refused::Journal("unavailable", ApiError::internal("no registration authority store")))?;
        let number = number.parse().map_err(|e: ca_core::ra::application::BadNumber| malformed(e.to_string()))?;
        let registry = StoreRegistry(ra_store.as_ref());
        let check = AlreadyVerified(verification);
        let ra = super::applications::registration_authority(svc, ra_store.as_ref(), &registry, &check);
        let application = act(&ra, &number, &operator.actor(), step.reason.as_deref()).map_err(ra_error)?;
        Ok(serde_json::json!({ "application": application }))
    })
    .await
}

/// `POST /api/v1/admin/applications/{number}/verify`: the operator checked the applicant's
/// identity and the form; signed content `{"action":"operator-verify","application":…}`.
pub(crate) async fn verify_identity(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    application_step(services, number, headers, extensions, body, "operator-verify", |ra, n, operator, _| {
        ra.verify_identity(n, operator).map(|c| c.application().clone())
    })
    .await
}

/// `POST /api/v1/admin/applications/{number}/refuse` ("process 8"): signed content
/// `{"action":"operator-refuse","application":…,"reason":…}`; the reason is sent to the applicant.
pub(crate) async fn refuse(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    application_step(services, number, headers, extensions, body, "operator-refuse", |ra, n, operator, reason| {
        ra.refuse(n, operator, reason.unwrap_or_default())
    })
    .await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    action: String,
    serial: String,
    reason: String,
}

pub(crate) async fn revoke_certificate(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let endpoint = "/api/v1/admin/revocations".to_string();
    admin_call(services, headers, extensions, endpoint, body, |svc, verification, operator| {
        let content = verification.content.clone().unwrap_or_default();
        let request: RevokeRequest = serde_json::from_slice(&content).map_err(|e| {
            malformed(format!(r#"signed content must be {{"action":"revoke","serial":…,"reason":…}}: {e}"#))
        })?;
        if request.action != "revoke" {
            return Err(malformed("action must be \"revoke\""));
        }
        let serial: SerialNumber =
            request.serial.parse().map_err(|e: ca_core::serial::SerialError| malformed(e.to_string()))?;
        let reason: RevocationReason =
            request.reason.parse().map_err(|e: ca_core::revocation::UnknownReason| malformed(e.to_string()))?;
        let store: &dyn Store =
            svc.store.as_deref().ok_or_else(|| Refused::Journal("unavailable", ApiError::internal("no store")))?;
        let outcome = revoke(store, svc.clock.as_ref(), &serial, reason, None, &operator.actor()).map_err(|e| {
            let status =
                if e.to_string().contains("no certificate") { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
            Refused::Journal("refused", ApiError::new(status, "refused", e.to_string()))
        })?;
        let (already, record) = match outcome {
            RevokeOutcome::Revoked(r) => (false, r),
            RevokeOutcome::AlreadyRevoked(r) => (true, r),
        };
        Ok(serde_json::json!({ "revoked": true, "already": already, "certificate": record }))
    })
    .await
}
