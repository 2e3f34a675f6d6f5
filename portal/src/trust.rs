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

/// What a scan of the CRL directories found, and how to tell that it is still current.
#[derive(Default)]
struct CrlCache {
    /// Directory → its modification time when it was listed, if the listing may be trusted
    /// while that time is unchanged (see [`settled`]).
    listed: BTreeMap<PathBuf, Option<SystemTime>>,
    /// File → (its identity when read, the CRL), in directory order.
    files: BTreeMap<PathBuf, (FileStamp, Arc<PkixCrl>)>,
    /// Files named `*.crl` that are not CRLs, as they were when read (read again, and warned
    /// about again, only when they change).
    skipped: BTreeMap<PathBuf, FileStamp>,
}

/// What tells a file's content apart from the content read before: a file replaced by a
/// rename (how CRLs are published) is another inode; one written in place has another time or
/// size. `settled`: read long enough after its last change that a later change within the same
/// timestamp tick is impossible (else the next look reads it again).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: SystemTime,
    len: u64,
    inode: u64,
    settled: bool,
}

/// File times come from a coarse kernel clock (a tick of up to ~10 ms): a change made in the
/// same tick as the one seen may leave the time as it was. A time at least this far before
/// the look is past that race.
const RACY_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a time `modified`, seen at `looked`, can no longer be repeated by a later change.
fn settled(modified: SystemTime, looked: SystemTime) -> bool {
    modified.checked_add(RACY_WINDOW).is_some_and(|m| m < looked)
}

fn stamp(meta: &std::fs::Metadata, looked: SystemTime) -> FileStamp {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    FileStamp { modified, len: meta.len(), inode, settled: settled(modified, looked) }
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
    /// The CRLs in the CRL directories now. A directory is listed again when its time changed
    /// (a file added, removed or renamed into it) or was too recent to trust; every file known
    /// is looked at (`stat`) and read again when it is another file or its time or size
    /// changed; a file read again with the same bytes keeps the CRL already parsed (and its
    /// remembered signature check). A file that is not a CRL is skipped with a warning. In the
    /// steady state this is one `stat` per directory and per CRL file, and no parsing.
    fn current(&self) -> Vec<Arc<PkixCrl>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let looked = SystemTime::now();
        let mut listed = BTreeMap::new();
        let mut paths = Vec::new();
        for dir in &self.dirs {
            let Ok(meta) = std::fs::metadata(dir) else { continue };
            let modified = meta.modified().ok();
            let unchanged = match (cache.listed.get(dir), modified) {
                (Some(Some(seen)), Some(now)) => *seen == now,
                _ => false,
            };
            if unchanged {
                let known = cache.files.keys().chain(cache.skipped.keys());
                paths.extend(known.filter(|p| p.parent() == Some(dir.as_path())).cloned());
                listed.insert(dir.clone(), modified);
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            paths.extend(entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "crl")));
            // Trusted next time only when no change can still hide behind the same time.
            listed.insert(dir.clone(), modified.filter(|m| settled(*m, looked)));
        }
        let (mut seen, mut skipped) = (BTreeMap::new(), BTreeMap::new());
        let same =
            |before: &FileStamp, now: &FileStamp| before.settled && FileStamp { settled: true, ..*now } == *before;
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let now = stamp(&meta, looked);
            if let Some((before, crl)) = cache.files.get(&path) {
                if same(before, &now) {
                    seen.insert(path, (*before, crl.clone()));
                    continue;
                }
            }
            if let Some(before) = cache.skipped.get(&path) {
                if same(before, &now) {
                    skipped.insert(path, *before);
                    continue;
                }
            }
            // The same bytes as the CRL read before (a file looked at again while its time is
            // too recent to trust, or touched): keep that CRL, whose signature check is
            // remembered, instead of parsing and verifying it again on every verification.
            let unchanged =
                |der: &[u8]| cache.files.get(&path).filter(|(_, crl)| crl.der == der).map(|(_, c)| c.clone());
            match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|der| match unchanged(&der) {
                Some(crl) => Ok(crl),
                None => PkixCrl::from_der(&der).map(Arc::new).map_err(|e| e.to_string()),
            }) {
                Ok(crl) => {
                    seen.insert(path, (now, crl));
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "not a CRL; skipped");
                    skipped.insert(path, now);
                }
            }
        }
        cache.listed = listed;
        cache.skipped = skipped;
        cache.files = seen;
        cache.files.values().map(|(_, crl)| crl.clone()).collect()
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

    /// Run `f` with a verification context at `now`: the portal's trust store and revocation
    /// sources, revocation required, no relying-party requirements (what
    /// [`ca_core::tsa::client::check_reply`] checks a time-stamping authority with).
    pub fn with_context<T>(&self, now: OffsetDateTime, f: impl FnOnce(&VerifyContext<'_>) -> T) -> T {
        let ctx = VerifyContext {
            trust: &self.trust,
            revocation: vec![&self.files, &self.fetched_crls, &self.ocsp],
            now,
            validation_time: Some(now),
            requirements: Requirements::default(),
            options: PathOptions::default(),
        };
        f(&ctx)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A CRL file whose time is too recent to trust is read again on every look, but while its
    /// bytes stay the same the CRL parsed before (with its remembered signature check) is kept;
    /// other bytes under the name are parsed anew.
    #[test]
    fn a_file_read_again_with_the_same_bytes_keeps_its_parsed_crl() {
        let ca = fixtures::TestCa::new(hsm::KeyAlgorithm::P256, hsm::KeyAlgorithm::P256);
        let this_update = time::OffsetDateTime::now_utc();
        let crl = |number: u64| {
            let params = crl::CrlParams {
                issuer: ca.issuing.subject().clone(),
                authority_key_id: ca.issuing.key_id().to_vec(),
                crl_number: number,
                this_update,
                next_update: this_update + time::Duration::days(1),
                delta_base: None,
                issuing_distribution_point: None,
                freshest_crl: None,
            };
            crl::build_crl(&params, std::iter::empty::<crl::CrlEntry<Vec<u8>>>(), ca.issuing.signer()).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nca.crl");
        std::fs::write(&path, crl(1)).unwrap();
        let files = CrlFiles { dirs: vec![dir.path().to_path_buf()], cache: Mutex::new(CrlCache::default()) };
        let first = files.current();
        assert_eq!(first.len(), 1);
        // Written just now: not settled, so looked at (read) again; the same bytes.
        let again = files.current();
        assert!(Arc::ptr_eq(&first[0], &again[0]), "the same bytes are not parsed again");
        let second = crl(2);
        std::fs::write(&path, &second).unwrap();
        let changed = files.current();
        assert!(!Arc::ptr_eq(&first[0], &changed[0]), "other bytes are parsed");
        assert_eq!(changed[0].der, second);
    }
}
