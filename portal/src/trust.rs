//! Whom the portal trusts and how it learns of revocations: the anchors and intermediate CAs
//! of a CA directory (and any configured besides), and for each certificate of a path, in
//! this order: the CRLs in the CRL directories (read again when a file changes) when one of
//! them is its issuer's; else the CRL its distribution point names, fetched and cached; else
//! (or when that CRL decides nothing) the OCSP responder its AIA names — the fetching sources
//! of [`ca_core::cms::fetch`], the same as `ca-server`'s. A signature is verified at the
//! portal's own time (the signer's signingTime is not trusted), with revocation required for
//! every certificate of the path: a certificate whose status none of them gives is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ca_core::ca_dir::CaDir;
use ca_core::clock::Clock;
use ca_core::cms::fetch::{CrlRevocationSource, OcspRevocationSource};
use ca_core::cms::{
    self, CertificateReport, PathOptions, Requirements, RevocationFacts, RevocationSource, TrustStore, VerifyContext,
};
use ca_core::pkix::{names_equal, PkixCrl};
use der::Encode;
use time::OffsetDateTime;
use x509_cert::Certificate;

use crate::config::TrustConfig;
use crate::error::PortalError;

/// The trust store and the revocation sources.
pub struct PortalTrust {
    trust: TrustStore,
    files: CrlFiles,
    fetched_crls: CrlRevocationSource,
    ocsp: OcspRevocationSource,
}

/// The CRLs of the CRL directories, as a revocation source.
struct CrlFiles {
    dirs: Vec<PathBuf>,
    cache: Mutex<CrlCache>,
}

#[derive(Default)]
struct CrlCache {
    /// File → (modification time, size, the CRL).
    files: BTreeMap<PathBuf, (SystemTime, u64, Arc<PkixCrl>)>,
}

/// A signature that verified, with the signer's certificate and the signed content.
#[derive(Clone, Debug)]
pub struct VerifiedSignature {
    pub signer: CertificateReport,
    /// The encapsulated content (attached signatures).
    pub content: Option<Vec<u8>>,
}

/// The trust configuration cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TrustError {
    pub path: PathBuf,
    pub message: String,
}

/// Every certificate in a PEM file (several allowed).
pub fn read_pem_certificates(path: &Path) -> Result<Vec<Vec<u8>>, TrustError> {
    let err = |message: String| TrustError { path: path.to_path_buf(), message };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = Certificate::load_pem_chain(&bytes).map_err(|e| err(format!("not PEM certificates: {e}")))?;
    certs.iter().map(|c| c.to_der().map_err(|e| err(e.to_string()))).collect()
}

impl PortalTrust {
    /// Trust as configured: with `ca_dir`, its roots (current and retired, with cross
    /// certificates) as anchors, its issuing CAs (every generation) as intermediates and its
    /// `publish/crl` as a CRL directory.
    pub fn from_config(config: &TrustConfig, clock: Arc<dyn Clock>) -> Result<Self, TrustError> {
        let mut anchors = Vec::new();
        let mut intermediates = Vec::new();
        let mut crl_dirs = config.crl_dirs.clone();
        if let Some(root) = &config.ca_dir {
            let dir = CaDir::new(root);
            let ca = dir.load_config().map_err(|e| TrustError { path: dir.config(), message: e.to_string() })?;
            for name in std::iter::once(ca.root.name.as_str()).chain(ca.retired_roots.iter().map(|r| r.name.as_str())) {
                anchors.extend(read_pem_certificates(&dir.certificate_pem(name))?);
                let cross = dir.cross_certificate_pem(name);
                if cross.exists() {
                    intermediates.extend(read_pem_certificates(&cross)?);
                }
            }
            for name in ca.issuing_names() {
                intermediates.extend(read_pem_certificates(&dir.certificate_pem(name))?);
            }
            crl_dirs.push(dir.publish_crl());
        }
        for path in &config.anchors {
            anchors.extend(read_pem_certificates(path)?);
        }
        for path in &config.intermediates {
            intermediates.extend(read_pem_certificates(path)?);
        }
        Self::new(&anchors, &intermediates, crl_dirs, clock)
    }

