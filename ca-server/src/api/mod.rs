//! The JSON API for portals. Errors are JSON `{"error": kind, "message": …}` with a 4xx/5xx
//! status; a request that takes longer than [`REQUEST_TIMEOUT`](crate::REQUEST_TIMEOUT) is
//! answered 503.

pub(crate) mod admin;
pub(crate) mod applications;
pub(crate) mod auth;
pub(crate) mod install;
pub(crate) mod sign;
pub(crate) mod verify;
pub(crate) mod verify_inputs;
pub(crate) mod x509;
pub(crate) mod xml;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An API error: a status and a machine-readable kind.
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// Machine-readable detail (e.g. the verification reasons of a refused login).
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.kind, "message": self.message });
        if let (Some(details), Some(map)) = (self.details, body.as_object_mut()) {
            map.insert("details".into(), details);
        }
        (self.status, Json(body)).into_response()
    }
}

/// Middleware: bound the time of every request.
pub(crate) async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(crate::REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", crate::REQUEST_TIMEOUT.as_secs()),
        )
        .into_response(),
    }
}

/// A path no route serves.
pub(crate) async fn no_route(uri: axum::http::Uri) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("nothing is served at {}", uri.path())).into_response()
}

/// Middleware: framework refusals (body too large, bad content type, wrong method) become
/// JSON errors like every other answer, on every path (the `Allow` header of a 405 is kept).
pub(crate) use http_common::json_errors;

/// `GET /api/v1/openapi.json`.
pub(crate) async fn openapi() -> Response {
    Json(openapi_document()).into_response()
}

fn openapi_document() -> serde_json::Value {
    let mut doc = openapi_base();
    verify_inputs::document(&mut doc);
    doc
}

