//! NIST PKITS v1.0.1 through the RFC 5280 path validation engine: every entry of the manifest
//! (fixtures/pkits), with its CRLs and its §6.1.1 policy inputs, revocation required.

use std::path::PathBuf;
use std::sync::Arc;

use ca_core::pkix::{
    validate_path, AlgorithmPolicy, Environment, PkixCert, PkixCrl, RevocationPolicy, ValidationSettings, ANY_POLICY,
};
use const_oid::ObjectIdentifier;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Entries where our answer differs from the manifest, each with the RFC text that makes ours
/// defensible. Empty: every entry passes.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pkits")
}

fn policy(name: &str) -> ObjectIdentifier {
    match name {
        "anyPolicy" => ANY_POLICY,
        other => {
            let n = other.strip_prefix("NIST-test-policy-").expect("a NIST test policy");
            ObjectIdentifier::new(&format!("2.16.840.1.101.3.2.1.48.{n}")).expect("policy OID")
        }
    }
}

/// The PKITS data uses DSA-1024 with SHA-1 (4.1.4, 4.1.5) at a 2011 validation time: the
/// historical-document exception, which a relying party opts into.
pub fn pkits_algorithms() -> AlgorithmPolicy {
    AlgorithmPolicy {
        min_rsa_bits: 1024,
        allow_dsa: true,
        sha1_accepted_before: Some(time::macros::datetime!(2012-01-01 0:00 UTC)),
    }
}

struct Outcome {
    id: String,
    expected_valid: bool,
    valid: bool,
    detail: String,
    policies_match: bool,
}

fn run() -> Vec<Outcome> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir().join("manifest.json")).expect("manifest")).expect("json");
    let at = OffsetDateTime::parse(manifest["validation_time"].as_str().unwrap(), &Rfc3339).unwrap();
    let mut out = Vec::new();
    for test in manifest["tests"].as_array().unwrap() {
        let names = |key: &str| -> Vec<String> {
            test[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
        };
        let certs: Vec<Arc<PkixCert>> = names("certs")
            .iter()
            .map(|n| {
                Arc::new(PkixCert::from_der(&std::fs::read(dir().join(format!("certs/{n}.crt"))).unwrap()).unwrap())
            })
            .collect();
        let crls: Vec<Arc<PkixCrl>> = names("crls")
            .iter()
            .map(|n| Arc::new(PkixCrl::from_der(&std::fs::read(dir().join(format!("crls/{n}.crl"))).unwrap()).unwrap()))
            .collect();
        let settings_json = &test["settings"];
        let mut settings = ValidationSettings::at(at);
        settings.initial_policy_set = settings_json["initial_policy_set"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| policy(p.as_str().unwrap()))
            .collect();
        settings.initial_explicit_policy = settings_json["initial_explicit_policy"].as_bool().unwrap();
        settings.initial_policy_mapping_inhibit = settings_json["initial_policy_mapping_inhibit"].as_bool().unwrap();
        settings.initial_inhibit_any_policy = settings_json["initial_inhibit_any_policy"].as_bool().unwrap();
        settings.revocation = RevocationPolicy::Require;
        settings.algorithms = pkits_algorithms();
        let env = Environment {
            anchors: vec![certs[0].clone()],
            certificates: certs[1..certs.len() - 1].to_vec(),
            crls,
            status: Vec::new(),
        };
        let result = validate_path(certs.last().unwrap(), &env, &settings);
        let expected_policies: Vec<ObjectIdentifier> =
            names("user_constrained_policy_set").iter().map(|p| policy(p)).collect();
        let (valid, detail, policies_match) = match &result {
            Ok(path) => {
                let mut got = path.user_constrained_policy_set.clone();
                got.sort();
                let mut want = expected_policies.clone();
                want.sort();
                (true, format!("valid, policies {got:?}"), got == want)
            }
            Err(f) => (false, format!("{:?}: {f}", f.kind), true),
        };
        out.push(Outcome {
            id: test["id"].as_str().unwrap().to_owned(),
            expected_valid: test["expected"] == "VALID",
            valid,
            detail,
            policies_match,
        });
    }
    out
}

#[test]
fn every_pkits_entry_gets_the_expected_answer() {
    let outcomes = run();
    assert_eq!(outcomes.len(), 249, "the manifest has 249 entries");
    let mut wrong = Vec::new();
    for o in &outcomes {
        let known = KNOWN_FAILURES.iter().any(|(id, _)| *id == o.id);
        let right = o.valid == o.expected_valid && o.policies_match;
        if right && known {
            wrong.push(format!("{} now passes: remove it from KNOWN_FAILURES", o.id));
        } else if !right && !known {
            wrong.push(format!(
                "{}: expected {}, got {}",
                o.id,
                if o.expected_valid { "VALID" } else { "INVALID" },
                o.detail
            ));
        }
    }
    let passed = outcomes.iter().filter(|o| o.valid == o.expected_valid && o.policies_match).count();
    println!("PKITS: {passed} of {} entries as expected", outcomes.len());
    assert!(wrong.is_empty(), "{} PKITS entries wrong:\n{}", wrong.len(), wrong.join("\n"));
}

