//! XML signatures over HTTP, against xmlsec1 as the oracle: xmlsec1 accepts what
//! `/api/v1/xml/sign` makes, `/api/v1/xml/verify` accepts what xmlsec1 signs (RSA and ECDSA,
//! inclusive and exclusive C14N, `""` and `#id` references) and refuses tampering, wrapping,
//! uncovered content, external references and entity bombs with reasons (never a 500); login by
//! a signed XML document end to end.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_tests::{write_pem, xmlsec1};
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};

const TOKEN: &str = "portal-token-xml-0123456789";
const INCLUSIVE: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const EXCLUSIVE: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

struct Holder {
    key: SoftwareKey,
    cert: IssuedCertificate,
}

struct Running {
    ca: TestCa,
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

fn issue(ca: &TestCa, profile: ProfileId, n: u32, alg: KeyAlgorithm) -> Holder {
    let key = SoftwareKey::generate(alg).unwrap();
    let request =
        IssuanceRequest { profile, subject: individual(n), roles: vec![], public_key: key.public_key().clone() };
    let cert = ca.issuer(&FixedClock(SystemClock.now())).issue(&request).unwrap();
    Holder { key, cert }
}

/// The server with this CA's trust and, when given, `system` as its signing identity.
fn start(ca: TestCa, system: Option<&Holder>) -> Running {
    let (root, issuing) = (&ca.root.certificate_der, &ca.issuing.certificate_der);
    let services = ca_tests::verifying_services(ca.dir.path(), root, issuing, Arc::new(SystemClock));
    let issuing = issuing.clone();
    if let Some(h) = system {
        let key = SoftwareKey::from_encrypted_pem(&h.key.to_encrypted_pem(b"pw").unwrap(), b"pw").unwrap();
        let signer =
            ca_server::SystemSigner { signer: Arc::new(key), certificate: h.cert.der.clone(), chain: vec![issuing] };
        services.system_signer.set(Some(Arc::new(signer)));
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(TOKEN.as_bytes()));
        services.api_tokens.set(Arc::new(ca_server::ApiTokens::parse(&digest).unwrap()));
    }
    let (port, runtime) = ca_tests::serve(Arc::new(services));
    Running { ca, port, _runtime: runtime }
}

fn post(r: &Running, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let (status, body) = ca_tests::http(r.port, "POST", path, headers, body);
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    (status, json)
}

fn post_json(r: &Running, path: &str, body: &Value) -> (u16, Value) {
    post(r, path, &[("Content-Type", "application/json")], body.to_string().as_bytes())
}

fn verify_xml(r: &Running, xml: &str, signed_id: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "xml": xml });
    if let Some(id) = signed_id {
        body["signed_id"] = json!(id);
    }
    post_json(r, "/api/v1/xml/verify", &body)
}

fn reasons(v: &Value) -> Vec<String> {
    v["reasons"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// xmlsec1 `--verify` with this CA's root as the only trust anchor.
fn xmlsec1_verifies(ca: &TestCa, xml: &str, name: &str, extra: &[&str]) -> Result<(), String> {
    let dir = ca.dir.path();
    let root = write_pem(dir, "root.pem", "CERTIFICATE", &ca.root.certificate_der);
    let issuing = write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, xml).unwrap();
    let (root, issuing, file) = (path_str(&root), path_str(&issuing), path_str(&file));
    let mut args = vec!["--verify", "--trusted-pem", &root, "--untrusted-pem", &issuing];
    args.extend_from_slice(extra);
    args.push(&file);
    let out = xmlsec1(&args);
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))),
    }
}

/// A document with an xmlsec1 signature template: enveloped, `uri`, the canonicalisation
/// `c14n` for SignedInfo and after the enveloped transform.
fn template(uri: &str, c14n: &str, method: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<request xmlns:x="urn:example:x" Id="r1"><x:data>pay 10 to KZ01</x:data><!-- note --><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{c14n}"/><ds:SignatureMethod Algorithm="{method}"/><ds:Reference URI="{uri}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="{c14n}"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature></request>
"#
    )
}

