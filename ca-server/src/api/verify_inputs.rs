//! What a relying party sends besides the CMS or the certificate: signer requirements, the
//! validation time, and the path validation inputs (revocation demand, intermediates, CRLs,
//! RFC 5280 §6.1.1 policy inputs, required extendedKeyUsage purposes, maximum path length,
//! `strict`). In a JSON body they are top-level fields; for a body that is the CMS or the
//! certificate itself, query parameters (all but the certificate and CRL lists). Unknown
//! fields and parameters are refused: a misspelt input must not silently become no input.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use ca_core::cms::{PathOptions, Requirements};
use ca_core::identity::KeyType;
use ca_core::pkix::{OcspResponse, PkixCert, PkixCrl, RevocationPolicy, ANY_POLICY};
use const_oid::ObjectIdentifier;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ApiError;

/// Most certificates or CRLs one request may send (each may cost signature checks).
const MAX_SENT: usize = 64;

/// What a relying party demands of the signer, as JSON.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequirementsJson {
    #[serde(default, alias = "key_type", alias = "keyUsage")]
    key_usage: Option<KeyType>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    iin: Option<String>,
    #[serde(default)]
    bin: Option<String>,
}

impl RequirementsJson {
    pub(crate) fn parse(self) -> Result<Requirements, ApiError> {
        let bad = |m: String| ApiError::bad_request("malformed-requirements", m);
        Ok(Requirements {
            key_type: self.key_usage,
            roles: self.roles.iter().map(|r| r.parse().map_err(|e| bad(format!("{e}")))).collect::<Result<_, _>>()?,
            iin: self.iin.map(|i| i.parse().map_err(|e| bad(format!("iin: {e}")))).transpose()?,
            bin: self.bin.map(|b| b.parse().map_err(|e| bad(format!("bin: {e}")))).transpose()?,
        })
    }
}

/// Every input of a verification request but the CMS/certificate and the content, as the
/// top-level fields of a JSON body.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputsJson {
    #[serde(default)]
    requirements: Option<RequirementsJson>,
    #[serde(default)]
    validation_time: Option<String>,
    /// `require` (default), `prefer` or `none`.
    #[serde(default)]
    revocation: Option<RevocationPolicy>,
    /// Candidate intermediate certificates: base64 DER or PEM each.
    #[serde(default)]
    intermediates: Vec<String>,
    /// CRLs: base64 DER or PEM each.
    #[serde(default)]
    crls: Vec<String>,
    /// OCSP responses (RFC 6960 OCSPResponse): base64 DER each.
    #[serde(default)]
    ocsp_responses: Vec<String>,
    #[serde(default)]
    initial_policy_set: Option<Vec<String>>,
    #[serde(default)]
    initial_explicit_policy: Option<bool>,
    #[serde(default)]
    initial_policy_mapping_inhibit: Option<bool>,
    #[serde(default)]
    initial_inhibit_any_policy: Option<bool>,
    /// Purposes (OIDs, or `serverAuth`, `clientAuth`, `codeSigning`, `emailProtection`,
    /// `timeStamping`, `OCSPSigning`) the certificate's extendedKeyUsage must allow.
    #[serde(default)]
    extended_key_usage: Vec<String>,
    /// Most intermediate certificates the path may have.
    #[serde(default)]
    max_path_length: Option<usize>,
    #[serde(default)]
    strict: Option<bool>,
}

/// A parsed set of inputs.
pub(crate) struct Inputs {
    pub requirements: Requirements,
    pub validation_time: Option<OffsetDateTime>,
    pub options: PathOptions,
}

impl InputsJson {
    /// Whether no input is given.
    fn is_empty(&self) -> bool {
        self.requirements.is_none()
            && self.validation_time.is_none()
            && self.revocation.is_none()
            && self.intermediates.is_empty()
            && self.crls.is_empty()
            && self.ocsp_responses.is_empty()
            && self.initial_policy_set.is_none()
            && self.initial_explicit_policy.is_none()
            && self.initial_policy_mapping_inhibit.is_none()
            && self.initial_inhibit_any_policy.is_none()
            && self.extended_key_usage.is_empty()
            && self.max_path_length.is_none()
            && self.strict.is_none()
    }