    /// Anchors and intermediates as DER; CRLs from `crl_dirs`, then fetched; `clock` dates the
    /// fetched evidence's caches.
    pub fn new(
        anchors: &[Vec<u8>],
        intermediates: &[Vec<u8>],
        crl_dirs: Vec<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TrustError> {
        let trust = TrustStore::new(anchors, intermediates)
            .map_err(|e| TrustError { path: PathBuf::from("[trust]"), message: e.to_string() })?;
        let files = CrlFiles { dirs: crl_dirs, cache: Mutex::new(CrlCache::default()) };
        files.current();
        Ok(Self {
            trust,
            files,
            fetched_crls: CrlRevocationSource::new(clock.clone()),
            ocsp: OcspRevocationSource::new(clock),
        })
    }
}

impl CrlFiles {
    /// The CRLs in the CRL directories now: files read again when their time or size changed,
    /// removed files forgotten. A file that is not a CRL is skipped with a warning.
    fn current(&self) -> Vec<Arc<PkixCrl>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = BTreeMap::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "crl")) {
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                let stamp = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
                if let Some((t, n, crl)) = cache.files.get(&path) {
                    if (*t, *n) == stamp {
                        seen.insert(path, (stamp.0, stamp.1, crl.clone()));
                        continue;
                    }
                }
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|der| PkixCrl::from_der(&der).map_err(|e| e.to_string()))
                {
                    Ok(crl) => {
                        seen.insert(path, (stamp.0, stamp.1, Arc::new(crl)));
                    }
                    Err(e) => tracing::warn!(file = %path.display(), error = %e, "not a CRL; skipped"),
                }
            }
        }
        cache.files = seen;
        cache.files.values().map(|(_, _, crl)| crl.clone()).collect()
    }
}

impl RevocationSource for CrlFiles {
    fn name(&self) -> &str {
        "crl-files"
    }

    /// Never a status of its own: the CRLs go through RFC 5280 §6.3 ([`Self::crls`]).
    fn status(&self, _certificate: &Certificate, _issuer: &Certificate) -> Result<Option<RevocationFacts>, String> {
        Ok(None)
    }

    /// Every CRL at hand when one of them is by the certificate's issuer (§6.3 then picks the
    /// ones in scope, indirect CRLs included); none otherwise, so that the next source fetches.
    fn crls(&self, certificate: &Certificate) -> Result<Vec<Arc<PkixCrl>>, String> {
        let crls = self.current();
        if crls.iter().any(|c| names_equal(&c.crl.tbs_cert_list.issuer, &certificate.tbs_certificate.issuer)) {
            Ok(crls)
        } else {
            Ok(Vec::new())
        }
    }
}

impl PortalTrust {
    /// Verify a stored signature for its verification report: at the time its signature time
    /// stamp proves (CAdES-T) when it carries a valid one, else at `now`; revocation by the
    /// CRL files, a fetched CRL or OCSP. The report is returned whatever it says.
    pub fn verify_report(&self, cms_bytes: &[u8], now: OffsetDateTime) -> Result<cms::CmsVerification, PortalError> {
        let ctx = VerifyContext {
            trust: &self.trust,
            revocation: vec![&self.files, &self.fetched_crls, &self.ocsp],
            now,
            validation_time: None,
            requirements: Requirements::default(),
            options: PathOptions::default(),
        };
        cms::verify(cms_bytes, None, &ctx).map_err(|e| PortalError::invalid("malformed-cms", e.to_string()))
    }

    /// Verify a CMS SignedData at `now` (chain, revocation by the CRLs at hand, `requirements`):
    /// exactly one signer, valid. The refusal names the failed checks.
    pub fn verify(
        &self,
        cms_bytes: &[u8],
        detached: Option<&[u8]>,
        requirements: Requirements,
        now: OffsetDateTime,
    ) -> Result<VerifiedSignature, PortalError> {
        let ctx = VerifyContext {
            trust: &self.trust,
            revocation: vec![&self.files, &self.fetched_crls, &self.ocsp],
            now,
            validation_time: Some(now),
            requirements,
            // Revocation required (the default): no status from any source is not valid.
            options: PathOptions::default(),
        };
        let verification =
            cms::verify(cms_bytes, detached, &ctx).map_err(|e| PortalError::invalid("malformed-cms", e.to_string()))?;
        if !verification.valid {
            let messages: Vec<&str> = verification
                .findings
                .iter()
                .chain(verification.signers.iter().flat_map(|s| &s.findings))
                .filter(|f| f.fatal)
                .map(|f| f.message.as_str())
                .collect();
            return Err(PortalError::unauthenticated("signature-invalid", messages.join("; ")));
        }
        let [signer] = verification.signers.as_slice() else {
            return Err(PortalError::unauthenticated(
                "signature-invalid",
                "the statement must have exactly one signer",
            ));
        };
        let signer = signer
            .certificate
            .as_deref()
            .cloned()
            .ok_or_else(|| PortalError::internal("a valid signer without certificate"))?;
        Ok(VerifiedSignature { signer, content: verification.content })
    }
}
