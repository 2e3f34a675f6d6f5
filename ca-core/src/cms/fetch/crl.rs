//! CRLs fetched from certificates' distribution points.
//!
//! The certificate's CRL distribution point (the first `http` URI) is fetched, and so is the
//! delta CRL named by a FreshestCRL extension (the certificate's, else the complete CRL's).
//! This source decides nothing: the CRLs go to the verifier's RFC 5280 §6.3 processing (scope
//! and Issuing Distribution Point, the CRL issuer's cRLSign and its own path to the same
//! anchor, the signature by whichever key of the CA has such a path, deltas). Each download is
//! cached until its nextUpdate; a CRL past its nextUpdate is fetched again, and when that
//! fails the answer is an error ("revocation unavailable"), never "good". A delta that cannot
//! be had leaves the complete CRL to decide.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::cms::{RevocationFacts, RevocationSource};
use crate::pkix::PkixCrl;
use const_oid::AssociatedOid;
use der::Decode;
use time::OffsetDateTime;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlDistributionPoints, FreshestCrl};
use x509_cert::ext::Extension;
use x509_cert::Certificate;

/// Largest CRL downloaded.
const MAX_CRL_BYTES: u64 = 64 * 1024 * 1024;
/// A CRL without nextUpdate is fetched again after this long.
const NO_NEXT_UPDATE_TTL: time::Duration = time::Duration::hours(1);
/// After a failed fetch, wait this long before trying the URL again (answers are errors meanwhile).
const RETRY_AFTER: time::Duration = time::Duration::seconds(30);

/// One downloaded CRL, decoded once.
struct CachedCrl {
    crl: Arc<PkixCrl>,
    refresh_at: OffsetDateTime,
}

#[derive(Default)]
struct Slot {
    crl: Option<CachedCrl>,
    last_failure: Option<(OffsetDateTime, String)>,
}

/// Fetches and caches CRLs; one lock per URL so concurrent verifications wait for a single
/// download.
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

    fn download(&self, url: &str, now: OffsetDateTime) -> Result<CachedCrl, String> {
        let response = self.agent.get(url).call().map_err(|e| format!("fetching {url}: {e}"))?;
        let der = read_body(response, url, "CRL", MAX_CRL_BYTES)?;
        let crl = PkixCrl::from_der(&der).map_err(|e| format!("{url}: {e}"))?;
        let next_update = crl.crl.tbs_cert_list.next_update.as_ref().map(to_offset);
        if next_update.is_some_and(|n| n < now) {
            return Err(format!("{url}: the CRL is stale (nextUpdate {next_update:?})"));
        }
        let refresh_at = next_update.unwrap_or(now + NO_NEXT_UPDATE_TTL);
        Ok(CachedCrl { crl: Arc::new(crl), refresh_at })
    }

    /// The CRL at `url`, from the cache while it is current.
    fn crl_at(&self, url: &str) -> Result<Arc<PkixCrl>, String> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(url.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        // refresh_at is never after nextUpdate: a cached CRL is current.
        if let Some(cached) = slot.crl.as_ref().filter(|c| c.refresh_at > now) {
            return Ok(cached.crl.clone());
        }
        let recently_failed = slot.last_failure.as_ref().is_some_and(|(at, _)| *at + RETRY_AFTER > now);
        if recently_failed {
            let message = slot.last_failure.as_ref().map(|(_, m)| m.clone()).unwrap_or_default();
            return Err(format!("CRL unavailable (last attempt failed: {message})"));
        }
        match self.download(url, now) {
            Ok(cached) => {
                let crl = cached.crl.clone();
                slot.crl = Some(cached);
                slot.last_failure = None;
                Ok(crl)
            }
            Err(message) => {
                tracing::warn!(%url, %message, "CRL fetch failed");
                slot.crl = None;
                slot.last_failure = Some((now, message.clone()));
                Err(message)
            }
        }
    }
}

/// The body of a response, at most `max` bytes (a larger one is refused, not cut).
pub(super) fn read_body(response: ureq::Response, url: &str, what: &str, max: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    response.into_reader().take(max + 1).read_to_end(&mut body).map_err(|e| format!("reading {url}: {e}"))?;
    if body.len() as u64 > max {
        return Err(format!("{url}: {what} larger than {max} bytes"));
    }
    Ok(body)
}

fn to_offset(t: &x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The first HTTP URI among distribution points.
fn first_http_uri(points: &[DistributionPoint]) -> Option<String> {
    points.iter().find_map(|dp| match &dp.distribution_point {
        Some(DistributionPointName::FullName(names)) => names.iter().find_map(|n| match n {
            GeneralName::UniformResourceIdentifier(uri) if uri.as_str().starts_with("http://") => {
                Some(uri.as_str().to_owned())
            }
            _ => None,
        }),
        _ => None,
    })
}

fn extension(extensions: Option<&Vec<Extension>>, oid: const_oid::ObjectIdentifier) -> Option<&[u8]> {
    extensions.into_iter().flatten().find(|e| e.extn_id == oid).map(|e| e.extn_value.as_bytes())
}

/// The first HTTP URI of the certificate's CRL distribution points.
fn distribution_point(cert: &Certificate) -> Option<String> {
    let value = extension(cert.tbs_certificate.extensions.as_ref(), CrlDistributionPoints::OID)?;
    first_http_uri(&CrlDistributionPoints::from_der(value).ok()?.0)
}

/// Where the delta CRLs are: the FreshestCRL of the certificate, else of the complete CRL.
fn freshest_crl(cert: &Certificate, complete: &PkixCrl) -> Option<String> {
    let value = extension(cert.tbs_certificate.extensions.as_ref(), FreshestCrl::OID)
        .or_else(|| extension(complete.crl.tbs_cert_list.crl_extensions.as_ref(), FreshestCrl::OID))?;
    first_http_uri(&FreshestCrl::from_der(value).ok()?.0)
}

impl RevocationSource for CrlRevocationSource {
    fn name(&self) -> &str {
        "crl"
    }

    /// Never a status of its own: the fetched CRLs go through §6.3 ([`Self::crls`]).
    fn status(&self, _certificate: &Certificate, _issuer: &Certificate) -> Result<Option<RevocationFacts>, String> {
        Ok(None)
    }

    fn crls(&self, certificate: &Certificate) -> Result<Vec<Arc<PkixCrl>>, String> {
        let Some(url) = distribution_point(certificate) else {
            return Ok(Vec::new());
        };
        let complete = self.crl_at(&url)?;
        let mut out = vec![complete.clone()];
        if let Some(delta_url) = freshest_crl(certificate, &complete).filter(|d| *d != url) {
            match self.crl_at(&delta_url) {
                Ok(delta) => out.push(delta),
                Err(message) => tracing::warn!(url = %delta_url, %message, "delta CRL unavailable"),
            }
        }
        Ok(out)
    }
}
