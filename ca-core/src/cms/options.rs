//! What a relying party chooses for one verification beyond the validation time and the
//! signer requirements: how much revocation it demands, extra certificates and revocation
//! evidence it sends, and its RFC 5280 §6.1.1 inputs. The trust anchors stay the verifier's.

use std::sync::Arc;

use const_oid::ObjectIdentifier;

use crate::pkix::{OcspResponse, PkixCert, PkixCrl, RevocationPolicy, ValidationSettings, ANY_POLICY};

/// Per-verification path validation inputs. The default is what a relying party that says
/// nothing gets: revocation required for every certificate of the path, any policy, no extra
/// constraint.
#[derive(Clone, Debug, Default)]
pub struct PathOptions {
    /// `require` (default): every certificate of the path must have a current status, or the
    /// answer is `valid: false` with `RevocationUnavailable`; `prefer`: a missing status is a
    /// note; `none`: no status is asked.
    pub revocation: RevocationPolicy,
    /// Candidate intermediate certificates sent with the request.
    pub intermediates: Vec<Arc<PkixCert>>,
    /// CRLs sent with the request (full, delta or indirect; checked by RFC 5280 §6.3).
    pub crls: Vec<Arc<PkixCrl>>,
    /// OCSP responses sent with the request (RFC 6960; signed by the certificate's issuer or
    /// a responder it delegated to), asked before the CRLs.
    pub ocsp_responses: Vec<Arc<OcspResponse>>,
    /// user-initial-policy-set; `None` is `{anyPolicy}`.
    pub initial_policy_set: Option<Vec<ObjectIdentifier>>,
    pub initial_explicit_policy: bool,
    pub initial_policy_mapping_inhibit: bool,
    pub initial_inhibit_any_policy: bool,
    /// extendedKeyUsage purposes the certificate must allow.
    pub required_eku: Vec<ObjectIdentifier>,
    /// Most intermediate certificates the path may have.
    pub max_intermediates: Option<usize>,
    /// CA-side profile findings fail the path instead of being reported.
    pub strict: bool,
}

impl PathOptions {
    /// Whether these options can change which path is valid (so a remembered path, found
    /// with the defaults, does not answer for them).
    pub(crate) fn constrain_path(&self) -> bool {
        !self.intermediates.is_empty()
            || self.initial_policy_set.as_ref().is_some_and(|p| p.as_slice() != [ANY_POLICY])
            || self.initial_explicit_policy
            || self.initial_policy_mapping_inhibit
            || self.initial_inhibit_any_policy
            || !self.required_eku.is_empty()
            || self.max_intermediates.is_some()
            || self.strict
    }

    /// The engine's settings at `at` (revocation is asked separately, see
    /// [`crate::cms::verify_certificate`]).
    pub(crate) fn settings(
        &self,
        at: time::OffsetDateTime,
        algorithms: &crate::pkix::AlgorithmPolicy,
    ) -> ValidationSettings {
        let mut s = ValidationSettings::at(at);
        if let Some(set) = &self.initial_policy_set {
            s.initial_policy_set = set.clone();
        }
        s.initial_explicit_policy = self.initial_explicit_policy;
        s.initial_policy_mapping_inhibit = self.initial_policy_mapping_inhibit;
        s.initial_inhibit_any_policy = self.initial_inhibit_any_policy;
        s.required_eku = self.required_eku.clone();
        s.max_intermediates = self.max_intermediates;
        s.strict = self.strict;
        s.revocation = self.revocation;
        s.algorithms = algorithms.clone();
        s
    }

    /// The options for a certificate checked on the way (a time-stamping authority's): the
    /// same revocation demand and evidence, none of the relying party's constraints on its
    /// own path.
    pub(crate) fn for_other_certificates(&self) -> Self {
        Self {
            revocation: self.revocation,
            intermediates: self.intermediates.clone(),
            crls: self.crls.clone(),
            ocsp_responses: self.ocsp_responses.clone(),
            ..Self::default()
        }
    }
}
