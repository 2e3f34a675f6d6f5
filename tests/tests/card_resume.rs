//! A card that fails between key generation and the certificate write: the run reports what was
//! issued but not written, and a re-run with the same card completes without issuing again and
//! without leaving a second key pair behind.

use std::sync::atomic::{AtomicBool, Ordering};

use ca_core::card::{personalize, CardError, CardKeyKind, CardRequest, CardToken};
use ca_core::signer::Signer;
use ca_core::store::{CertificateQuery, Store};
use fixtures::{fixed_now, individual, TestCa};
use hsm::pkcs11::{Pkcs11Module, SecretPin, Token, TokenSelector};
use hsm::KeyAlgorithm;

use ca_tests::SOFTHSM_MODULE as MODULE;

/// A real token whose certificate writes fail while `broken` is set (the card pulled out).
struct FlakyCard {
    token: Token,
    broken: AtomicBool,
}

impl CardToken for FlakyCard {
    fn find_key(&self, label: &str) -> Result<Option<Box<dyn Signer>>, CardError> {
        CardToken::find_key(&self.token, label)
    }
    fn generate_key(&self, kind: CardKeyKind, label: &str) -> Result<Box<dyn Signer>, CardError> {
        CardToken::generate_key(&self.token, kind, label)
    }
    fn write_certificate(&self, der: &[u8], label: &str, authority: bool) -> Result<(), CardError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(CardError::Removed("card removed from the reader (injected)".into()));
        }
        CardToken::write_certificate(&self.token, der, label, authority)
    }
    fn certificates(&self) -> Result<Vec<Vec<u8>>, CardError> {
        CardToken::certificates(&self.token)
    }
}

#[test]
fn an_interrupted_personalization_is_reported_and_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = ca_tests::softhsm_tokens(tmp.path(), &["SIM"], "1357");
    // The only test in this binary that loads SoftHSM, so setting the variable is race-free.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let module = Pkcs11Module::load(MODULE).unwrap();
    let token = module.open_token(&TokenSelector::Label("SIM".into())).unwrap();
    token.login(&SecretPin::from("1357".to_owned())).unwrap();
    let card = FlakyCard { token, broken: AtomicBool::new(true) };

    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let issuer = ca.issuer(&clock);
    let subject = individual(21);
    let request = CardRequest { subject: subject.clone(), roles: vec![], key_kind: CardKeyKind::P256 };
    let chain = vec![ca.issuing.certificate_der.clone(), ca.root.certificate_der.clone()];
    let issued =
        |store: &dyn Store| store.find(&CertificateQuery { iin: subject.iin(), ..Default::default() }).unwrap().len();

    let failure = personalize(&card, &issuer, &request, &chain).expect_err("the card is out");
    assert_eq!(failure.step, "writing the certificate to the card");
    assert_eq!(failure.issued_not_on_card.len(), 1, "the operator is told which certificate is not on the card");
    assert!(failure.to_string().contains(&failure.issued_not_on_card[0].to_hex()));
    assert_eq!(issued(&ca.store), 1);

    // Card back in: the re-run picks up the key and the issued certificate.
    card.broken.store(false, Ordering::SeqCst);
    let done = personalize(&card, &issuer, &request, &chain).unwrap();
    assert_eq!(done.len(), 2);
    assert!(done[0].key_resumed && done[0].certificate_resumed, "{done:?}");
    assert_eq!(done[0].serial, failure.issued_not_on_card[0]);
    assert!(!done[1].key_resumed);
    assert_eq!(issued(&ca.store), 2, "nothing issued twice");
    let objects = card.token.list_objects().unwrap();
    let private = objects.iter().filter(|o| o.private_key.is_some()).count();
    assert_eq!(private, 2, "no dangling key pair");
    assert_eq!(objects.iter().filter(|o| o.certificate_der.is_some()).count(), 4);
    drop(card);
    drop(module);
}
