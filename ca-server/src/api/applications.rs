//! Applicants over HTTP (regulation 004, the "on the applicant's computer" flows):
//!
//! - `POST /api/v1/applications`: a new application as JSON. `new-individual` and
//!   `new-employee` carry the applicant's AUTH and SIGN requests (PKCS#10 made by his signing
//!   client); `repeat` carries them too and is signed with his current SIGN key; `revoke-signed`
//!   is signed. The signature is a CMS (base64) over the statement
//!   (`ca application statement --action submit …`), which names the keys' digests. The answer
//!   is the application (refused ones included: a registry refusal is stored) and, for a new
//!   one, the applicant's status token; the applicant is emailed the application form.
//!   An unsigned application (new-individual, new-employee) is registered only for a caller
//!   with a listed bearer token (`<ca dir>/system/api-tokens`): the portal, which identified
//!   the person, submits it for him. Anyone else could otherwise probe the person registry
//!   (the refusal tells a deceased person from one on the special register) and send mail in
//!   the CA's name to any address. A signed application is authenticated by its signature.
//! - `GET /api/v1/applications/{number}?t=<status token>`: state, every event with its budget
//!   and deadline, the refusal. A wrong token and an unknown application answer the same 404.
//! - `POST /api/v1/applications/{number}/status`: the same for an applicant who has an EDS,
//!   with a signed request instead of the token: his SIGN key's CMS over the application's
//!   `status` statement (`ca application statement --action status --number …`), single use.
//! - `POST /api/v1/applications/{number}/head-confirm`: the legal entity's first head (or HR)
//!   confirms an employee's application: the body is his CMS over the statement
//!   (`--action head-confirm`), single use.
//!
//! Signatures are checked with the server's path engine, revocation from the store required,
//! at the time of the request; each is taken once ([`SingleUse`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use ca_core::cms::Requirements;
use ca_core::identity::{Bin, Iin};
use ca_core::ra::application::ApplicationNumber;
use ca_core::ra::cms_check::{facts_from_verification, SingleUse};
use ca_core::ra::install::token_sha256;
use ca_core::ra::receipt::Receipt;
use ca_core::ra::state_corporation::{Consent, Document, Intake, Taken};
use ca_core::ra::store::{TokenPurpose, TokenUse};
use ca_core::ra::{
    ApplicantCsrs, ApplicationKind, Channel, Expectation, RaError, RegistrationAuthority, SignatureCheck,
    SignatureProblem, SignedPayload, SignerFacts, StoreRegistry, Submission, Submitted,
};
use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::store::CaStore;

use super::ApiError;
use crate::Services;

/// Verifies a signed RA step with the server's trust store, revocation from the store required.
pub(crate) struct ServerSignatureCheck<'a>(pub &'a Services);

impl SignatureCheck for ServerSignatureCheck<'_> {
    fn check(&self, signed: &SignedPayload, expected: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        let services = self.0;
        let verifier = services
            .verifier
            .as_ref()
            .ok_or_else(|| SignatureProblem::Unavailable("no trust store configured".into()))?;
        let options =
            ca_core::cms::PathOptions { revocation: ca_core::pkix::RevocationPolicy::Require, ..Default::default() };
        let now = services.clock.now();
        let v = verifier
            .with_context(services.store.as_deref(), now, Some(expected.at), Requirements::default(), options, |ctx| {
                ca_core::cms::verify(&signed.cms, Some(&signed.content), ctx)
            })
            .map_err(|e| SignatureProblem::Invalid(format!("not a CMS signature: {e}")))?;
        facts_from_verification(&v, &signed.content)
    }
}

/// The registration authority of the server over `ra_store`, with `signatures`.
pub(crate) fn registration_authority<'a>(
    services: &'a Services,
    ra_store: &'a dyn CaStore,
    registry: &'a StoreRegistry<'a>,
    signatures: &'a dyn SignatureCheck,
) -> RegistrationAuthority<'a> {
    RegistrationAuthority {
        store: ra_store,
        certificates: ra_store,
        registry,
        signatures,
        clock: services.clock.as_ref(),
        install_url: &services.public_base_url,
        install_ttl: services.install_ttl,
    }
}

