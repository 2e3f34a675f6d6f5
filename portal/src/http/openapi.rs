//! The OpenAPI 3.0 document of the portal's API (`GET /api/v1/openapi.json`).

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

pub(super) fn operation(
    summary: &str,
    request: Option<Value>,
    ok: (&str, Value),
    errors: &[(&str, &str)],
    auth: bool,
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        ok.0.into(),
        json!({ "description": "Success", "content": { "application/json": { "schema": ok.1 } } }),
    );
    for (code, description) in errors {
        responses.insert((*code).into(), error_response(description));
    }
    let mut op = json!({ "summary": summary, "responses": responses });
    if let Some(schema) = request {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    }
    if auth {
        op["security"] = json!([{ "session": [] }]);
    }
    op
}

pub(super) fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "additionalProperties": false, "properties": properties })
}

pub(super) fn message() -> Value {
    json!({ "type": "object", "properties": { "message": { "type": "string" } } })
}

pub(super) fn document() -> Value {
    let mut doc = core_document();
    if let Some(paths) = doc["paths"].as_object_mut() {
        if let Value::Object(more) = super::openapi_documents::paths() {
            paths.extend(more);
        }
        paths.extend(super::phone::openapi_paths());
    }
    doc
}

fn core_document() -> Value {
    let s = json!({ "type": "string" });
    let session = json!({ "$ref": "#/components/schemas/Session" });
    let bad = ("400", "Malformed input (JSON, CMS, IIN/BIN, email, a password rule)");
    let unauth = ("401", "Not authenticated: wrong login or password, an invalid signature or challenge, no session");
    let too_large = ("413", "Body larger than 256 KiB");
    json!({
        "openapi": "3.0.3",
        "info": { "title": "e-government portal: accounts and login", "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "ok" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics: logins by method and outcome, lockouts, registrations", "responses": { "200": { "description": "text exposition" } } } },
            "/api/v1/challenge": { "post": operation("A single-use challenge (32 random bytes, base64) for registration, login and recovery by signature", None,
                ("200", object(&["challenge", "expires_at"], json!({ "challenge": s, "expires_at": { "type": "string", "format": "date-time" } }))), &[], false) },
            "/api/v1/registration/statement": { "post": operation("The canonical registration statement to sign (base64)",
                Some(object(&["kind", "iin", "email", "challenge"], json!({ "kind": { "type": "string", "enum": ["individual", "legal-entity"] }, "iin": s, "bin": s, "email": s, "challenge": s }))),
                ("200", object(&["statement"], json!({ "statement": s }))), &[bad], false) },
            "/api/v1/registration": { "post": operation("Register by signature: the statement signed with the AUTH key (CMS)",
                Some(object(&["kind", "iin", "email", "password", "password_repeat", "agreement_accepted", "challenge", "cms"], json!({
                    "kind": { "type": "string", "enum": ["individual", "legal-entity"] }, "iin": s, "bin": s, "email": s,
                    "password": s, "password_repeat": s, "agreement_accepted": { "type": "boolean" }, "challenge": s,
                    "cms": { "type": "string", "description": "base64 or PEM; attached over the statement, or detached" } }))),
                ("200", message()), &[bad, unauth, ("403", "Refused by the person registry (the document's messages)"), ("409", "The IIN/BIN already has an account"), too_large], false) },
            "/api/v1/login/password": { "post": operation("Login by IIN/BIN and password (10 failures lock password login for 15 minutes)",
                Some(object(&["login", "password"], json!({ "login": s, "password": s }))), ("200", session.clone()),
                &[bad, unauth, ("403", "The account is blocked"), ("429", "Password login for this IIN/BIN is locked (Retry-After, locked_until)")], false) },
            "/api/v1/login/eds": { "post": operation("Login by signature over a challenge (AUTH key)",
                Some(object(&["cms"], json!({ "cms": s, "data": { "type": "string", "description": "the challenge, for a detached signature" } }))), ("200", session.clone()), &[bad, unauth], false) },
            "/api/v1/login/otp/request": { "post": operation("Send a one-time password to the account's bound phone (the same answer whether or not there is one)",
                Some(object(&["login"], json!({ "login": s }))), ("202", message()), &[bad], false) },
            "/api/v1/login/otp": { "post": operation("Login by one-time password", Some(object(&["login", "code"], json!({ "login": s, "code": s }))), ("200", session), &[bad, unauth], false) },
            "/api/v1/logout": { "post": { "summary": "End this session", "security": [{ "session": [] }], "responses": { "204": { "description": "Ended" }, "401": error_response("No session") } } },
            "/api/v1/sessions": { "get": operation("The account's open sessions", None, ("200", json!({ "type": "object", "properties": { "current": { "type": "integer" }, "sessions": { "type": "array", "items": { "$ref": "#/components/schemas/SessionInfo" } } } })), &[unauth, ("403", "The password must be changed first")], true) },
            "/api/v1/sessions/{id}": { "delete": { "summary": "End one of the account's sessions", "security": [{ "session": [] }], "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }], "responses": { "204": { "description": "Ended" }, "400": error_response("No such open session"), "401": error_response("No session") } } },
            "/api/v1/password/change": { "post": operation("Change the password (what a must-change session must do first)",
                Some(object(&["current_password", "new_password", "new_password_repeat"], json!({ "current_password": s, "new_password": s, "new_password_repeat": s }))), ("200", message()), &[bad, unauth], true) },
            "/api/v1/recovery/eds": { "post": operation("Recover the password by signature (AUTH or SIGN key of the account's IIN)",
                Some(object(&["login", "new_password", "new_password_repeat", "challenge", "cms"], json!({ "login": s, "new_password": s, "new_password_repeat": s, "challenge": s, "cms": s }))), ("200", message()), &[bad, unauth], false) },
            "/api/v1/recovery/email": { "post": operation("Recover the password by email: a generated password is mailed on a registry match; the answer is the same either way",
                Some(json!({ "type": "object", "additionalProperties": false, "properties": { "iin": s, "document_number": s, "document_issued": { "type": "string", "format": "date" }, "bin": s, "registration_number": s } })), ("202", message()), &[bad], false) },
            "/api/v1/counter/registrations": { "post": operation("Counter registration: a request signed by an authorised workstation; the answer is signed by the portal",
                Some(object(&["cms"], json!({ "cms": { "type": "string", "description": "attached CMS over the JSON request {request_id, created_at, iin, surname, given_name, patronymic?, email, phone, consents: {user_agreement, personal_data}}" } }))),
                ("200", object(&["cms"], json!({ "cms": { "type": "string", "description": "base64 DER CMS over {request_id, login, password, outcome, at}, signed by the portal's system certificate" } }))),
                &[bad, unauth, ("403", "Unauthorised workstation, replayed request, or a registry refusal"), ("503", "The portal's EDS is not configured")], false) }
        },
        "components": {
            "securitySchemes": { "session": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"], "properties": { "error": s, "message": s, "locked_until": { "type": "string", "format": "date-time" } } },
                "Session": { "type": "object", "properties": { "token": s, "session_id": { "type": "integer" }, "login": s, "expires_at": { "type": "string", "format": "date-time" }, "must_change_password": { "type": "boolean" } } },
                "SessionInfo": { "type": "object", "properties": { "id": { "type": "integer" }, "method": s, "created_at": { "type": "string", "format": "date-time" }, "expires_at": { "type": "string", "format": "date-time" }, "last_seen_at": { "type": "string", "format": "date-time" }, "client_address": { "type": "string", "nullable": true }, "user_agent": { "type": "string", "nullable": true } } }
            }
        }
    })
}
