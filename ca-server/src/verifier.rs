//! What the verification endpoints share, built once at start: the trust store (this CA's
//! root plus `<ca dir>/trust/anchors/*.pem`; the issuing CA plus
//! `<ca dir>/trust/intermediates/*.pem`) and the revocation sources (the store for our own
//! CAs; for foreign ones fetched and cached CRLs, and OCSP responses when those fail).

use std::path::Path;
use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::cms::fetch::{CrlRevocationSource, OcspRevocationSource};
use ca_core::cms::{
    ca_keys, CmsError, PathOptions, Requirements, RevocationSource, StoreRevocationSource, TrustStore, VerifyContext,
};
use ca_core::pkix::AlgorithmPolicy;
use ca_core::store::Store;
use time::OffsetDateTime;

use crate::StartError;

pub struct Verifier {
    trust: TrustStore,
    /// Public keys (SPKI DER) of the CAs whose issued certificates our store records.
    our_ca_keys: Vec<Vec<u8>>,
    crl: CrlRevocationSource,
    ocsp: OcspRevocationSource,
}

impl Verifier {
    /// `anchors` and `intermediates` as DER; `our_cas` the CA certificates whose status the
    /// store knows (they are also made anchors/intermediates by the caller).
    pub fn new(
        anchors: &[Vec<u8>],
        intermediates: &[Vec<u8>],
        our_cas: Vec<Vec<u8>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CmsError> {
        let our_ca_keys = ca_keys(&our_cas).map_err(|e| CmsError::Certificate(e.to_string()))?;
        Ok(Self {
            trust: TrustStore::new(anchors, intermediates)?,
            our_ca_keys,
            crl: CrlRevocationSource::new(clock.clone()),
            ocsp: OcspRevocationSource::new(clock),
        })
    }

    /// Remember at most `capacity` validated certificate paths (0: validate every path from
    /// scratch); see [`TrustStore::with_path_cache`].
    pub fn with_path_cache(mut self, capacity: usize) -> Self {
        self.trust = self.trust.with_path_cache(capacity);
        self
    }

    /// Accept keys and signature algorithms by `algorithms` (for instance SHA-1 for
    /// validation times before a date, for historical documents); see
    /// [`TrustStore::with_algorithms`].
    pub fn with_algorithms(mut self, algorithms: AlgorithmPolicy) -> Self {
        self.trust = self.trust.with_algorithms(algorithms);
        self
    }

    /// Hits, misses and size of the validated-path cache, for metrics.
    pub fn path_cache_stats(&self) -> ca_core::cms::PathCacheStats {
        self.trust.path_cache_stats()
    }

    /// Trust as configured in a CA directory: `roots` (the current root and earlier ones) and
    /// `issuing` (every generation of the issuing CA, and cross certificates between roots) are
    /// this CA's certificates, whose revocations the store knows.
    pub fn from_dir(
        ca_dir: &Path,
        roots: Vec<Vec<u8>>,
        issuing: Vec<Vec<u8>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let mut anchors = roots.clone();
        anchors.extend(read_pem_dir(&ca_dir.join("trust").join("anchors"))?);
        let mut intermediates = issuing.clone();
        intermediates.extend(read_pem_dir(&ca_dir.join("trust").join("intermediates"))?);
        let mut ours = issuing;
        ours.extend(roots);
        Self::new(&anchors, &intermediates, ours, clock)
            .map_err(|e| StartError::Read { path: ca_dir.join("trust"), message: e.to_string() })
    }

    /// Run `f` with a verification context: revocation from `store` for our CAs, fetched CRLs
    /// for the others, and what the relying party sent (`options`).
    pub fn with_context<T>(
        &self,
        store: Option<&dyn Store>,
        now: OffsetDateTime,
        validation_time: Option<OffsetDateTime>,
        requirements: Requirements,
        options: PathOptions,
        f: impl FnOnce(&VerifyContext<'_>) -> T,
    ) -> T {
        let store_source = store.map(|s| StoreRevocationSource::with_ca_keys(s, &self.our_ca_keys));
        let mut revocation: Vec<&dyn RevocationSource> = Vec::new();
        if let Some(s) = &store_source {
            revocation.push(s);
        }
        revocation.push(&self.crl);
        revocation.push(&self.ocsp);
        let ctx = VerifyContext { trust: &self.trust, revocation, now, validation_time, requirements, options };
        f(&ctx)
    }
}

/// Every certificate in the `*.pem` files of `dir` (several per file allowed); no directory
/// is no certificate.
fn read_pem_dir(dir: &Path) -> Result<Vec<Vec<u8>>, StartError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "pem")).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let err = |message: String| StartError::Read { path: path.clone(), message };
        let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
        let mut rest = text.as_str();
        while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
            let end_marker = "-----END CERTIFICATE-----";
            let end = rest[start..].find(end_marker).ok_or_else(|| err("unterminated PEM block".into()))?;
            let block = &rest[start..start + end + end_marker.len()];
            let (_, der) = der::pem::decode_vec(block.as_bytes()).map_err(|e| err(format!("not PEM: {e}")))?;
            out.push(der);
            rest = &rest[start + end + end_marker.len()..];
        }
    }
    Ok(out)
}
