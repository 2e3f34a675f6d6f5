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
