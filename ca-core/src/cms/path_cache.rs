//! Memory of certificate paths already validated, so that a signer seen before costs one
//! signature check (its signature on the message) instead of one per link of its path.
//!
//! What is remembered is a fact that cannot change: "the certificate with this SHA-256 chains,
//! by valid signatures and webpki's structural checks, to this trust anchor through these CA
//! certificates". The trust store is immutable for the cache's lifetime, so the fact holds for
//! as long as the process runs — *at times inside the validity of every certificate that webpki
//! checked*, which is why each entry carries that window and a lookup outside it misses and goes
//! through full path building again. Everything that depends on the validation time or on the
//! world is checked on every request by the caller, never cached: validity at the signing time,
//! the anchor's validity, revocation of every link.
//!
//! The key is the leaf alone, not the intermediates a CMS happened to carry: a path once
//! found through a CA certificate sent along with a signature stays valid when a later
//! signature by the same certificate arrives without it (its signatures do not change), as
//! browsers remember intermediates. Only successful paths are remembered. The cache is bounded: two generations of at most
//! `capacity / 2` entries each; a hit in the old generation moves the entry to the new one, and
//! when the new one is full the old is dropped — an approximate LRU without per-hit
//! bookkeeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use time::OffsetDateTime;

use super::report::{PathCertificate, Reason};
use crate::pkix::{PkixCert, ProfileFinding};

/// The CA part of a validated path: the same for every leaf issued by the same CA, so entries
/// share it.
#[derive(Debug)]
pub(crate) struct CaPath {
    /// Issuer first, trust anchor last.
    pub certificates: Vec<Arc<PkixCert>>,
    /// Their subjects, formatted for reports (a report's `chain`, shared).
    pub subjects: Arc<[String]>,
    /// Subject, serial and fingerprint of each: the CA part of a report's `path`, shared.
    pub described: Arc<[PathCertificate]>,
    /// Problems that do not depend on time (a CA certificate without keyCertSign).
    pub static_problems: Vec<(Reason, String)>,
}

/// What the validation of one leaf's path established besides the path: outputs that depend
/// only on the certificates and the (default) settings it was found with. They are the part of
/// every answer about this leaf that neither the validation time nor revocation changes, so
/// they are rendered once, here, and shared by the reports (a remembered signer's answer
/// copies no string of them).
#[derive(Debug, Default)]
pub(crate) struct PathFacts {
    /// The leaf's entry in a report's `path` (its CA part is [`CaPath::described`]).
    pub target: Arc<PathCertificate>,
    /// The user-constrained policy set (dotted OIDs; `2.5.29.32.0` for any).
    pub policies: Arc<[String]>,
    /// CA-side obligations broken by certificates of the path.
    pub findings: Arc<[ProfileFinding]>,
}

/// A validated path of one leaf certificate.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedPath {
    pub ca: Arc<CaPath>,
    pub facts: Arc<PathFacts>,
    /// webpki found the path valid at any time in `[valid_from, valid_until]`: the
    /// intersection of the leaf's and the intermediates' validity periods.
    pub valid_from: OffsetDateTime,
    pub valid_until: OffsetDateTime,
}

impl VerifiedPath {
    pub fn covers(&self, at: OffsetDateTime) -> bool {
        self.valid_from <= at && at <= self.valid_until
    }
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
}

pub(crate) type Fingerprint = [u8; 32];

/// A map of at most `capacity` entries in two generations of `capacity / 2`: a hit in the old
/// generation moves the entry to the new one, and when the new one is full the old is dropped.
pub(crate) struct BoundedCache<V> {
    capacity: usize,
    inner: Mutex<[HashMap<Fingerprint, V>; 2]>,
}

impl<V: Clone> BoundedCache<V> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new([HashMap::new(), HashMap::new()]) }
    }

    fn lock(&self) -> MutexGuard<'_, [HashMap<Fingerprint, V>; 2]> {
        // Maps are only changed by single inserts and removals, so a panic while holding the
        // lock cannot leave a wrong entry: a poisoned cache is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &Fingerprint) -> Option<V> {
        if self.capacity == 0 {
            return None;
        }
        let mut g = self.lock();
        if let Some(v) = g[0].get(key) {
            return Some(v.clone());
        }
        let v = g[1].remove(key)?;
        Self::insert_into(&mut g, *key, v.clone(), self.capacity);
        Some(v)
    }

    pub fn insert(&self, key: Fingerprint, value: V) {
        if self.capacity > 0 {
            Self::insert_into(&mut self.lock(), key, value, self.capacity);
        }
    }

    pub fn len(&self) -> usize {
        let g = self.lock();
        g[0].len() + g[1].len()
    }

    fn insert_into(g: &mut [HashMap<Fingerprint, V>; 2], key: Fingerprint, value: V, capacity: usize) {
        if g[0].len() >= capacity.div_ceil(2) && !g[0].contains_key(&key) {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(key, value);
    }
}