/// Sign `template` with xmlsec1 and the holder's key (from a PKCS#12 as a client has it).
fn xmlsec1_sign(ca: &TestCa, h: &Holder, name: &str, template: &str) -> String {
    let dir = ca.dir.path();
    let p12 =
        hsm::build_pkcs12(&h.key, &h.cert.der, std::slice::from_ref(&ca.issuing.certificate_der), "pw", name).unwrap();
    let p12_path = dir.join(format!("{name}.p12"));
    std::fs::write(&p12_path, p12).unwrap();
    let tmpl: PathBuf = dir.join(format!("{name}.tmpl.xml"));
    std::fs::write(&tmpl, template).unwrap();
    let out = dir.join(format!("{name}.signed.xml"));
    let (p12_s, tmpl_s, out_s) = (path_str(&p12_path), path_str(&tmpl), path_str(&out));
    let args = ["--sign", "--pkcs12", &p12_s, "--pwd", "pw", "--id-attr:Id", "request", "--output", &out_s, &tmpl_s];
    let result = xmlsec1(&args);
    assert!(result.status.success(), "xmlsec1 --sign: {}", String::from_utf8_lossy(&result.stderr));
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn xmlsec1_accepts_what_the_api_signs() {
    for (alg, method) in [(KeyAlgorithm::Rsa2048, "rsa-sha256"), (KeyAlgorithm::P256, "ecdsa-sha256")] {
        let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
        let system = issue(&ca, ProfileId::IndividualSign, 8, alg);
        let r = start(ca, Some(&system));
        let document = r#"<?xml version="1.0" encoding="UTF-8"?><answer xmlns="urn:example:answer" xmlns:u="urn:example:unused"><status>done</status></answer>"#;
        let bearer = format!("Bearer {TOKEN}");
        let headers = [("Content-Type", "application/json"), ("Authorization", bearer.as_str())];
        let body = json!({ "xml": document }).to_string();
        let (status, v) = post(&r, "/api/v1/xml/sign", &headers[..1], body.as_bytes());
        assert_eq!((status, v["error"].as_str()), (401, Some("unauthenticated")));
        for c14n in ["inclusive", "inclusive-with-comments", "exclusive", "exclusive-with-comments"] {
            let body = json!({ "xml": document, "c14n": c14n }).to_string();
            let (status, v) = post(&r, "/api/v1/xml/sign", &headers, body.as_bytes());
            assert_eq!(status, 200, "{v}");
            let signed = v["xml"].as_str().unwrap();
            assert!(signed.contains(method), "{signed}");
            xmlsec1_verifies(&r.ca, signed, &format!("ours-{c14n}"), &[])
                .unwrap_or_else(|e| panic!("{c14n}: {e}\n{signed}"));
            let (status, v) = verify_xml(&r, signed, None);
            assert_eq!((status, &v["valid"]), (200, &json!(true)), "{v:#}");
            // Base64 of the document is read as well.
            let b64 = base64::engine::general_purpose::STANDARD.encode(signed);
            assert_eq!(verify_xml(&r, &b64, None).1["valid"], true);
            // xmlsec1 is a real oracle: it refuses our signature once the content changes.
            let changed = signed.replace("done", "undone");
            assert!(xmlsec1_verifies(&r.ca, &changed, "ours-changed", &[]).is_err());
        }
    }
}

#[test]
fn xmlsec1_signatures_verify_and_attacks_are_refused_with_reasons() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let rsa = issue(&ca, ProfileId::IndividualSign, 3, KeyAlgorithm::Rsa2048);
    let ec = issue(&ca, ProfileId::IndividualSign, 4, KeyAlgorithm::P256);
    let r = start(ca, None);
    let mut by_id = String::new();
    for (h, method, name) in [
        (&rsa, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "rsa"),
        (&ec, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", "ec"),
    ] {
        for (c14n, uri) in [(INCLUSIVE, ""), (EXCLUSIVE, ""), (INCLUSIVE, "#r1"), (EXCLUSIVE, "#r1")] {
            let signed = xmlsec1_sign(&r.ca, h, name, &template(uri, c14n, method));
            let signed_id = uri.strip_prefix('#');
            let (status, v) = verify_xml(&r, &signed, signed_id);
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["valid"], true, "{name} {c14n} {uri:?}: {v:#}\n{signed}");
            let s = &v["signatures"][0];
            assert_eq!(s["signed_element"]["path"], "/request[1]");
            assert_eq!(s["signed_element"]["reference"], uri);
            assert_eq!(s["certificate"]["serial"], h.cert.serial.to_hex());
            assert_eq!(s["certificate"]["identity"]["key_type"], "SIGN");
            // The key type is required like for a CMS.
            let (_, v) =
                post_json(&r, "/api/v1/xml/verify", &json!({ "xml": signed, "requirements": { "key_usage": "AUTH" } }));
            assert!(reasons(&v).contains(&"WrongKeyType".into()), "{v}");
            if uri == "#r1" && c14n == EXCLUSIVE && name == "ec" {
                by_id = signed;
            }
        }
    }

    // A changed element: the digest no longer matches.
    let (status, v) = verify_xml(&r, &by_id.replace("pay 10 to", "pay 1000000 to"), None);
    assert_eq!((status, &v["valid"]), (200, &json!(false)));
    assert!(reasons(&v).contains(&"DigestMismatch".into()), "{v}");
    // An unsigned element added where the relying party reads: also covered, also refused.
    let added = by_id.replace("<x:data>", "<x:iban>KZ99 attacker</x:iban><x:data>");
    assert!(reasons(&verify_xml(&r, &added, None).1).contains(&"DigestMismatch".into()));

    // Wrapping: the signed element (and its signature) moved inside a forged document whose
    // document element the relying party reads: the signature is still valid over #r1, which is
    // not what is read.
    let body = by_id.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#).trim();
    let wrapped =
        format!(r#"<request Id="forged"><data>pay 1000000 to KZ99</data><wrapper>{body}</wrapper></request>"#);
    let (status, v) = verify_xml(&r, &wrapped, None);
    assert_eq!((status, &v["valid"]), (200, &json!(false)), "{v:#}");
    assert!(reasons(&v).contains(&"NotCovered".into()), "{v}");
    assert_eq!(v["signatures"][0]["signed_element"]["path"], "/request[1]/wrapper[1]/request[1]");
    assert_eq!(v["signatures"][0]["signature_valid"], true, "a wrapped signature is itself valid");
    // And a second element with the signed ID, for a relying party that looks it up by ID.
    let twice = format!(r#"<doc><request Id="r1"><data>pay 1000000</data></request>{body}</doc>"#);
    let (status, v) = verify_xml(&r, &twice, Some("r1"));
    assert_eq!((status, &v["valid"]), (200, &json!(false)));
    assert!(reasons(&v).contains(&"NotCovered".into()), "{v}");

    // An external reference.
    let external = by_id.replace(r##"URI="#r1""##, r#"URI="http://attacker.example/payment.xml""#);
    let (status, v) = verify_xml(&r, &external, None);
    assert_eq!((status, &v["valid"]), (200, &json!(false)));
    assert!(reasons(&v).contains(&"ReferenceRefused".into()), "{v}");

    // An entity-expansion bomb, a DTD with an external entity, deep nesting: 400, never a 500.
    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"{}\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]><r>&c;&c;&c;</r>",
        "x".repeat(100)
    );
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>"#;
    let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    for (bad, expected) in
        [(bomb.as_str(), "DTD"), (xxe, "DTD"), (deep.as_str(), "deep"), ("<a><b></a>", "well-formed")]
    {
        let (status, v) = verify_xml(&r, bad, None);
        assert_eq!((status, v["error"].as_str()), (400, Some("malformed-xml")), "{v}");
        assert!(v["message"].as_str().unwrap().contains(expected), "{v}");
    }
    let (status, v) = post(&r, "/api/v1/xml/verify", &[("Content-Type", "application/xml")], bomb.as_bytes());
    assert_eq!((status, v["error"].as_str()), (400, Some("malformed-xml")), "{v}");
    // The raw body form works for a good document too.
    let (status, v) = post(&r, "/api/v1/xml/verify", &[("Content-Type", "application/xml")], added.as_bytes());
    assert_eq!((status, &v["valid"]), (200, &json!(false)));
}

fn challenge(r: &Running) -> String {
    let (status, v) = post(r, "/api/v1/auth/challenge", &[], b"");
    assert_eq!(status, 200, "{v}");
    v["nonce"].as_str().unwrap().to_owned()
}

fn login_document(nonce: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><login><nonce>{nonce}</nonce><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{INCLUSIVE}"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature></login>"#
    )
}

#[test]
fn login_by_signed_xml_over_http() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let auth = issue(&ca, ProfileId::IndividualAuth, 7, KeyAlgorithm::Rsa2048);
    let sign = issue(&ca, ProfileId::IndividualSign, 7, KeyAlgorithm::Rsa2048);
    let r = start(ca, None);

    let nonce = challenge(&r);
    let signed = xmlsec1_sign(&r.ca, &auth, "auth", &login_document(&nonce));
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": signed }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["iin"], individual(7).iin().unwrap().to_string());
    assert_eq!(v["key_usage"], "AUTH");
    assert_eq!(v["certificate"]["serial"], auth.cert.serial.to_hex());
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": signed }));
    assert_eq!((status, v["error"].as_str()), (401, Some("nonce-replayed")), "{v}");

    // The nonce changed after signing: the signature no longer covers it.
    let nonce = challenge(&r);
    let signed = xmlsec1_sign(&r.ca, &auth, "auth", &login_document(&challenge(&r)));
    let swapped = {
        let start = signed.find("<nonce>").unwrap() + "<nonce>".len();
        let end = signed.find("</nonce>").unwrap();
        format!("{}{nonce}{}", &signed[..start], &signed[end..])
    };
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": swapped }));
    assert_eq!((status, v["error"].as_str()), (401, Some("signature-invalid")), "{v}");
    assert!(v["details"]["reasons"].as_array().unwrap().contains(&json!("DigestMismatch")), "{v}");

    // A SIGN key may not log in.
    let signed = xmlsec1_sign(&r.ca, &sign, "sign", &login_document(&nonce));
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": signed }));
    assert_eq!((status, v["error"].as_str()), (401, Some("signature-invalid")), "{v}");
    assert!(v["details"]["reasons"].as_array().unwrap().contains(&json!("WrongKeyType")), "{v}");

    // A signed document without a nonce, a nonce this server never issued, malformed XML.
    let signed = xmlsec1_sign(&r.ca, &auth, "auth", &login_document("not a nonce"));
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": signed }));
    assert_eq!((status, v["error"].as_str()), (401, Some("nonce-unknown")), "{v}");
    let foreign = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let signed = xmlsec1_sign(&r.ca, &auth, "auth", &login_document(&foreign));
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": signed }));
    assert_eq!((status, v["error"].as_str()), (401, Some("nonce-unknown")), "{v}");
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": "<login>" }));
    assert_eq!((status, v["error"].as_str()), (400, Some("malformed-xml")), "{v}");
    let (status, _) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": "<a/>", "cms": "x" }));
    assert_eq!(status, 400);

    // The nonce still works with our own library signing (as ca-signer's signXml does).
    let signed = ca_core::xml::sign(
        login_document(&nonce).split("<ds:Signature").next().map(|s| format!("{s}</login>")).unwrap().as_bytes(),
        &auth.key,
        &auth.cert.der,
        &[],
        &Default::default(),
    )
    .unwrap();
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "xml": String::from_utf8(signed).unwrap() }));
    assert_eq!(status, 200, "{v}");
}

#[test]
fn the_openapi_document_describes_the_xml_endpoints() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let r = start(ca, None);
    let (status, body) = ca_tests::http(r.port, "GET", "/api/v1/openapi.json", &[], b"");
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    for path in ["/api/v1/xml/verify", "/api/v1/xml/sign"] {
        assert!(doc["paths"][path]["post"].is_object(), "{path}");
    }
    assert!(doc["paths"]["/api/v1/xml/verify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        ["properties"]["revocation"]
        .is_object());
    assert!(doc["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        ["properties"]["xml"]
        .is_object());
}