pub(crate) fn ra_status(e: &RaError) -> StatusCode {
    match e {
        RaError::NotFound(_) => StatusCode::NOT_FOUND,
        RaError::Refused(_) => StatusCode::FORBIDDEN,
        RaError::WrongState { .. } | RaError::AlreadyDone(_) | RaError::InProgress(_) => StatusCode::CONFLICT,
        RaError::Invalid(_) | RaError::NotSupported(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn ra_api_error(e: RaError) -> ApiError {
    let status = ra_status(&e);
    let kind = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::FORBIDDEN => "refused",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    ApiError::new(status, kind, e.to_string())
}

/// Run `f` off the async executor (store and signature work block); its error as JSON.
async fn blocking(f: impl FnOnce() -> Result<Response, ApiError> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

fn ra_store_of(services: &Services) -> Result<&dyn CaStore, ApiError> {
    services
        .ra_store
        .as_deref()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no registration authority store"))
}

/// A new application, as the applicant's portal or signing client sends it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewApplicationJson {
    kind: String,
    iin: String,
    #[serde(default)]
    bin: Option<String>,
    /// Where notices go (default: the registry's address).
    #[serde(default)]
    email: Option<String>,
    /// PEM (or base64 DER) PKCS#10 of the AUTH key.
    #[serde(default)]
    csr_auth: Option<String>,
    /// PEM (or base64 DER) PKCS#10 of the SIGN key.
    #[serde(default)]
    csr_sign: Option<String>,
    /// Revocation: the certificates (hex serials); none means all valid ones.
    #[serde(default)]
    serials: Vec<String>,
    /// Revocation reason (RFC 5280 name).
    #[serde(default)]
    reason: Option<String>,
    /// Base64 CMS of the applicant's SIGN key over the statement (repeat, revoke-signed).
    #[serde(default)]
    signature: Option<String>,
    /// new-employee: legal-entity roles asked for (first-head, signing-right, financial-signing,
    /// hr), each confirmed by the entity's first head.
    #[serde(default)]
    roles: Vec<String>,
    /// online (default), service-provider, or state-corporation (with `state_corporation`).
    #[serde(default)]
    channel: Option<String>,
    /// A State Corporation counter's intake: the operator, the consent, the documents, a
    /// representative.
    #[serde(default)]
    state_corporation: Option<IntakeJson>,
}

/// What the State Corporation's system sends with an application taken at its counter.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntakeJson {
    /// The State Corporation operator who took the application.
    operator: String,
    /// The applicant's written consent; absent: refused, nothing registered.
    #[serde(default)]
    consent: Option<ConsentJson>,
    /// The documents handed in (identity-document, application-form, card-or-sim,
    /// revocation-form, representative-identity, power-of-attorney).
    #[serde(default)]
    documents: Vec<String>,
    #[serde(default)]
    representative: Option<ca_core::ra::state_corporation::Representative>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentJson {
    #[serde(with = "time::serde::rfc3339")]
    taken_at: time::OffsetDateTime,
    /// SHA-256 of the scanned paper, hex.
    #[serde(default)]
    scan_sha256: Option<String>,
}

fn intake(json: IntakeJson) -> Result<Intake, ApiError> {
    let documents = json
        .documents
        .iter()
        .map(|d| d.parse::<Document>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request("bad-request", e))?;
    Ok(Intake {
        consent: json.consent.map(|c| Consent {
            taken_by: json.operator.clone(),
            taken_at: c.taken_at,
            scan_sha256: c.scan_sha256,
        }),
        operator: json.operator,
        representative: json.representative,
        documents,
        steps: None,
    })
}

fn csr_bytes(text: &str) -> Result<Vec<u8>, ApiError> {
    if text.trim_start().starts_with("-----BEGIN") {
        return Ok(text.as_bytes().to_vec());
    }
    base64::engine::general_purpose::STANDARD
        .decode(ca_core::cms::without_whitespace(text).as_bytes())
        .map_err(|e| ApiError::bad_request("bad-request", format!("a CSR is PEM or base64 DER: {e}")))
}

fn submission(json: NewApplicationJson) -> Result<(Submission, Option<Intake>), ApiError> {
    let bad = |m: String| ApiError::bad_request("bad-request", m);
    let kind: ApplicationKind =
        json.kind.parse().map_err(|e: ca_core::ra::application::UnknownKind| bad(e.to_string()))?;
    let channel: Channel = json.channel.as_deref().unwrap_or("online").parse().map_err(bad)?;
    let intake = match (channel, json.state_corporation) {
        (Channel::StateCorporation, Some(i)) => Some(intake(i)?),
        (Channel::StateCorporation, None) => {
            return Err(bad("a state-corporation application carries its counter's state_corporation intake".into()))
        }
        (_, Some(_)) => return Err(bad("state_corporation belongs to the state-corporation channel".into())),
        (_, None) => None,
    };
    if matches!(kind, ApplicationKind::RevokeCounter | ApplicationKind::Card) && channel != Channel::StateCorporation {
        return Err(bad(format!("a {kind} application is made at a counter, not over this API")));
    }
    let iin: Iin = json.iin.parse().map_err(|e: ca_core::identity::IdNumberError| bad(e.to_string()))?;
    let bin = json
        .bin
        .as_deref()
        .map(str::parse::<Bin>)
        .transpose()
        .map_err(|e: ca_core::identity::IdNumberError| bad(e.to_string()))?;
    let serials = json
        .serials
        .iter()
        .map(|s| s.parse::<SerialNumber>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let reason =
        json.reason.as_deref().map(str::parse::<RevocationReason>).transpose().map_err(|e| bad(e.to_string()))?;
    let csrs = match (json.csr_auth.as_deref(), json.csr_sign.as_deref()) {
        (Some(a), Some(s)) => Some(ApplicantCsrs { auth: csr_bytes(a)?, sign: csr_bytes(s)? }),
        (None, None) => None,
        _ => return Err(bad("give both csr_auth and csr_sign".into())),
    };
    // Over this API the keys are always the applicant's own: the CA generates keys only at a
    // counter, on the staff's explicit choice.
    if matches!(kind, ApplicationKind::NewIndividual | ApplicationKind::NewEmployee | ApplicationKind::Repeat)
        && csrs.is_none()
        && channel != Channel::StateCorporation
    {
        return Err(bad(format!("a {kind} application carries the applicant's csr_auth and csr_sign")));
    }
    let signature = json
        .signature
        .as_deref()
        .map(|s| base64::engine::general_purpose::STANDARD.decode(ca_core::cms::without_whitespace(s).as_bytes()))
        .transpose()
        .map_err(|e| bad(format!("signature is base64 of a CMS: {e}")))?;
    let roles = json
        .roles
        .iter()
        .map(|r| r.parse::<ca_core::profile::Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let submission = Submission {
        roles,
        channel,
        kind,
        iin,
        bin,
        serials,
        revocation_reason: reason,
        signature,
        operator: intake.as_ref().filter(|_| kind == ApplicationKind::RevokeCounter).map(|i| i.operator.clone()),
        email: json.email,
        csrs,
    };
    Ok((submission, intake))
}

pub(crate) async fn submit(State(services): State<Arc<Services>>, headers: HeaderMap, body: Bytes) -> Response {
    let token = super::sign::bearer(&headers).map(<[u8]>::to_vec);
    blocking(move || {
        let json: NewApplicationJson = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad-request", format!("not an application: {e}")))?;
        let (submission, intake) = submission(json)?;
        // The State Corporation's system vouches for its operator: with its bearer token, like
        // the portal's unsigned applications.
        if submission.signature.is_none() || intake.is_some() {
            let Some(token) = token else {
                let message = "an unsigned application is submitted by the portal with its bearer token";
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message));
            };
            if !services.current_api_tokens().allows(&token) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this token may not submit applications",
                ));
            }
        }
        let ra_store = ra_store_of(&services)?;
        let registry = StoreRegistry(ra_store);
        let check = ServerSignatureCheck(&services);
        let nonces = services.nonces.as_deref().ok_or_else(|| ApiError::internal("no store for request ids"))?;
        let single = SingleUse { inner: &check, requests: nonces, clock: services.clock.as_ref() };
        let ra = registration_authority(&services, ra_store, &registry, &single);
        let (registered, receipt) = match &intake {
            Some(intake) => match ra.submit_at_state_corporation(&submission, intake).map_err(ra_api_error)? {
                Taken::Registered { registered, receipt } => (*registered, receipt),
                Taken::Incomplete(receipt) => {
                    let body = serde_json::json!({
                        "error": "incomplete",
                        "message": format!("the package is incomplete: receipt of refusal {}", receipt.number),
                        "receipt": receipt,
                        "receipt_text": receipt.text(),
                    });
                    return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
                }
            },
            None => (ra.register(&submission).map_err(ra_api_error)?, None),
        };
        let (status, application) = match &registered.submitted {
            Submitted::New(a) => (StatusCode::CREATED, a),
            Submitted::Existing(a) => (StatusCode::OK, a),
        };
        let events =
            ra_store.application_events(Some(&application.number)).map_err(|e| ApiError::internal(e.to_string()))?;
        let body = serde_json::json!({
            "application": application,
            "events": events,
            "status_token": registered.status_token,
            "receipt": receipt,
            "receipt_text": receipt.as_ref().map(Receipt::text),
        });
        Ok((status, Json(body)).into_response())
    })
    .await
}

