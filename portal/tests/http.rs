//! The HTTP surface of portal-server: health, metrics, the OpenAPI document, JSON errors for
//! framework refusals, the body limit.

mod common;

use common::TestPortal;

#[test]
fn health_metrics_openapi_and_json_errors() {
    let t = TestPortal::start();
    assert_eq!(ca_tests::http(t.port, "GET", "/healthz", &[], b""), (200, b"ok".to_vec()));
    let (status, metrics) = ca_tests::http(t.port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("portal_password_lockouts_total 0"), "{metrics}");
    let (status, doc) = t.call("GET", "/api/v1/openapi.json", None, &serde_json::Value::Null);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/api/v1/registration",
        "/api/v1/login/password",
        "/api/v1/login/eds",
        "/api/v1/login/otp",
        "/api/v1/recovery/email",
        "/api/v1/counter/registrations",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let (status, body) = t.call("GET", "/nothing", None, &serde_json::Value::Null);
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "not-found"));
    let (status, body) = t.call("GET", "/api/v1/login/password", None, &serde_json::Value::Null);
    assert_eq!((status, body["error"].as_str().unwrap()), (405, "method-not-allowed"));
    let big = vec![b'a'; portal::http::MAX_BODY + 1];
    let (status, body) =
        ca_tests::http(t.port, "POST", "/api/v1/login/password", &[("Content-Type", "application/json")], &big);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["error"].as_str().unwrap()), (413, "body-too-large"));
    let (status, body) = ca_tests::http(t.port, "POST", "/api/v1/login/password", &[], b"{not json");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "malformed-json"));
    let metrics = String::from_utf8(ca_tests::http(t.port, "GET", "/metrics", &[], b"").1).unwrap();
    assert!(
        metrics.contains("portal_http_requests_total{route=\"/api/v1/login/password\",status=\"405\"} 1"),
        "{metrics}"
    );
}