/// The applicants' and operators' application endpoints and the install link.
fn applications_paths() -> serde_json::Value {
    let error = serde_json::json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    let number = serde_json::json!({ "name": "number", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^A-[0-9]{4}-[0-9]{6,12}$" } });
    let token = serde_json::json!({ "name": "t", "in": "query", "required": true, "schema": { "type": "string" } });
    let cms_body = serde_json::json!({ "required": true, "content": { "application/pkcs7-mime": { "schema": { "type": "string", "format": "binary" } } } });
    let state_corporation = serde_json::json!({ "type": "object", "required": ["operator"], "additionalProperties": false, "description": "channel state-corporation: what its operator recorded", "properties": {
                    "operator": { "type": "string" },
                    "consent": { "type": "object", "required": ["taken_at"], "properties": { "taken_at": { "type": "string", "format": "date-time" }, "scan_sha256": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$" } } },
                    "documents": { "type": "array", "items": { "type": "string", "enum": ["identity-document", "application-form", "card-or-sim", "revocation-form", "representative-identity", "power-of-attorney"] } },
                    "representative": { "type": "object", "required": ["iin", "name", "power_of_attorney"], "properties": { "iin": { "type": "string" }, "name": { "type": "string" }, "power_of_attorney": { "type": "object", "required": ["number", "date", "issuer"], "properties": { "number": { "type": "string" }, "date": { "type": "string", "format": "date" }, "issuer": { "type": "string" } } } } } } });
    serde_json::json!({
        "/api/v1/applications": { "post": {
            "summary": "Register an application (regulation 004): new-individual and new-employee with the applicant's own AUTH and SIGN CSRs, submitted by the portal with its bearer token; repeat (CSRs, signed with his SIGN key) and revoke-signed (signed) need no token; the applicant is emailed the application form or the refusal. At a State Corporation counter (channel state-corporation, its system's bearer token): the consent and the package are checked first; a receipt of acceptance or of refusal is numbered and emailed",
            "security": [{}, { "bearer": [] }],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["kind", "iin"], "additionalProperties": false, "properties": {
                "kind": { "type": "string", "enum": ["new-individual", "new-employee", "repeat", "revoke-signed", "revoke-counter", "card"], "description": "revoke-counter and card only at a State Corporation counter" },
                "channel": { "type": "string", "enum": ["online", "service-provider", "state-corporation"], "default": "online" },
                "state_corporation": state_corporation,
                "roles": { "type": "array", "items": { "type": "string" }, "description": "new-employee: legal-entity roles asked for" },
                "iin": { "type": "string", "pattern": "^[0-9]{12}$" }, "bin": { "type": "string", "pattern": "^[0-9]{12}$" },
                "email": { "type": "string", "description": "where notices go; default: the person registry's address" },
                "csr_auth": { "type": "string", "description": "PKCS#10 of the AUTH key, PEM or base64 DER" },
                "csr_sign": { "type": "string", "description": "PKCS#10 of the SIGN key, PEM or base64 DER" },
                "serials": { "type": "array", "items": { "type": "string" }, "description": "revoke-signed: certificates to revoke (hex); none: all valid ones" },
                "reason": { "type": "string", "description": "revoke-signed: RFC 5280 reason name" },
                "signature": { "type": "string", "description": "base64 CMS by the applicant's SIGN key over the submit statement (repeat, revoke-signed)" } } } } } },
            "responses": {
                "201": { "description": "Registered (a refusal by the registry or of the signature is stored and returned with state refused); status_token reads the application" },
                "200": { "description": "The same application is already open" },
                "400": { "description": "Malformed; a CSR without proof of possession, with a weak key, or a key already in use", "content": error.clone() },
                "401": { "description": "An unsigned application without a bearer token", "content": error.clone() },
                "403": { "description": "A bearer token that is not listed; at a State Corporation counter, no consent (nothing registered)", "content": error.clone() },
                "422": { "description": "State Corporation counter: the package is incomplete; the body has the numbered receipt of refusal (receipt, receipt_text); nothing registered" } } } },
        "/api/v1/applications/{number}": { "get": {
            "summary": "The applicant's view of his application: state, every event with its budget and deadline, the refusal",
            "parameters": [number.clone(), token.clone()],
            "responses": { "200": { "description": "Application and events" }, "404": { "description": "No such application for this token", "content": error.clone() }, "410": { "description": "The status token has expired", "content": error.clone() } } } },
        "/api/v1/applications/{number}/status": { "post": {
            "summary": "The applicant's view of his application by signed request: his SIGN key's CMS over the application's status statement (ca application statement --action status), single use",
            "parameters": [number.clone()], "requestBody": cms_body.clone(),
            "responses": { "200": { "description": "Application and events" }, "400": { "description": "Not a CMS, or a malformed application number", "content": error.clone() }, "401": { "description": "No signature" }, "403": { "description": "Not the applicant's valid signature over this application's status statement, or a replay", "content": error.clone() }, "404": { "description": "No such application", "content": error.clone() } } } },
        "/api/v1/applications/{number}/head-confirm": { "post": {
            "summary": "The legal entity's first head or HR confirms an employee's application: his CMS (SIGN key) over the head-confirm statement, single use",
            "parameters": [number.clone()], "requestBody": cms_body.clone(),
            "responses": { "200": { "description": "Confirmed (or already)" }, "400": { "description": "Not a CMS, or a malformed application number", "content": error.clone() }, "401": { "description": "No signature" }, "403": { "description": "Signature refused (wrong signer, role, key, replay)", "content": error.clone() }, "404": { "description": "No such application", "content": error.clone() }, "409": { "description": "Not awaiting the head", "content": error.clone() } } } },
        "/api/v1/admin/applications/{number}/verify": { "post": {
            "summary": "The operator checked the applicant's identity and the form: a CMS by a CA operator whose content is {\"action\":\"operator-verify\",\"application\":…}; audited",
            "parameters": [number.clone()], "requestBody": cms_body.clone(),
            "responses": { "200": { "description": "Verified" }, "400": { "description": "Not this step of this application", "content": error.clone() }, "401": { "description": "No valid signature" }, "403": { "description": "Not an operator" }, "409": { "description": "Not awaiting the operator", "content": error.clone() } } } },
        "/api/v1/admin/applications/{number}/refuse": { "post": {
            "summary": "The operator refuses (process 8): a CMS by a CA operator whose content is {\"action\":\"operator-refuse\",\"application\":…,\"reason\":…}; the applicant is sent the refusal",
            "parameters": [number.clone()], "requestBody": cms_body,
            "responses": { "200": { "description": "Refused" }, "400": { "description": "Not this step of this application, or no reason", "content": error.clone() }, "401": { "description": "No valid signature" }, "403": { "description": "Not an operator" }, "409": { "description": "Can no longer be refused", "content": error.clone() } } } },
        "/install/{number}": { "get": {
            "summary": "The install link of the issuance notice: the certificates with the CA chain, once",
            "parameters": [number, token,
                { "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["pem", "p7c", "der"] } },
                { "name": "cert", "in": "query", "required": false, "description": "with format=der", "schema": { "type": "string", "enum": ["auth", "sign"] } }],
            "responses": {
                "200": { "description": "Certificates", "content": { "application/x-pem-file": {}, "application/pkcs7-mime": {}, "application/pkix-cert": {} } },
                "404": { "description": "No such install link (wrong token, another application's, unknown number)", "content": error.clone() },
                "410": { "description": "Used already, or expired", "content": error } } } }
    })
}

fn openapi_base() -> serde_json::Value {
    let error = serde_json::json!({
        "type": "object", "required": ["error", "message"],
        "properties": { "error": { "type": "string" }, "message": { "type": "string" } }
    });
    let name_attribute = serde_json::json!({ "type": "object", "properties": { "type": { "type": "string", "description": "CN, SN, SERIALNUMBER, C, O, OU, G, L, ST or the OID" }, "value": { "type": "string" } } });
    let identity = serde_json::json!({ "type": "object", "properties": {
                "common_name": { "type": "string", "nullable": true }, "surname": { "type": "string", "nullable": true },
                "first_name": { "type": "string", "nullable": true, "description": "what follows the surname in CN (\"SURNAME FIRSTNAME\")" },
                "patronymic": { "type": "string", "nullable": true, "description": "the G (givenName) attribute, which holds the patronymic in the national profile" },
                "iin": { "type": "string", "nullable": true }, "bin": { "type": "string", "nullable": true },
                "organisation": { "type": "string", "nullable": true }, "country": { "type": "string", "nullable": true }, "email": { "type": "string", "nullable": true },
                "roles": { "type": "array", "items": { "type": "string" } }, "key_type": { "type": "string", "enum": ["AUTH", "SIGN"], "nullable": true },
                "warnings": { "type": "array", "items": { "type": "string" } },
                "attributes": { "type": "array", "items": { "$ref": "#/components/schemas/NameAttribute" }, "description": "every subject attribute as written, in DN order" } } });
    let certificate_info = serde_json::json!({ "type": "object", "properties": {
                "serial": { "type": "string" }, "subject": { "type": "object", "properties": {
                    "dn": { "type": "string" }, "common_name": { "type": "string", "nullable": true }, "surname": { "type": "string", "nullable": true },
                    "first_name": { "type": "string", "nullable": true }, "patronymic": { "type": "string", "nullable": true },
                    "iin": { "type": "string", "nullable": true }, "bin": { "type": "string", "nullable": true },
                    "organisation": { "type": "string", "nullable": true }, "email": { "type": "string", "nullable": true }, "country": { "type": "string", "nullable": true },
                    "attributes": { "type": "array", "items": { "$ref": "#/components/schemas/NameAttribute" } } } }, "issuer": { "type": "string" },
                "not_before": { "type": "string", "format": "date-time" }, "not_after": { "type": "string", "format": "date-time" },
                "key_usage": { "type": "string", "enum": ["AUTH", "SIGN"], "nullable": true },
                "roles": { "type": "array", "items": { "type": "string" } },
                "public_key": { "type": "object" }, "policies": { "type": "array", "items": { "type": "string" } },
                "valid_now": { "type": "boolean" }, "issued_by_this_ca": { "type": "boolean" },
                "status": { "type": "object", "nullable": true }
            } });
    let distribution = serde_json::json!({
            "/crl/{file}": { "get": { "summary": "Published CRLs", "parameters": [{ "name": "file", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "CRL: DER for <name>.crl, PEM for <name>.pem", "content": { "application/pkix-crl": { "schema": { "type": "string", "format": "binary" } }, "application/x-pem-file": { "schema": { "type": "string" } } } },
                    "404": { "description": "No such CRL", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } } },
            "/ca/{file}": { "get": { "summary": "CA certificates (AIA caIssuers)", "parameters": [{ "name": "file", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "Certificate: DER for <name>.cer, PEM for <name>.pem", "content": { "application/pkix-cert": { "schema": { "type": "string", "format": "binary" } }, "application/x-pem-file": { "schema": { "type": "string" } } } },
                    "404": { "description": "No such certificate", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } } },
            "/cps": { "get": { "summary": "The certification practice statement (the CPS URL in every certificate): the file set as [server] cps_file in ca.toml, or a notice naming the CA and its policies",
                "responses": { "200": { "description": "The CPS", "content": { "text/html": { "schema": { "type": "string" } }, "text/plain": { "schema": { "type": "string" } } } } } } }
    });
    let mut paths = serde_json::Map::new();
    for part in [
        serde_json::json!({
            "/api/v1/x509/info": { "post": {
                "summary": "Who a certificate belongs to, what it may be used for, and its status in this CA",
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": { "type": "object", "required": ["certificate"],
                        "properties": { "certificate": { "type": "string", "minLength": 1, "description": "base64 DER or PEM" } } } },
                    "application/pkix-cert": { "schema": { "type": "string", "format": "binary" } }
                } },
                "responses": {
                    "200": { "description": "Certificate information", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CertificateInfo" } } } },
                    "400": { "description": "Not a certificate", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "413": { "description": "Body larger than 1 MiB" }
                }
            } },
            "/api/v1/x509/verify": { "post": {
                "summary": "Chain, revocation at the validation time, identity and requirements of a bare certificate",
                "parameters": [{ "$ref": "#/components/parameters/key_usage" }, { "$ref": "#/components/parameters/roles" }, { "$ref": "#/components/parameters/iin" }, { "$ref": "#/components/parameters/bin" }, { "$ref": "#/components/parameters/validation_time" }],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": { "type": "object", "required": ["certificate"], "additionalProperties": false,
                        "properties": { "certificate": { "type": "string", "minLength": 1, "description": "base64 DER or PEM" },
                            "validation_time": { "type": "string", "format": "date-time" },
                            "requirements": { "$ref": "#/components/schemas/Requirements" } } } },
                    "application/pkix-cert": { "schema": { "type": "string", "format": "binary" } }
                } },
                "responses": {
                    "200": { "description": "Verdict (valid or not, with reasons)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CertificateVerification" } } } },
                    "400": { "description": "Not a certificate, or a malformed request", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "413": { "description": "Body larger than 1 MiB", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
            } },
            "/api/v1/cms/verify": { "post": {
                "summary": "Verify a CMS SignedData (attached or detached, DER/BER/base64/PEM, several signers): signatures, chain, revocation at the signing time, identity, relying-party requirements",
                "parameters": [{ "$ref": "#/components/parameters/key_usage" }, { "$ref": "#/components/parameters/roles" }, { "$ref": "#/components/parameters/iin" }, { "$ref": "#/components/parameters/bin" }, { "$ref": "#/components/parameters/validation_time" }],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": { "type": "object", "required": ["cms"], "additionalProperties": false,
                        "properties": { "cms": { "type": "string", "minLength": 1, "description": "base64 or PEM of the CMS" },
                            "data": { "type": "string", "description": "base64 of the content of a detached signature" },
                            "validation_time": { "type": "string", "format": "date-time", "description": "validate at this time instead of each signer's signingTime" },
                            "requirements": { "$ref": "#/components/schemas/Requirements" } } } },
                    "application/pkcs7-mime": { "schema": { "type": "string", "format": "binary" } },
                    "application/cms": { "schema": { "type": "string", "format": "binary" } }
                } },
                "responses": {
                    "200": { "description": "Verdict; an invalid signature is valid=false with reasons", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/CmsVerification" } } } },
                    "400": { "description": "Not a CMS SignedData, or a malformed request", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "413": { "description": "Body larger than 1 MiB", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
            } }
        }),
        serde_json::json!({
            "/api/v1/cms/sign": { "post": {
                "summary": "Sign content with the service's own system certificate (CAdES-BES)",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["data"],
                    "properties": { "data": { "type": "string", "description": "base64 content" }, "detached": { "type": "boolean" } } } } } },
                "responses": {
                    "200": { "description": "The SignedData", "content": { "application/json": { "schema": { "type": "object", "properties": { "cms": { "type": "string", "description": "base64 DER" } } } } } },
                    "400": { "description": "Not JSON of this shape, or data is not base64", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "401": { "description": "No bearer token", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "403": { "description": "Token not authorised", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "503": { "description": "No system key configured", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
            } },
            "/api/v1/auth/challenge": { "post": {
                "summary": "A single-use login nonce (32 random bytes), valid 5 minutes",
                "responses": { "200": { "description": "Challenge", "content": { "application/json": { "schema": { "type": "object",
                    "properties": { "nonce": { "type": "string", "description": "base64" }, "expires_at": { "type": "string", "format": "date-time" } } } } } },
                    "429": { "description": "Too many challenges from this client (or from all clients): error rate-limited, Retry-After in seconds; limits in ca.toml [server]" } }
            } },
            "/api/v1/admin/revocations": { "post": {
                "summary": "Revoke a certificate: a CMS signed by a CA operator (SIGN key, CA-operator role) whose content is {\"action\":\"revoke\",\"serial\":…,\"reason\":…}, signed at most 10 minutes ago; audited",
                "requestBody": { "required": true, "content": { "application/pkcs7-mime": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": { "200": { "description": "Revoked (or already revoked)" }, "400": { "description": "Not a CMS, or signed content that is not a revocation request (unknown reason, bad serial)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }, "401": { "description": "No valid signature" }, "403": { "description": "Signer is not a CA operator with a SIGN key" }, "404": { "description": "Unknown serial" } }
            } },
            "/api/v1/admin/applications/{number}/confirm": { "post": {
                "summary": "The operator's confirmation of an application: a CMS by a CA operator over the application's statement (ca application statement); audited",
                "parameters": [{ "name": "number", "in": "path", "required": true, "schema": { "type": "string" } }],
                "requestBody": { "required": true, "content": { "application/pkcs7-mime": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": { "200": { "description": "Confirmed" }, "400": { "description": "Not a CMS, or a malformed application number", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }, "401": { "description": "No valid signature" }, "403": { "description": "Not an operator, or not this application's statement" }, "404": { "description": "No such application" }, "409": { "description": "Application not in a state to confirm" } }
            } },
            "/api/v1/auth/login": { "post": {
                "summary": "Log in with a signature of the nonce made with an AUTH key (a CMS, or an XML document signed as a whole whose document element has a <nonce> child); checked now, chain and revocation included; consumes the nonce",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false,
                    "description": "either cms (with data for a detached one) or xml",
                    "properties": { "cms": { "type": "string", "minLength": 1, "description": "base64 or PEM of the CMS over the nonce" }, "data": { "type": "string", "description": "base64 nonce for a detached signature" },
                        "xml": { "type": "string", "minLength": 1, "description": "an XML document with an enveloped signature over the whole document (URI=\"\") whose document element has a <nonce> child holding the base64 nonce" } } } } } },
                "responses": {
                    "200": { "description": "Who logged in", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LoginIdentity" } } } },
                    "400": { "description": "Malformed request, CMS or XML", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "401": { "description": "signature-invalid (details.reasons), nonce-unknown, nonce-replayed or nonce-expired", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
            } }
        }),
        serde_json::json!({
            "/api/v1/xml/verify": { "post": {
                "summary": "Verify the enveloped XML signatures of a document (RSA-SHA256/384/512, ECDSA-SHA256/384; C14N 1.0 and exclusive C14N, with or without comments; references \"\" and #id): what each signature covers, the signature, and its signer as /api/v1/cms/verify checks one. A signature that does not cover the element the relying party reads (the document element, or signed_id) is NotCovered; external URIs, transforms other than enveloped + C14N and several references are ReferenceRefused",
                "parameters": [{ "$ref": "#/components/parameters/key_usage" }, { "$ref": "#/components/parameters/roles" }, { "$ref": "#/components/parameters/iin" }, { "$ref": "#/components/parameters/bin" }, { "$ref": "#/components/parameters/validation_time" }],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": { "type": "object", "required": ["xml"], "additionalProperties": false,
                        "properties": { "xml": { "type": "string", "minLength": 1, "description": "the XML document as text, or base64 of its bytes" },
                            "signed_id": { "type": "string", "description": "the ID of the element the relying party reads (default: the document element)" },
                            "validation_time": { "type": "string", "format": "date-time", "description": "validate at this time (default: now; XML signatures carry no signing time)" },
                            "requirements": { "$ref": "#/components/schemas/Requirements" } } } },
                    "application/xml": { "schema": { "type": "string" } },
                    "text/xml": { "schema": { "type": "string" } }
                } },
                "responses": {
                    "200": { "description": "Verdict; an invalid, uncovered or wrapped signature is valid=false with reasons", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/XmlVerification" } } } },
                    "400": { "description": "malformed-xml: not well-formed, a DTD (entity declarations are refused), more than 1 MiB, nested deeper than 64 or more than 16 signatures; or a malformed request", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "413": { "description": "Body larger than 1 MiB", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
            } },
            "/api/v1/xml/sign": { "post": {
                "summary": "Sign an XML document with the service's system certificate: an enveloped signature over the whole document (URI=\"\"), the certificate and chain in KeyInfo/X509Data",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["xml"], "additionalProperties": false,
                    "properties": { "xml": { "type": "string", "description": "the document as text or base64" },
                        "c14n": { "type": "string", "enum": ["inclusive", "inclusive-with-comments", "exclusive", "exclusive-with-comments"], "default": "inclusive" } } } } } },
                "responses": {
                    "200": { "description": "The signed document", "content": { "application/json": { "schema": { "type": "object", "properties": { "xml": { "type": "string" } } } } } },
                    "400": { "description": "Not JSON of this shape, or not an acceptable XML document", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "401": { "description": "No bearer token", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "403": { "description": "Token not authorised", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "503": { "description": "No system key configured", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
            } }
        }),
        serde_json::json!({
            "/ocsp": { "post": { "summary": "OCSP (RFC 6960); tryLater when no responder is configured, malformedRequest for an undecodable, oversized or empty request", "requestBody": { "content": { "application/ocsp-request": {} } },
                "responses": { "200": { "description": "OCSPResponse", "content": { "application/ocsp-response": {} } },
                    "405": { "description": "Another method than POST (or GET)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } } },
            "/ocsp/{request}": { "get": { "summary": "OCSP (RFC 6960 A.1), base64 request in the path",
                "parameters": [{ "name": "request", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "OCSPResponse", "content": { "application/ocsp-response": {} } } } } },
            "/tsa": { "post": { "summary": "Time stamp (RFC 3161): a DER TimeStampReq in, a DER TimeStampResp out. A refusal is a TimeStampResp with status rejection and its failInfo (badDataFormat: not DER or longer than 4 KiB; badRequest: version other than 1; badAlg: hash other than SHA-256/384/512; unacceptedPolicy; unacceptedExtension; systemFailure: no TSA configured or signing failed). The token carries the TSA certificate only when certReq is set.",
                "requestBody": { "required": true, "content": { "application/timestamp-query": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": { "200": { "description": "TimeStampResp (granted or rejection)", "content": { "application/timestamp-reply": { "schema": { "type": "string", "format": "binary" } } } },
                    "415": { "description": "Content-Type other than application/timestamp-query", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                    "405": { "description": "Another method than POST", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } } },
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "ok" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition format" } } } }
        }),
        applications_paths(),
        distribution,
    ] {
        if let serde_json::Value::Object(map) = part {
            paths.extend(map);
        }
    }
    let schemas = serde_json::json!({
            "Error": error,
            "Requirements": { "type": "object", "additionalProperties": false, "properties": {
                "key_usage": { "type": "string", "enum": ["AUTH", "SIGN"] },
                "roles": { "type": "array", "items": { "type": "string" }, "description": "role names (individual, first-head, …) or OIDs" },
                "iin": { "type": "string" }, "bin": { "type": "string" } } },
            "Finding": { "type": "object", "properties": { "reason": { "type": "string" }, "fatal": { "type": "boolean" }, "message": { "type": "string" } } },
            "Revocation": { "type": "object", "properties": {
                "state": { "type": "string", "enum": ["good", "revoked", "revoked-later", "unknown", "unavailable", "not-checked"] },
                "source": { "type": "string", "nullable": true }, "reason": { "type": "string", "nullable": true },
                "revoked_at": { "type": "string", "format": "date-time", "nullable": true },
                "as_of": { "type": "string", "format": "date-time", "nullable": true, "description": "How fresh the status is: the time up to which its source's data is complete (the verification's time for the CA's store, a read replica's replay point, the CRL's thisUpdate — the delta CRL's when one applied —, the OCSP response's thisUpdate); null without a status" },
                "age_secs": { "type": "integer", "minimum": 0, "nullable": true, "description": "Seconds from as_of to the time of the verification" } } },
            "SignerCertificate": { "type": "object", "properties": {
                "serial": { "type": "string" }, "subject": { "type": "string" }, "issuer": { "type": "string" },
                "not_before": { "type": "string", "format": "date-time" }, "not_after": { "type": "string", "format": "date-time" },
                "identity": { "$ref": "#/components/schemas/Identity" } } },
            "NameAttribute": name_attribute,
            "Identity": identity,
            "CmsVerification": { "type": "object", "properties": {
                "valid": { "type": "boolean" }, "reasons": { "type": "array", "items": { "type": "string" } },
                "findings": { "type": "array", "items": { "$ref": "#/components/schemas/Finding" } },
                "content_type": { "type": "string" }, "detached": { "type": "boolean" },
                "content": { "type": "string", "description": "base64 of attached content" },
                "signers": { "type": "array", "items": { "type": "object", "properties": {
                    "valid": { "type": "boolean" }, "findings": { "type": "array", "items": { "$ref": "#/components/schemas/Finding" } },
                    "signature_valid": { "type": "boolean" }, "digest_valid": { "type": "boolean", "nullable": true },
                    "signing_time": { "type": "string", "format": "date-time", "nullable": true },
                    "validation_time": { "type": "string", "format": "date-time" },
                    "certificate": { "$ref": "#/components/schemas/SignerCertificate" },
                    "chain": { "type": "array", "items": { "type": "string" } }, "chain_trusted": { "type": "boolean" },
                    "revocation": { "$ref": "#/components/schemas/Revocation" } } } } } },
            "XmlVerification": { "type": "object", "properties": {
                "valid": { "type": "boolean" }, "reasons": { "type": "array", "items": { "type": "string" } },
                "findings": { "type": "array", "items": { "$ref": "#/components/schemas/Finding" } },
                "relied_on": { "$ref": "#/components/schemas/SignedElement" },
                "signatures": { "type": "array", "items": { "type": "object", "properties": {
                    "signature_path": { "type": "string" }, "signed_element": { "$ref": "#/components/schemas/SignedElement" },
                    "canonicalization": { "type": "string", "nullable": true },
                    "valid": { "type": "boolean" }, "findings": { "type": "array", "items": { "$ref": "#/components/schemas/Finding" } },
                    "digest_algorithm": { "type": "string" }, "signature_algorithm": { "type": "string" },
                    "signature_valid": { "type": "boolean" }, "digest_valid": { "type": "boolean", "nullable": true },
                    "validation_time": { "type": "string", "format": "date-time" },
                    "certificate": { "$ref": "#/components/schemas/SignerCertificate" },
                    "chain": { "type": "array", "items": { "type": "string" } }, "chain_trusted": { "type": "boolean" },
                    "revocation": { "$ref": "#/components/schemas/Revocation" } } } } } },
            "SignedElement": { "type": "object", "nullable": true, "properties": {
                "reference": { "type": "string", "description": "the reference URI as written (\"\" or #id)" },
                "element": { "type": "string" }, "path": { "type": "string", "description": "/a[1]/b[1]" },
                "id": { "type": "string", "nullable": true } } },
            "CertificateVerification": { "type": "object", "properties": {
                "valid": { "type": "boolean" }, "reasons": { "type": "array", "items": { "type": "string" } },
                "findings": { "type": "array", "items": { "$ref": "#/components/schemas/Finding" } },
                "validation_time": { "type": "string", "format": "date-time" },
                "certificate": { "$ref": "#/components/schemas/SignerCertificate" },
                "chain": { "type": "array", "items": { "type": "string" } }, "chain_trusted": { "type": "boolean" },
                "revocation": { "$ref": "#/components/schemas/Revocation" } } },
            "LoginIdentity": { "type": "object", "properties": {
                "iin": { "type": "string", "nullable": true }, "bin": { "type": "string", "nullable": true },
                "common_name": { "type": "string" }, "surname": { "type": "string" }, "first_name": { "type": "string", "nullable": true }, "patronymic": { "type": "string", "nullable": true },
                "organisation": { "type": "string", "nullable": true }, "email": { "type": "string", "nullable": true },
                "roles": { "type": "array", "items": { "type": "string" } }, "key_usage": { "type": "string" },
                "certificate": { "type": "object", "properties": { "serial": { "type": "string" }, "subject": { "type": "string" },
                    "issuer": { "type": "string" }, "not_after": { "type": "string", "format": "date-time" } } } } },
            "CertificateInfo": certificate_info
    });
    serde_json::json!({
        "openapi": "3.0.3",
        "info": { "title": "National CA services", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "parameters": {
                "key_usage": { "name": "key_usage", "in": "query", "required": false, "description": "Require an AUTH or a SIGN key (for a binary body; in JSON use requirements)", "schema": { "type": "string", "enum": ["AUTH", "SIGN"] } },
                "roles": { "name": "roles", "in": "query", "required": false, "description": "Comma-separated role names or OIDs the certificate must carry", "schema": { "type": "string" } },
                "iin": { "name": "iin", "in": "query", "required": false, "description": "The IIN the certificate must be for", "schema": { "type": "string", "pattern": "^[0-9]{12}$" } },
                "bin": { "name": "bin", "in": "query", "required": false, "description": "The BIN the certificate must be for", "schema": { "type": "string", "pattern": "^[0-9]{12}$" } },
                "validation_time": { "name": "validation_time", "in": "query", "required": false, "description": "RFC 3339; validate at this time", "schema": { "type": "string", "format": "date-time" } }
            },
          "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
          "schemas": schemas
        }
    })
}