#[derive(serde::Deserialize)]
pub(crate) struct StatusQuery {
    t: Option<String>,
}

pub(crate) async fn status(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    Query(query): Query<StatusQuery>,
) -> Response {
    blocking(move || {
        let unknown = || ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such application for this token");
        let ra_store = ra_store_of(&services)?;
        let (Ok(number), Some(token)) = (number.parse::<ApplicationNumber>(), query.t.as_deref()) else {
            return Err(unknown());
        };
        let found = ra_store
            .use_token(&number, TokenPurpose::Status, &token_sha256(token), services.clock.now(), false)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        match found {
            TokenUse::Accepted => {}
            TokenUse::Expired | TokenUse::Used => {
                return Err(ApiError::new(StatusCode::GONE, "expired", "this status token has expired"))
            }
            TokenUse::Unknown => return Err(unknown()),
        }
        let application =
            ra_store.application(&number).map_err(|e| ApiError::internal(e.to_string()))?.ok_or_else(unknown)?;
        let events = ra_store.application_events(Some(&number)).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Json(serde_json::json!({ "application": application, "events": events })).into_response())
    })
    .await
}

pub(crate) async fn signed_status(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    body: Bytes,
) -> Response {
    signed_step(services, number, body, "the applicant's", |ra, store, number, cms| {
        let application = ra.applicant_view(number, cms).map_err(ra_api_error)?;
        let events = store.application_events(Some(number)).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(serde_json::json!({ "application": application, "events": events }))
    })
    .await
}

