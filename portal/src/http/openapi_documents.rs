//! The digital documents part of the OpenAPI document.

use serde_json::{json, Value};

use super::openapi::{object, operation};

pub(super) fn paths() -> Value {
    let s = json!({ "type": "string" });
    let int = json!({ "type": "integer" });
    let any = json!({ "type": "object" });
    let signed = object(
        &["cms"],
        json!({ "cms": { "type": "string", "description": "attached CMS (base64 DER or PEM) over the canonical JSON request, signed with a SIGN certificate" } }),
    );
    let bad = ("400", "Malformed input: JSON, CMS, a non-canonical or stale request");
    let unauth = ("401", "No session, or a signature that does not verify, or a wrong consent code");
    let not_found = ("404", "No such document or grant for this caller; a short code that opens nothing");
    let path_id =
        |name: &str| json!([{ "name": name, "in": "path", "required": true, "schema": { "type": "integer" } }]);
    let mut list = operation(
        "The caller's documents and those of the minors he represents (history=true: older versions too)",
        None,
        ("200", object(&["documents"], json!({ "documents": { "type": "array", "items": any } }))),
        &[unauth],
        true,
    );
    list["parameters"] = json!([{ "name": "history", "in": "query", "schema": { "type": "boolean" } }]);
    let mut one = operation(
        "One document with its verification report (signature, signer, authority, time stamp)",
        None,
        ("200", any.clone()),
        &[unauth, not_found],
        true,
    );
    one["parameters"] = path_id("id");
    let mut open_access = operation("Open access to a document: a QR code (URL with a 256-bit token, SVG and PNG) and a six-digit short code; the subject's consent, journaled",
        None, ("201", object(&["grant_id", "short_code", "token", "url", "expires_at", "qr_svg", "qr_png"], json!({
            "grant_id": int, "document_id": int, "short_code": s, "token": s, "url": s, "expires_at": { "type": "string", "format": "date-time" },
            "qr_svg": s, "qr_png": { "type": "string", "description": "PNG, base64" } }))), &[unauth, not_found], true);
    open_access["parameters"] = path_id("id");
    json!({
        "/api/v1/documents": { "get": list },
        "/api/v1/documents/{id}": { "get": one },
        "/api/v1/documents/{id}/access": { "post": open_access },
        "/api/v1/documents/history": { "get": operation("The cabinet's history: view marks on the caller's documents and by the caller, access opened and withdrawn, releases", None,
            ("200", object(&["events"], json!({ "events": { "type": "array", "items": any } }))), &[unauth], true) },
        "/api/v1/documents/access": { "get": operation("Grants the caller opened", None, ("200", object(&["grants"], json!({ "grants": { "type": "array", "items": any } }))), &[unauth], true) },
        "/api/v1/documents/access/{grant}": { "delete": { "summary": "Withdraw access", "security": [{ "session": [] }], "parameters": path_id("grant"),
            "responses": { "204": { "description": "Withdrawn" }, "401": { "description": "No session" }, "403": { "description": "Already expired or withdrawn" }, "404": { "description": "No such grant of the caller" } } } },
        "/api/v1/documents/open": { "post": operation("A third party (logged in) resolves a QR token or a short code; the document with its report; a view mark in both cabinets",
            Some(json!({ "type": "object", "additionalProperties": false, "properties": { "token": s, "code": s } })), ("200", any.clone()),
            &[bad, unauth, ("403", "The access expired or was withdrawn (QR token)"), not_found, ("429", "Too many wrong short codes (Retry-After)")], true) },
        "/api/v1/documents/submissions": { "post": operation("An authority submits a document: attached CMS over {authority_bin, created_at, data, doc_type, issued_at, number, rendering, request_id, subject_iin, title}",
            Some(signed.clone()), ("201", object(&["document_id", "version", "stamped_at"], json!({ "document_id": int, "version": int, "stamped_at": { "type": "string", "format": "date-time" } }))),
            &[bad, unauth, ("403", "Not an authorised authority, a type it may not issue, or a replay"), ("409", "The document number was already submitted"), ("503", "No time-stamping authority")], false) },
        "/api/v1/systems/document-requests": { "post": operation("An admitted integrated system asks for a subject's document: attached CMS over {created_at, doc_type, request_id, subject_iin, system}; a consent code goes to the subject's bound phone",
            Some(signed.clone()), ("202", object(&["document_request", "expires_at", "message"], json!({ "document_request": s, "expires_at": { "type": "string", "format": "date-time" }, "message": s }))),
            &[bad, unauth, ("403", "Not an admitted system, a type it may not receive, no bound phone, or a replay")], false) },
        "/api/v1/systems/document-releases": { "post": operation("The system relays the subject's code: attached CMS over {code, created_at, document_request, request_id, system}; the document with the authority's CMS and time stamp",
            Some(signed), ("200", object(&["document", "cms", "timestamp_token"], json!({ "document": any, "cms": s, "timestamp_token": s }))),
            &[bad, unauth, ("403", "Not the admitted system, already released, or a replay"), not_found], false) }
    })
}
