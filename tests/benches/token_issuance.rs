//! Issuance with the issuing CA key in a PKCS#11 token (SoftHSM2), next to the raw signing rate
//! of the same token key measured in the same run; and the time of one full card
//! personalization. Run: `cargo bench -p ca-tests --bench token_issuance [-- seconds]`.

use std::time::{Duration, Instant};

use ca_core::card::{personalize, CardKeyKind, CardRequest};
use ca_core::clock::SystemClock;
use ca_core::identity::Subject;
use ca_core::issuer::{CertificateAuthority, IssuanceRequest, Issuer};
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use fixtures::{individual, TestCa};
use hsm::pkcs11::{Pkcs11Module, SecretPin, TokenSelector};
use hsm::{KeyAlgorithm, SoftwareKey};

use ca_tests::SOFTHSM_MODULE as MODULE;

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let tmp = tempfile::tempdir().unwrap();
    let conf = ca_tests::softhsm_tokens(tmp.path(), &["HSM", "CARD"], "1234");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let module = Pkcs11Module::load(MODULE).unwrap();
    let hsm = module.open_token(&TokenSelector::Label("HSM".into())).unwrap();
    hsm.login(&SecretPin::from("1234".to_owned())).unwrap();

    println!("token issuance benchmark (SoftHSM2), {seconds} s per measurement, one signing thread");
    println!("{:<10} {:>14} {:>16} {:>8}", "CA key", "raw signs/s", "issued certs/s", "ratio");
    let subject_keys: Vec<_> =
        (0..32).map(|_| SoftwareKey::generate(KeyAlgorithm::P256).unwrap().public_key().clone()).collect();
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        // Root in software, issuing CA key on the token, as a deployment with an HSM would have.
        let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
        let key = hsm.generate_key_pair(alg, &format!("issuing {alg}")).unwrap();
        let clock = SystemClock;
        let cert = ca
            .root
            .create_subordinate(
                Subject::Service { common_name: format!("HSM CA {alg}"), organisation: None },
                key.public_key().clone(),
                time::Duration::days(365 * 3),
                &ca.store,
                &clock,
                &ca.urls,
                "bench",
                ca_core::profile::CaPolicies::default(),
            )
            .unwrap();
        let tbs = vec![0x30u8; 900];
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            key.sign(&tbs).unwrap();
            n += 1;
        }
        let raw = n as f64 / start.elapsed().as_secs_f64();
        let authority = CertificateAuthority::new("hsm", cert.der, Box::new(key)).unwrap();
        let issuer = Issuer {
            ca: &authority,
            store: &ca.store,
            clock: &clock,
            urls: &ca.urls,
            validity: time::Duration::days(365),
            actor: "bench",
            crl_partitions: None,
        };
        let mut i = 0u32;
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let batches = std::iter::from_fn(|| {
            let batch: Vec<IssuanceRequest> = (0..64)
                .map(|_| {
                    i += 1;
                    IssuanceRequest {
                        profile: ProfileId::IndividualSign,
                        subject: individual(i % 500),
                        roles: vec![],
                        public_key: subject_keys[i as usize % subject_keys.len()].clone(),
                    }
                })
                .collect();
            Some(batch)
        });
        let start = Instant::now();
        let mut issued = 0usize;
        issuer.issue_pipelined(batches.take_while(|_| Instant::now() < deadline), |b| issued += b.len()).unwrap();
        let rate = issued as f64 / start.elapsed().as_secs_f64();
        println!("{:<10} {:>14.0} {:>16.0} {:>8.2}", alg.to_string(), raw, rate, rate / raw);
    }

    // One full card personalization: two RSA-2048 key pairs generated on the card, two CSRs
    // signed on it, two certificates issued (software CA) and written with the chain.
    let card = module.open_token(&TokenSelector::Label("CARD".into())).unwrap();
    card.login(&SecretPin::from("1234".to_owned())).unwrap();
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let clock = SystemClock;
    let issuer = ca.issuer(&clock);
    let chain = vec![ca.issuing.certificate_der.clone(), ca.root.certificate_der.clone()];
    let start = Instant::now();
    let done = personalize(
        &card,
        &issuer,
        &CardRequest { subject: individual(7), roles: vec![], key_kind: CardKeyKind::Rsa2048 },
        &chain,
    )
    .unwrap();
    println!(
        "card personalization (RSA-2048 keys on the card, {} certificates + chain): {:.2} s (regulation budget for the write step: 240 s)",
        done.len(),
        start.elapsed().as_secs_f64()
    );
}
