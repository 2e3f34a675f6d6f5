//! OCSP responses fetched from the OCSP responder certificates
//! name in the Authority Information Access extension (the first `http` URI), by HTTP POST
//! (RFC 6960 Appendix A.1). Asked only for certificates whose CRLs could not be had. Like
//! the CRL source, this source decides nothing: the responses go to the verifier's processing
//! of OCSP evidence (the responder's authority, CertID, times). A response is cached until its
//! nextUpdate (one without nextUpdate is not kept); after a failed request the responder is
//! left alone for 30 s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::cms::{RevocationFacts, RevocationSource};
use crate::pkix::OcspResponse;
use const_oid::db::rfc5280::ID_AD_OCSP;
use const_oid::AssociatedOid;
use der::Decode;
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;
use x509_cert::Certificate;

/// Largest OCSP response read.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// After a failed request, wait this long before asking the responder again.
const RETRY_AFTER: time::Duration = time::Duration::seconds(30);

struct Cached {
    response: Arc<OcspResponse>,
    until: OffsetDateTime,
}

/// Fetches and caches OCSP responses, one per (responder URL, CertID).
pub struct OcspRevocationSource {
    clock: Arc<dyn Clock>,
    agent: ureq::Agent,
    responses: Mutex<HashMap<(String, Vec<u8>), Cached>>,
    failures: Mutex<HashMap<String, (OffsetDateTime, String)>>,
}

impl OcspRevocationSource {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(3))
            .timeout(Duration::from_secs(8))
            .redirects(0)
            .build();
        Self { clock, agent, responses: Mutex::default(), failures: Mutex::default() }
    }

    fn post(&self, url: &str, request: &[u8]) -> Result<OcspResponse, String> {
        let response = self
            .agent
            .post(url)
            .set("Content-Type", "application/ocsp-request")
            .send_bytes(request)
            .map_err(|e| format!("asking {url}: {e}"))?;
        let der = super::crl::read_body(response, url, "OCSP response", MAX_RESPONSE_BYTES)?;
        OcspResponse::from_der(&der).map_err(|e| format!("{url}: {e}"))
    }
}

/// The first HTTP URI of the certificate's AIA id-ad-ocsp entries.
fn responder_url(cert: &Certificate) -> Option<String> {
    let ext = cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == AuthorityInfoAccessSyntax::OID)?;
    let aia = AuthorityInfoAccessSyntax::from_der(ext.extn_value.as_bytes()).ok()?;
    aia.0.iter().filter(|d| d.access_method == ID_AD_OCSP).find_map(|d| match &d.access_location {
        GeneralName::UniformResourceIdentifier(uri) if uri.as_str().starts_with("http://") => Some(uri.to_string()),
        _ => None,
    })
}

impl RevocationSource for OcspRevocationSource {
    fn name(&self) -> &str {
        "ocsp"
    }

    /// Never a status of its own: the fetched responses are evidence ([`Self::ocsp_responses`]).
    fn status(&self, _certificate: &Certificate, _issuer: &Certificate) -> Result<Option<RevocationFacts>, String> {
        Ok(None)
    }

    fn ocsp_responses(
        &self,
        certificate: &Certificate,
        issuer: &Certificate,
    ) -> Result<Vec<Arc<OcspResponse>>, String> {
        let Some(url) = responder_url(certificate) else {
            return Ok(Vec::new());
        };
        // The request (one CertID, no nonce) is the cache key too.
        let request = crate::ocsp::request_for(certificate, issuer).map_err(|e| e.to_string())?;
        let key = (url.clone(), request.clone());
        let now = self.clock.now();
        if let Some(cached) = self.responses.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            if cached.until > now {
                return Ok(vec![cached.response.clone()]);
            }
        }
        if let Some((at, message)) = self.failures.lock().unwrap_or_else(|p| p.into_inner()).get(&url) {
            if *at + RETRY_AFTER > now {
                return Err(format!("OCSP unavailable (last attempt failed: {message})"));
            }
        }
        match self.post(&url, &request) {
            Ok(response) => {
                let response = Arc::new(response);
                self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&url);
                let mut responses = self.responses.lock().unwrap_or_else(|p| p.into_inner());
                responses.retain(|_, c| c.until > now);
                match response.next_update() {
                    Some(until) if until > now => {
                        responses.insert(key, Cached { response: response.clone(), until });
                    }
                    _ => {}
                }
                Ok(vec![response])
            }
            Err(message) => {
                tracing::warn!(%url, %message, "OCSP request failed");
                self.failures.lock().unwrap_or_else(|p| p.into_inner()).insert(url, (now, message.clone()));
                Err(message)
            }
        }
    }
}