    pub(crate) fn parse(self) -> Result<Inputs, ApiError> {
        let bad = |m: String| ApiError::bad_request("malformed-request", m);
        if self.intermediates.len() > MAX_SENT || self.crls.len() > MAX_SENT || self.ocsp_responses.len() > MAX_SENT {
            return Err(bad(format!(
                "at most {MAX_SENT} intermediates, {MAX_SENT} CRLs and {MAX_SENT} OCSP responses per request"
            )));
        }
        let intermediates = self
            .intermediates
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let der = super::x509::decode_certificate(text.as_bytes())
                    .map_err(|e| bad(format!("intermediates[{i}]: {}", e.message)))?;
                PkixCert::from_der(&der).map(Arc::new).map_err(|e| bad(format!("intermediates[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let crls = self
            .crls
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let der = decode_crl(text).map_err(|e| bad(format!("crls[{i}]: {e}")))?;
                PkixCrl::from_der(&der).map(Arc::new).map_err(|e| bad(format!("crls[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ocsp_responses = self
            .ocsp_responses
            .iter()
            .enumerate()
            .map(|(i, text)| {
                use base64::Engine;
                let der = base64::engine::general_purpose::STANDARD
                    .decode(ca_core::cms::without_whitespace(text.trim()).as_bytes())
                    .map_err(|_| bad(format!("ocsp_responses[{i}]: not base64")))?;
                OcspResponse::from_der(&der).map(Arc::new).map_err(|e| bad(format!("ocsp_responses[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let initial_policy_set = self
            .initial_policy_set
            .map(|set| set.iter().map(|p| policy_oid(p).map_err(bad)).collect::<Result<Vec<_>, _>>())
            .transpose()?;
        if initial_policy_set.as_ref().is_some_and(Vec::is_empty) {
            return Err(bad("initial_policy_set: empty (no policy could ever be acceptable); omit it for any".into()));
        }
        let required_eku =
            self.extended_key_usage.iter().map(|p| eku_oid(p).map_err(bad)).collect::<Result<Vec<_>, _>>()?;
        Ok(Inputs {
            requirements: self.requirements.unwrap_or_default().parse()?,
            validation_time: time_field(self.validation_time)?,
            options: PathOptions {
                revocation: self.revocation.unwrap_or_default(),
                intermediates,
                crls,
                ocsp_responses,
                initial_policy_set,
                initial_explicit_policy: self.initial_explicit_policy.unwrap_or(false),
                initial_policy_mapping_inhibit: self.initial_policy_mapping_inhibit.unwrap_or(false),
                initial_inhibit_any_policy: self.initial_inhibit_any_policy.unwrap_or(false),
                required_eku,
                max_intermediates: self.max_path_length,
                strict: self.strict.unwrap_or(false),
            },
        })
    }
}

/// The inputs as query parameters, for a body that is the CMS or the certificate itself:
/// `?key_usage=SIGN&roles=first-head,hr&iin=…&bin=…&validation_time=…&revocation=prefer&
/// initial_policy_set=1.2.3,1.2.4&initial_explicit_policy=true&extended_key_usage=clientAuth&
/// max_path_length=2&strict=true`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    #[serde(default)]
    key_usage: Option<KeyType>,
    /// Comma-separated role names or OIDs.
    #[serde(default)]
    roles: Option<String>,
    #[serde(default)]
    iin: Option<String>,
    #[serde(default)]
    bin: Option<String>,
    #[serde(default)]
    validation_time: Option<String>,
    #[serde(default)]
    revocation: Option<RevocationPolicy>,
    /// Comma-separated OIDs (`anyPolicy` or 2.5.29.32.0 for any).
    #[serde(default)]
    initial_policy_set: Option<String>,
    #[serde(default)]
    initial_explicit_policy: Option<bool>,
    #[serde(default)]
    initial_policy_mapping_inhibit: Option<bool>,
    #[serde(default)]
    initial_inhibit_any_policy: Option<bool>,
    /// Comma-separated purposes.
    #[serde(default)]
    extended_key_usage: Option<String>,
    #[serde(default)]
    max_path_length: Option<usize>,
    #[serde(default)]
    strict: Option<bool>,
}

fn comma_list(value: Option<String>) -> Vec<String> {
    value.iter().flat_map(|r| r.split(',')).map(str::trim).filter(|r| !r.is_empty()).map(String::from).collect()
}

impl VerifyQuery {
    fn into_json(self) -> InputsJson {
        let requirements =
            (self.key_usage.is_some() || self.roles.is_some() || self.iin.is_some() || self.bin.is_some()).then(|| {
                RequirementsJson {
                    key_usage: self.key_usage,
                    roles: comma_list(self.roles),
                    iin: self.iin,
                    bin: self.bin,
                }
            });
        InputsJson {
            requirements,
            validation_time: self.validation_time,
            revocation: self.revocation,
            intermediates: Vec::new(),
            crls: Vec::new(),
            ocsp_responses: Vec::new(),
            initial_policy_set: self.initial_policy_set.map(|s| comma_list(Some(s))),
            initial_explicit_policy: self.initial_explicit_policy,
            initial_policy_mapping_inhibit: self.initial_policy_mapping_inhibit,
            initial_inhibit_any_policy: self.initial_inhibit_any_policy,
            extended_key_usage: comma_list(self.extended_key_usage),
            max_path_length: self.max_path_length,
            strict: self.strict,
        }
    }
}

/// The query, or a JSON 400 naming what is wrong with it.
pub(crate) fn verify_query(query: Result<Query<VerifyQuery>, QueryRejection>) -> Result<VerifyQuery, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::bad_request("malformed-query", e.body_text()))
}

/// The inputs from the query alone (a body that is the CMS or the certificate itself).
pub(crate) fn from_query(query: VerifyQuery) -> Result<Inputs, ApiError> {
    query.into_json().parse()
}

/// The inputs from the JSON body's fields or from the query, not both.
pub(crate) fn from_body_or_query(query: VerifyQuery, body: InputsJson) -> Result<Inputs, ApiError> {
    let query = query.into_json();
    match (query.is_empty(), body.is_empty()) {
        (_, true) => query.parse(),
        (true, false) => body.parse(),
        (false, false) => Err(ApiError::bad_request(
            "malformed-request",
            "verification inputs are given both in the query and in the body; give them once",
        )),
    }
}

pub(crate) fn time_field(value: Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|t| {
            OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| {
                ApiError::bad_request("malformed-request", format!("validation_time: not RFC 3339 ({t:?}): {e}"))
            })
        })
        .transpose()
}

fn policy_oid(text: &str) -> Result<ObjectIdentifier, String> {
    if text == "anyPolicy" {
        return Ok(ANY_POLICY);
    }
    ObjectIdentifier::new(text).map_err(|e| format!("initial_policy_set: {text:?} is not an OID: {e}"))
}

fn eku_oid(text: &str) -> Result<ObjectIdentifier, String> {
    let kp = |n: u32| ObjectIdentifier::new(&format!("1.3.6.1.5.5.7.3.{n}")).map_err(|e| e.to_string());
    match text {
        "serverAuth" => kp(1),
        "clientAuth" => kp(2),
        "codeSigning" => kp(3),
        "emailProtection" => kp(4),
        "timeStamping" => kp(8),
        "OCSPSigning" => kp(9),
        other => ObjectIdentifier::new(other)
            .map_err(|e| format!("extended_key_usage: {other:?} is neither a known purpose nor an OID: {e}")),
    }
}

/// PEM (`X509 CRL`) or base64 of a CRL's DER.
fn decode_crl(text: &str) -> Result<Vec<u8>, String> {
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN") {
        let (label, der) = der::pem::decode_vec(trimmed.as_bytes()).map_err(|e| format!("PEM: {e}"))?;
        if label != "X509 CRL" {
            return Err(format!("a PEM {label:?} block where an X509 CRL was expected"));
        }
        return Ok(der);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(ca_core::cms::without_whitespace(trimmed).as_bytes())
        .map_err(|_| "not PEM or base64 of a CRL".to_string())
}

/// Add the verification inputs (body fields and query parameters) and the path outputs to the
/// OpenAPI document of `/api/v1/x509/verify` and `/api/v1/cms/verify`.
pub(crate) fn document(doc: &mut serde_json::Value) {
    use serde_json::json;
    let oids = |d: &str| json!({ "type": "array", "items": { "type": "string" }, "description": d });
    let body = json!({
        "revocation": { "type": "string", "enum": ["require", "prefer", "none"], "default": "require",
            "description": "require: every certificate of the path needs a current status, else valid=false with RevocationUnavailable; prefer: a missing status is a note (RevocationNotChecked); none: no status is asked" },
        "intermediates": { "type": "array", "maxItems": MAX_SENT, "items": { "type": "string" }, "description": "candidate intermediate certificates, base64 DER or PEM (trust anchors stay the server's)" },
        "crls": { "type": "array", "maxItems": MAX_SENT, "items": { "type": "string" }, "description": "CRLs (full, delta, indirect), base64 DER or PEM, processed by RFC 5280 §6.3" },
        "ocsp_responses": { "type": "array", "maxItems": MAX_SENT, "items": { "type": "string", "format": "byte" }, "description": "OCSP responses (RFC 6960 OCSPResponse, base64 DER), asked before the CRLs; one counts for a certificate when signed by its issuer or by a responder the issuer certified with id-kp-OCSPSigning (carried in the response), when its CertID names the certificate and when its nextUpdate (else thisUpdate) is not before the validation time; others are ignored" },
        "initial_policy_set": oids("user-initial-policy-set: OIDs, anyPolicy (default) for any"),
        "initial_explicit_policy": { "type": "boolean", "default": false },
        "initial_policy_mapping_inhibit": { "type": "boolean", "default": false },
        "initial_inhibit_any_policy": { "type": "boolean", "default": false },
        "extended_key_usage": oids("purposes the certificate's extendedKeyUsage must allow: OIDs or serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSPSigning"),
        "max_path_length": { "type": "integer", "minimum": 0, "description": "most intermediate certificates the path may have" },
        "strict": { "type": "boolean", "default": false, "description": "CA-side profile findings (profile_findings) become fatal (ProfileViolation)" }
    });
    let query = |name: &str, schema: serde_json::Value, d: &str| json!({ "name": name, "in": "query", "required": false, "description": d, "schema": schema });
    let parameters = [
        query("revocation", json!({ "type": "string", "enum": ["require", "prefer", "none"] }), "as the body field"),
        query("initial_policy_set", json!({ "type": "string" }), "comma-separated OIDs"),
        query("initial_explicit_policy", json!({ "type": "boolean" }), "as the body field"),
        query("initial_policy_mapping_inhibit", json!({ "type": "boolean" }), "as the body field"),
        query("initial_inhibit_any_policy", json!({ "type": "boolean" }), "as the body field"),
        query("extended_key_usage", json!({ "type": "string" }), "comma-separated purposes"),
        query("max_path_length", json!({ "type": "integer", "minimum": 0 }), "as the body field"),
        query("strict", json!({ "type": "boolean" }), "as the body field"),
    ];
    let outputs = json!({
        "path": { "type": "array", "description": "the validated path, the certificate first, trust anchor last",
            "items": { "type": "object", "properties": { "subject": { "type": "string" }, "serial": { "type": "string" }, "sha256": { "type": "string" } } } },
        "user_constrained_policy_set": oids("RFC 5280 §6.1.6 output: policy OIDs (2.5.29.32.0: any)"),
        "profile_findings": { "type": "array", "description": "obligations RFC 5280 puts on the issuing CA that certificates of the path break (non-fatal unless strict)",
            "items": { "type": "object", "properties": { "certificate": { "type": "string" }, "message": { "type": "string" } } } }
    });
    let extend = |target: Option<&mut serde_json::Value>, with: &serde_json::Value| {
        if let (Some(serde_json::Value::Object(target)), serde_json::Value::Object(with)) = (target, with) {
            target.extend(with.clone());
        }
    };
    for path in ["/api/v1/x509/verify", "/api/v1/cms/verify", "/api/v1/xml/verify"] {
        let post = &mut doc["paths"][path]["post"];
        extend(post.pointer_mut("/requestBody/content/application~1json/schema/properties"), &body);
        if let Some(serde_json::Value::Array(list)) = post.get_mut("parameters") {
            list.extend(parameters.iter().cloned());
        }
    }
    extend(doc.pointer_mut("/components/schemas/CertificateVerification/properties"), &outputs);
    extend(doc.pointer_mut("/components/schemas/CmsVerification/properties/signers/items/properties"), &outputs);
    extend(doc.pointer_mut("/components/schemas/XmlVerification/properties/signatures/items/properties"), &outputs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: serde_json::Value) -> Result<Inputs, ApiError> {
        serde_json::from_value::<InputsJson>(body).map_err(|e| ApiError::bad_request("x", e.to_string()))?.parse()
    }

    #[test]
    fn nothing_sent_is_revocation_required_and_any_policy() {
        let inputs = json(serde_json::json!({})).ok().unwrap();
        assert_eq!(inputs.options.revocation, RevocationPolicy::Require);
        assert!(inputs.options.initial_policy_set.is_none());
        assert!(!inputs.options.strict);
    }

    #[test]
    fn every_input_is_read() {
        let inputs = json(serde_json::json!({
            "revocation": "prefer",
            "initial_policy_set": ["2.16.840.1.101.3.2.1.48.1", "anyPolicy"],
            "initial_explicit_policy": true,
            "initial_policy_mapping_inhibit": true,
            "initial_inhibit_any_policy": true,
            "extended_key_usage": ["clientAuth", "1.2.3.4"],
            "max_path_length": 1,
            "strict": true,
        }))
        .ok()
        .unwrap();
        let o = inputs.options;
        assert_eq!(o.revocation, RevocationPolicy::Prefer);
        assert_eq!(o.initial_policy_set.unwrap()[1], ANY_POLICY);
        assert!(o.initial_explicit_policy && o.initial_policy_mapping_inhibit && o.initial_inhibit_any_policy);
        assert_eq!(o.required_eku[0].to_string(), "1.3.6.1.5.5.7.3.2");
        assert_eq!(o.max_intermediates, Some(1));
        assert!(o.strict);
    }

    #[test]
    fn bad_inputs_are_named() {
        for (body, needle) in [
            (serde_json::json!({"revocation": "sometimes"}), "unknown variant"),
            (serde_json::json!({"initial_policy_set": ["not an oid"]}), "initial_policy_set"),
            (serde_json::json!({"initial_policy_set": []}), "empty"),
            (serde_json::json!({"extended_key_usage": ["clientauth"]}), "extended_key_usage"),
            (serde_json::json!({"crls": ["%%%"]}), "crls[0]"),
            (serde_json::json!({"crls": ["MAMCAQE="]}), "crls[0]"),
            (serde_json::json!({"ocsp_responses": ["%%%"]}), "ocsp_responses[0]"),
            (serde_json::json!({"ocsp_responses": ["MAMCAQE="]}), "ocsp_responses[0]"),
            (serde_json::json!({"intermediates": ["MAMCAQE="]}), "intermediates[0]"),
            (serde_json::json!({"revocation_policy": "none"}), "unknown field"),
        ] {
            let message = json(body.clone()).err().map(|e| e.message).unwrap_or_default();
            assert!(message.contains(needle), "{body}: {message}");
        }
    }

    #[test]
    fn the_openapi_document_names_every_input_and_output() {
        let doc = super::super::openapi_document();
        for path in ["/api/v1/x509/verify", "/api/v1/cms/verify", "/api/v1/xml/verify"] {
            let post = &doc["paths"][path]["post"];
            let body = &post["requestBody"]["content"]["application/json"]["schema"]["properties"];
            for field in [
                "revocation",
                "intermediates",
                "crls",
                "ocsp_responses",
                "initial_policy_set",
                "max_path_length",
                "strict",
            ] {
                assert!(body.get(field).is_some(), "{path}: {field}");
            }
            assert!(post["parameters"].to_string().contains("\"extended_key_usage\""), "{path}");
        }
        let signer = &doc["components"]["schemas"]["CmsVerification"]["properties"]["signers"]["items"];
        assert!(signer["properties"].get("user_constrained_policy_set").is_some());
        assert!(doc["components"]["schemas"]["CertificateVerification"]["properties"].get("path").is_some());
    }

    #[test]
    fn query_and_body_inputs_do_not_mix() {
        let query = VerifyQuery { strict: Some(true), ..Default::default() };
        let body = InputsJson { revocation: Some(RevocationPolicy::None), ..Default::default() };
        assert!(from_body_or_query(query, body).is_err());
        let query = VerifyQuery { revocation: Some(RevocationPolicy::Prefer), ..Default::default() };
        let inputs = from_body_or_query(query, InputsJson::default()).ok().unwrap();
        assert_eq!(inputs.options.revocation, RevocationPolicy::Prefer);
    }
}
