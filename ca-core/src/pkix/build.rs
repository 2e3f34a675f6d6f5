//! Path building (RFC 4158 in its simple form): every chain of issuer names from the target to
//! a trust anchor through the candidate certificates, most plausible first (a matching key
//! identifier, then anchors before intermediates). Bounded in depth and number of paths, so
//! a request full of cross-certificates cannot make the server walk forever.

use std::sync::Arc;

use super::cert::PkixCert;
use super::name::names_equal;

/// Longest path considered (certificates below the anchor).
const MAX_DEPTH: usize = 12;
/// Most candidate paths tried for one target.
pub const MAX_PATHS: usize = 32;

/// Candidate paths: target first, a trust anchor last.
pub fn candidate_paths(
    target: &Arc<PkixCert>,
    anchors: &[Arc<PkixCert>],
    pool: &[Arc<PkixCert>],
) -> Vec<Vec<Arc<PkixCert>>> {
    let mut out = Vec::new();
    let mut path = vec![target.clone()];
    extend(&mut path, anchors, pool, &mut out);
    out
}

fn plausible(child: &PkixCert, issuer: &PkixCert) -> u8 {
    match (&child.ext.authority_key_id, &issuer.ext.subject_key_id) {
        (Some(a), Some(s)) if a == s => 0,
        (Some(_), Some(_)) => 2,
        _ => 1,
    }
}

fn extend(
    path: &mut Vec<Arc<PkixCert>>,
    anchors: &[Arc<PkixCert>],
    pool: &[Arc<PkixCert>],
    out: &mut Vec<Vec<Arc<PkixCert>>>,
) {
    if out.len() >= MAX_PATHS || path.len() > MAX_DEPTH {
        return;
    }
    let last = path.last().cloned().expect("a path starts with the target");
    let mut issuers: Vec<(u8, bool, Arc<PkixCert>)> = Vec::new();
    for a in anchors {
        if names_equal(a.subject(), last.issuer()) {
            issuers.push((plausible(&last, a), true, a.clone()));
        }
    }
    for c in pool {
        // A certificate may appear once in a path; a self-signed certificate in the pool can
        // only be an anchor, which it is not.
        if path.iter().any(|p| p.fingerprint == c.fingerprint)
            || anchors.iter().any(|a| a.fingerprint == c.fingerprint)
            || !names_equal(c.subject(), last.issuer())
        {
            continue;
        }
        issuers.push((plausible(&last, c), false, c.clone()));
    }
    issuers.sort_by_key(|(rank, is_anchor, _)| (*rank, !*is_anchor));
    for (_, is_anchor, issuer) in issuers {
        path.push(issuer);
        if is_anchor {
            out.push(path.clone());
        } else {
            extend(path, anchors, pool, out);
        }
        path.pop();
        if out.len() >= MAX_PATHS {
            return;
        }
    }
}