/// One manifest entry's environment, with settings the caller may change.
fn entry(id: &str) -> (Arc<PkixCert>, Environment<'static>, ValidationSettings) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir().join("manifest.json")).unwrap()).unwrap();
    let test = manifest["tests"].as_array().unwrap().iter().find(|t| t["id"] == id).expect("entry");
    let read = |key: &str, sub: &str, ext: &str| -> Vec<Vec<u8>> {
        test[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| std::fs::read(dir().join(format!("{sub}/{}.{ext}", n.as_str().unwrap()))).unwrap())
            .collect()
    };
    let certs: Vec<Arc<PkixCert>> =
        read("certs", "certs", "crt").iter().map(|d| Arc::new(PkixCert::from_der(d).unwrap())).collect();
    let crls = read("crls", "crls", "crl").iter().map(|d| Arc::new(PkixCrl::from_der(d).unwrap())).collect();
    let mut settings = ValidationSettings::at(time::macros::datetime!(2011-04-15 0:00 UTC));
    settings.algorithms = pkits_algorithms();
    let env = Environment {
        anchors: vec![certs[0].clone()],
        certificates: certs[1..certs.len() - 1].to_vec(),
        crls,
        status: Vec::new(),
    };
    (certs.last().unwrap().clone(), env, settings)
}

#[test]
fn a_required_status_that_cannot_be_had_fails_and_prefer_or_none_notes_it() {
    use ca_core::pkix::{CertificateStatus, FailureKind};
    // 4.4.1: the issuing CA published no CRL.
    let (target, env, mut settings) = entry("4.4.1");
    let failure = validate_path(&target, &env, &settings).unwrap_err();
    assert_eq!(failure.kind, FailureKind::RevocationUnavailable);
    assert!(failure.certificate.as_deref().unwrap().contains("Invalid Missing CRL EE"), "{failure}");
    settings.revocation = RevocationPolicy::Prefer;
    let valid = validate_path(&target, &env, &settings).unwrap();
    assert!(matches!(valid.statuses[0], CertificateStatus::NotChecked { .. }));
    assert!(valid.notes.iter().any(|n| n.contains("no current CRL")), "{:?}", valid.notes);
    settings.revocation = RevocationPolicy::None;
    assert!(validate_path(&target, &env, &settings).is_ok());
    // Without any CRL, even the trust anchor's subordinate cannot be checked.
    let (target, mut env, settings) = entry("4.1.1");
    env.crls.clear();
    assert_eq!(validate_path(&target, &env, &settings).unwrap_err().kind, FailureKind::RevocationUnavailable);
}

#[test]
fn crls_without_crl_sign_out_of_scope_or_revoking_only_in_a_delta() {
    use ca_core::pkix::FailureKind;
    for (id, kind) in [
        // The CA's certificate has keyUsage without cRLSign: its CRL is not usable.
        ("4.7.4", FailureKind::RevocationUnavailable),
        // onlyContainsCACerts: out of scope for an end entity.
        ("4.14.12", FailureKind::RevocationUnavailable),
        // Revoked only on the delta CRL.
        ("4.15.4", FailureKind::Revoked),
    ] {
        let (target, env, settings) = entry(id);
        assert_eq!(validate_path(&target, &env, &settings).unwrap_err().kind, kind, "{id}");
    }
    // Without the delta, 4.15.4's end entity is not revoked.
    let (target, mut env, settings) = entry("4.15.4");
    env.crls.retain(|c| env_crl_is_complete(c));
    assert!(validate_path(&target, &env, &settings).is_ok());
}

fn env_crl_is_complete(crl: &PkixCrl) -> bool {
    !crl.crl.tbs_cert_list.crl_extensions.iter().flatten().any(|e| e.extn_id.to_string() == "2.5.29.27")
}

#[test]
fn sha1_signatures_only_before_the_configured_date() {
    use ca_core::pkix::FailureKind;
    // 4.1.4: DSA with SHA-1, validated at 2011-04-15.
    let (target, env, mut settings) = entry("4.1.4");
    let valid = validate_path(&target, &env, &settings).unwrap();
    assert!(valid.notes.iter().any(|n| n.contains("SHA-1 signature accepted")), "{:?}", valid.notes);
    settings.algorithms.sha1_accepted_before = Some(time::macros::datetime!(2011-01-01 0:00 UTC));
    let refused = validate_path(&target, &env, &settings).unwrap_err();
    assert_eq!(refused.kind, FailureKind::Algorithm, "{refused}");
    settings.algorithms.sha1_accepted_before = None;
    assert_eq!(validate_path(&target, &env, &settings).unwrap_err().kind, FailureKind::Algorithm);
}

#[test]
fn a_weak_key_is_refused_naming_the_certificate() {
    use ca_core::pkix::FailureKind;
    // The end entity's own key: RSA-2048 under a 3072-bit floor.
    let (target, env, mut settings) = entry("4.1.1");
    settings.algorithms.min_rsa_bits = 3072;
    let failure = validate_path(&target, &env, &settings).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Algorithm);
    assert!(failure.message.contains("RSA-2048"), "{failure}");
    // A DSA key when DSA is not allowed (the default policy).
    let (target, env, mut settings) = entry("4.1.4");
    settings.algorithms.allow_dsa = false;
    let failure = validate_path(&target, &env, &settings).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Algorithm);
    assert!(failure.certificate.is_some(), "{failure}");
}