pub(crate) async fn head_confirm(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    body: Bytes,
) -> Response {
    signed_step(services, number, body, "the head's", |ra, _, number, cms| {
        let confirmed = ra.head_confirm(number, cms).map_err(ra_api_error)?;
        Ok(serde_json::json!({ "application": confirmed.application() }))
    })
    .await
}

/// A step on application `number` signed by `whose` EDS (the CMS is the body): `step` gets the
/// registration authority, whose signature check takes each request once.
async fn signed_step(
    services: Arc<Services>,
    number: String,
    body: Bytes,
    whose: &'static str,
    step: impl FnOnce(
            &RegistrationAuthority<'_>,
            &dyn CaStore,
            &ApplicationNumber,
            &[u8],
        ) -> Result<serde_json::Value, ApiError>
        + Send
        + 'static,
) -> Response {
    blocking(move || {
        let number: ApplicationNumber = number
            .parse()
            .map_err(|e: ca_core::ra::application::BadNumber| ApiError::bad_request("bad-request", e.to_string()))?;
        if body.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!("{whose} CMS signature is required"),
            ));
        }
        let cms = ca_core::cms::decode_input(&body).map_err(|e| ApiError::bad_request("bad-request", e.to_string()))?;
        let ra_store = ra_store_of(&services)?;
        let registry = StoreRegistry(ra_store);
        let check = ServerSignatureCheck(&services);
        let nonces = services.nonces.as_deref().ok_or_else(|| ApiError::internal("no store for request ids"))?;
        let single = SingleUse { inner: &check, requests: nonces, clock: services.clock.as_ref() };
        let ra = registration_authority(&services, ra_store, &registry, &single);
        Ok(Json(step(&ra, ra_store, &number, &cms)?).into_response())
    })
    .await
}