pub(crate) struct PathCache {
    paths: BoundedCache<VerifiedPath>,
    /// CA paths by the fingerprint of their certificates, so leaf entries share them.
    ca_paths: Mutex<HashMap<Fingerprint, Arc<CaPath>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The cache key of a certificate (the SHA-256 of its DER, as in signingCertificateV2) or of
/// a CA path (several certificates: length-prefixed, so different splits differ).
pub(crate) fn fingerprint(parts: &[&[u8]]) -> Fingerprint {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    if let [single] = parts {
        ctx.update(single);
    } else {
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl PathCache {
    /// `capacity` leaf paths at most; 0 turns the cache off.
    pub fn new(capacity: usize) -> Self {
        Self {
            paths: BoundedCache::new(capacity),
            ca_paths: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The remembered path of the leaf with this fingerprint, if it covers `at`.
    pub fn get(&self, leaf: &Fingerprint, at: OffsetDateTime) -> Option<VerifiedPath> {
        let found = self.paths.get(leaf).filter(|p| p.covers(at));
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remember a validated path; `ca_key` identifies its CA part (see [`fingerprint`]).
    /// Returns the path as stored (sharing an equal CA part already cached).
    pub fn insert(
        &self,
        leaf: Fingerprint,
        ca_key: Fingerprint,
        ca: CaPath,
        facts: PathFacts,
        valid_from: OffsetDateTime,
        valid_until: OffsetDateTime,
    ) -> VerifiedPath {
        let facts = Arc::new(facts);
        if self.paths.capacity == 0 {
            return VerifiedPath { ca: Arc::new(ca), facts, valid_from, valid_until };
        }
        let ca = {
            let mut ca_paths = self.ca_paths.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if ca_paths.len() >= 1024 && !ca_paths.contains_key(&ca_key) {
                // Far more CA paths than any trust configuration has: something odd is being
                // fed in; start over rather than grow.
                ca_paths.clear();
            }
            ca_paths.entry(ca_key).or_insert_with(|| Arc::new(ca)).clone()
        };
        let path = VerifiedPath { ca, facts, valid_from, valid_until };
        self.paths.insert(leaf, path.clone());
        path
    }

    pub fn stats(&self) -> PathCacheStats {
        PathCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.paths.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> CaPath {
        CaPath {
            certificates: Vec::new(),
            subjects: Arc::from(vec!["CN=CA".to_string()]),
            described: Arc::default(),
            static_problems: Vec::new(),
        }
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn a_path_is_found_only_inside_its_window() {
        let cache = PathCache::new(8);
        let leaf = fingerprint(&[b"leaf"]);
        cache.insert(leaf, fingerprint(&[b"ca"]), ca(), PathFacts::default(), at(100), at(200));
        assert!(cache.get(&leaf, at(100)).is_some());
        assert!(cache.get(&leaf, at(200)).is_some());
        assert!(cache.get(&leaf, at(99)).is_none());
        assert!(cache.get(&leaf, at(201)).is_none());
        assert!(cache.get(&fingerprint(&[b"other"]), at(150)).is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 3, 1));
    }

    #[test]
    fn leaves_of_one_ca_share_its_path() {
        let cache = PathCache::new(8);
        let a = cache.insert(fingerprint(&[b"a"]), fingerprint(&[b"ca"]), ca(), PathFacts::default(), at(0), at(10));
        let b = cache.insert(fingerprint(&[b"b"]), fingerprint(&[b"ca"]), ca(), PathFacts::default(), at(0), at(10));
        assert!(Arc::ptr_eq(&a.ca, &b.ca));
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_what_is_used() {
        let cache = PathCache::new(4);
        let key = |i: u32| fingerprint(&[&i.to_be_bytes()]);
        for i in 0..2 {
            cache.insert(key(i), fingerprint(&[b"ca"]), ca(), PathFacts::default(), at(0), at(10));
        }
        for i in 2..100 {
            // Key 0 is used all the time, so it survives every generation change.
            assert!(cache.get(&key(0), at(5)).is_some(), "key 0 lost at {i}");
            cache.insert(key(i), fingerprint(&[b"ca"]), ca(), PathFacts::default(), at(0), at(10));
            assert!(cache.stats().entries <= 4);
        }
        assert!(cache.get(&key(1), at(5)).is_none(), "an unused entry is evicted");
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let cache = PathCache::new(0);
        let leaf = fingerprint(&[b"leaf"]);
        cache.insert(leaf, fingerprint(&[b"ca"]), ca(), PathFacts::default(), at(0), at(10));
        assert!(cache.get(&leaf, at(5)).is_none());
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn fingerprints_keep_parts_apart() {
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"certificate");
        assert_eq!(fingerprint(&[b"certificate"]).as_slice(), sha256.as_ref(), "one certificate: its SHA-256");
    }
}
