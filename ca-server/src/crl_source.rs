//! Revocation status of foreign trusted CAs' certificates from their CRLs.
//!
//! The certificate's CRL distribution point (the first `http` URI) is fetched, the CRL is
//! verified with the issuer's key (the issuer is the verified link of the path) and must name
//! that issuer, and is cached until its nextUpdate. A CRL past its nextUpdate is fetched again;
//! when that fails, the answer is an error ("revocation unavailable"), never "good". Delta
//! CRLs are not consulted: the full CRL decides.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ca_core::clock::Clock;
use ca_core::cms::{RevocationFacts, RevocationSource};
use ca_core::revocation::RevocationReason;
use const_oid::AssociatedOid;
use der::Decode;
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::CrlDistributionPoints;
use x509_cert::Certificate;

/// Largest CRL downloaded.
const MAX_CRL_BYTES: u64 = 64 * 1024 * 1024;
/// A CRL without nextUpdate is fetched again after this long.
const NO_NEXT_UPDATE_TTL: time::Duration = time::Duration::hours(1);
/// After a failed fetch, wait this long before trying the URL again (answers are errors meanwhile).
const RETRY_AFTER: time::Duration = time::Duration::seconds(30);

/// One verified CRL, reduced to what status look-ups need.
struct CachedCrl {
    issuer_key: Vec<u8>,
    refresh_at: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    /// Serial (big-endian, leading zeros stripped) → reason and time.
    revoked: HashMap<Vec<u8>, (RevocationReason, OffsetDateTime, Option<OffsetDateTime>)>,
}

#[derive(Default)]
struct Slot {
    crl: Option<Arc<CachedCrl>>,
    last_failure: Option<(OffsetDateTime, String)>,
}

/// Fetches, verifies and caches CRLs; one lock per URL so concurrent verifications wait for a
/// single download.
pub struct CrlRevocationSource {
    clock: Arc<dyn Clock>,
    agent: ureq::Agent,
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
}

impl CrlRevocationSource {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(3))
            .timeout(Duration::from_secs(8))
            .redirects(2)
            .build();
        Self { clock, agent, slots: Mutex::new(HashMap::new()) }
    }

    fn fetch(&self, url: &str, issuer: &Certificate, now: OffsetDateTime) -> Result<CachedCrl, String> {
        use der::Encode;
        let response = self.agent.get(url).call().map_err(|e| format!("fetching {url}: {e}"))?;
        let mut der = Vec::new();
        response
            .into_reader()
            .take(MAX_CRL_BYTES + 1)
            .read_to_end(&mut der)
            .map_err(|e| format!("reading {url}: {e}"))?;
        if der.len() as u64 > MAX_CRL_BYTES {
            return Err(format!("{url}: CRL larger than {MAX_CRL_BYTES} bytes"));
        }
        let spki = &issuer.tbs_certificate.subject_public_key_info;
        let crl = crl::parse_and_verify(&der, spki).map_err(|e| format!("{url}: {e}"))?;
        if crl.issuer != issuer.tbs_certificate.subject {
            return Err(format!("{url}: the CRL is not issued by the certificate's issuer"));
        }
        if crl.is_delta() {
            return Err(format!("{url}: a delta CRL where a full CRL was expected"));
        }
        if crl.next_update.is_some_and(|n| n < now) {
            return Err(format!("{url}: the CRL is stale (nextUpdate {:?})", crl.next_update));
        }
        let mut revoked = HashMap::with_capacity(usize::try_from(crl.entry_count()).unwrap_or(0));
        for entry in crl.entries() {
            let reason = entry.reason.unwrap_or(RevocationReason::Unspecified);
            if reason != RevocationReason::RemoveFromCrl {
                revoked.insert(strip(entry.serial).to_vec(), (reason, entry.revoked_at, entry.invalidity_date));
            }
        }
        let refresh_at = crl.next_update.unwrap_or(now + NO_NEXT_UPDATE_TTL);
        Ok(CachedCrl {
            issuer_key: spki.to_der().map_err(|e| e.to_string())?,
            refresh_at,
            next_update: crl.next_update,
            revoked,
        })
    }
}

fn strip(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    &serial[start..]
}

/// The first HTTP URI of the certificate's CRL distribution points.
fn distribution_point(cert: &Certificate) -> Option<String> {
    let ext = cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == CrlDistributionPoints::OID)?;
    let points = CrlDistributionPoints::from_der(ext.extn_value.as_bytes()).ok()?;
    points.0.iter().find_map(|dp| match &dp.distribution_point {
        Some(DistributionPointName::FullName(names)) => names.iter().find_map(|n| match n {
            GeneralName::UniformResourceIdentifier(uri) if uri.as_str().starts_with("http://") => {
                Some(uri.as_str().to_owned())
            }
            _ => None,
        }),
        _ => None,
    })
}

impl RevocationSource for CrlRevocationSource {
    fn name(&self) -> &str {
        "crl"
    }

    fn status(&self, certificate: &Certificate, issuer: &Certificate) -> Result<Option<RevocationFacts>, String> {
        use der::Encode;
        let Some(url) = distribution_point(certificate) else {
            return Ok(None);
        };
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(url.clone()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let issuer_key = issuer.tbs_certificate.subject_public_key_info.to_der().map_err(|e| e.to_string())?;
        let fresh = slot.crl.as_ref().is_some_and(|c| c.refresh_at > now && c.issuer_key == issuer_key);
        if !fresh {
            let recently_failed = slot.last_failure.as_ref().is_some_and(|(at, _)| *at + RETRY_AFTER > now);
            if recently_failed {
                let message = slot.last_failure.as_ref().map(|(_, m)| m.clone()).unwrap_or_default();
                return Err(format!("CRL unavailable (last attempt failed: {message})"));
            }
            match self.fetch(&url, issuer, now) {
                Ok(crl) => {
                    slot.crl = Some(Arc::new(crl));
                    slot.last_failure = None;
                }
                Err(message) => {
                    tracing::warn!(%url, %message, "CRL fetch failed");
                    slot.last_failure = Some((now, message.clone()));
                    return Err(message);
                }
            }
        }
        let crl = slot.crl.clone().ok_or("no CRL")?;
        drop(slot);
        if crl.next_update.is_some_and(|n| n < now) {
            return Err(format!("the CRL from {url} is stale"));
        }
        let serial = strip(certificate.tbs_certificate.serial_number.as_bytes());
        Ok(Some(match crl.revoked.get(serial) {
            Some((reason, revoked_at, invalidity_date)) => {
                RevocationFacts::Revoked { reason: *reason, revoked_at: *revoked_at, invalidity_date: *invalidity_date }
            }
            None => RevocationFacts::Good,
        }))
    }
}
