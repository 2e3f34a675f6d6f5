//! PKCS#11 token access against SoftHSM2, checked with the real `pkcs11-tool` and `openssl`.

mod support;

use std::str::FromStr;

use aws_lc_rs::signature::{
    UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
    RSA_PKCS1_2048_8192_SHA256,
};
use ca_core::signer::{SignatureAlgorithm, Signer, SignerError};
use hsm::pkcs11::{
    CertificateCategory, KeySelector, PinState, Pkcs11Module, SecretPin, Token, TokenError, TokenKey, TokenKeyType,
    TokenObjectClass, TokenSelector,
};
use hsm::KeyAlgorithm;
use support::softhsm::{fresh_token, openssl, pkcs11_tool, TestToken, MODULE};
use x509_cert::name::Name;

fn open(test: &TestToken) -> (Pkcs11Module, Token) {
    let module = Pkcs11Module::load(MODULE).unwrap();
    let token = module.open_token(&TokenSelector::Label(test.label.clone())).unwrap();
    (module, token)
}

fn logged_in(test: &TestToken) -> (Pkcs11Module, Token) {
    let (module, token) = open(test);
    token.login(&test.secret_pin()).unwrap();
    (module, token)
}

fn verification(alg: SignatureAlgorithm) -> &'static dyn VerificationAlgorithm {
    match alg {
        SignatureAlgorithm::RsaPkcs1Sha256 => &RSA_PKCS1_2048_8192_SHA256,
        SignatureAlgorithm::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1,
        SignatureAlgorithm::EcdsaP384Sha384 => &ECDSA_P384_SHA384_ASN1,
    }
}

fn assert_verifies(key: &dyn Signer, message: &[u8], signature: &[u8]) {
    let raw = key.public_key().subject_public_key.as_bytes().unwrap();
    let public = UnparsedPublicKey::new(verification(key.algorithm()), raw);
    public.verify(message, signature).unwrap();
    assert!(public.verify(b"some other message", signature).is_err());
}

#[test]
fn lists_slots_and_tokens() {
    let test = fresh_token("list-me");
    let module = Pkcs11Module::load(MODULE).unwrap();
    let info = module.info().unwrap();
    assert_eq!(info.manufacturer, "SoftHSM");
    let slots = module.slots().unwrap();
    let token = slots.iter().find_map(|s| s.token.as_ref().filter(|t| t.label == "list-me")).unwrap();
    assert!(token.initialized && token.login_required);
    assert_eq!(token.manufacturer, "SoftHSM project");
    assert_eq!(token.model, "SoftHSM v2");
    assert_eq!(token.serial.len(), 16);
    assert_eq!(token.pin, PinState::Ok);
    // SoftHSM always offers one more, uninitialised token.
    assert!(slots.iter().any(|s| s.token.as_ref().is_some_and(|t| !t.initialized)));
    assert!(module.tokens().unwrap().iter().any(|t| t.label == "list-me"));
    // Opening by serial number finds the same token.
    let by_serial = module.open_token(&TokenSelector::Serial(token.serial.clone())).unwrap();
    assert_eq!(by_serial.opened_as().label, "list-me");
    drop(test);
}

#[test]
fn missing_module_absent_token_and_non_module_are_told_apart() {
    let test = fresh_token("present");
    let err = Pkcs11Module::load("/nonexistent/libvendor-pkcs11.so").unwrap_err();
    assert!(matches!(err, TokenError::ModuleNotFound(_)), "{err}");
    assert!(err.to_string().contains("not found"));
    let err = Pkcs11Module::load("/etc/hostname").unwrap_err();
    assert!(matches!(err, TokenError::NotAModule { .. }), "{err}");

    let module = Pkcs11Module::load(MODULE).unwrap();
    let err = module.open_token(&TokenSelector::Label("not-in-the-reader".into())).unwrap_err();
    assert!(matches!(err, TokenError::TokenAbsent(_)), "{err}");
    assert!(matches!(SignerError::from(err), SignerError::KeyUnavailable(_)));
    drop(test);
}

#[test]
fn wrong_pin_is_refused_without_the_pin_in_the_message_then_the_right_one_works() {
    let test = fresh_token("pin-test");
    let (_module, token) = open(&test);
    let wrong = SecretPin::from("999999-secret".to_owned());
    let err = token.login(&wrong).unwrap_err();
    let TokenError::WrongPin { tries } = &err else { panic!("expected a wrong-PIN error, got {err}") };
    let message = format!("{err} {err:?} {tries:?}");
    assert!(!message.contains("999999") && !message.contains(&test.pin), "{message}");
    // SoftHSM raises CKF_USER_PIN_COUNT_LOW after a wrong PIN, and the message says so.
    assert_eq!(token.description().unwrap().pin, PinState::CountLow);
    assert!(err.to_string().contains("few tries left"), "{err}");
    assert!(!token.is_logged_in().unwrap());

    token.login(&test.secret_pin()).unwrap();
    assert!(token.is_logged_in().unwrap());
    assert_eq!(token.description().unwrap().pin, PinState::Ok);
    // Logging in twice is not an error.
    token.login(&test.secret_pin()).unwrap();
    token.logout().unwrap();
    assert!(!token.is_logged_in().unwrap());
}

/// SoftHSM 2.6 keeps no retry counter: it never locks the user PIN (CKR_PIN_LOCKED and
/// CKF_USER_PIN_LOCKED never appear), it only raises CKF_USER_PIN_COUNT_LOW after a wrong PIN
/// and clears it on success. The mapping of CKR_PIN_LOCKED itself is unit-tested in
/// `pkcs11::error`.
#[test]
fn softhsm_never_locks_the_pin() {
    let test = fresh_token("no-lock");
    let (_module, token) = open(&test);
    let wrong = SecretPin::from("0000".to_owned());
    for _ in 0..12 {
        let err = token.login(&wrong).unwrap_err();
        assert!(matches!(err, TokenError::WrongPin { .. }), "{err}");
    }
    assert_eq!(token.description().unwrap().pin, PinState::CountLow);
    token.login(&test.secret_pin()).unwrap();
}

#[test]
fn generated_keys_carry_the_ski_as_id_and_are_not_extractable() {
    let test = fresh_token("keygen");
    let (_module, token) = logged_in(&test);
    let rsa = token.generate_key_pair(KeyAlgorithm::Rsa2048, "AUTH key").unwrap();
    let ec = token.generate_key_pair(KeyAlgorithm::P256, "SIGN key").unwrap();
    for key in [&rsa, &ec] {
        assert_eq!(key.id(), ca_core::profile::key_identifier(key.public_key()));
        assert_eq!(key.id().len(), 20);
    }
    assert_eq!(rsa.algorithm(), SignatureAlgorithm::RsaPkcs1Sha256);
    assert_eq!(ec.algorithm(), SignatureAlgorithm::EcdsaP256Sha256);
    assert!(!format!("{rsa:?}").contains("private"));

    let objects = token.list_objects().unwrap();
    assert_eq!(objects.len(), 4);
    for key in [&rsa, &ec] {
        let halves: Vec<_> = objects.iter().filter(|o| o.id == key.id()).collect();
        assert_eq!(halves.len(), 2);
        let private = halves.iter().find(|o| o.class == TokenObjectClass::PrivateKey).unwrap();
        let flags = private.private_key.unwrap();
        assert_eq!(flags.extractable, Some(false));
        assert_eq!(flags.never_extractable, Some(true));
        assert_eq!(flags.sensitive, Some(true));
        assert_eq!(flags.always_sensitive, Some(true));
        assert_eq!(flags.local, Some(true));
        assert_eq!(flags.sign, Some(true));
        assert_eq!(flags.decrypt, Some(false));
        assert_eq!(flags.unwrap, Some(false));
        assert!(halves.iter().any(|o| o.class == TokenObjectClass::PublicKey));
        assert!(halves.iter().all(|o| o.label == key.label()));
    }
    let key_types: Vec<_> = objects.iter().filter_map(|o| o.key_type).collect();
    assert_eq!(key_types.iter().filter(|t| **t == TokenKeyType::Rsa).count(), 2);
    assert_eq!(key_types.iter().filter(|t| **t == TokenKeyType::Ec).count(), 2);

    // OpenSC sees the same objects with the same IDs.
    let listing = pkcs11_tool(&test, &["--login", "--pin", &test.pin, "--list-objects"]);
    for key in [&rsa, &ec] {
        let id_lines = listing.lines().filter(|l| l.trim() == format!("ID:         {}", hex::encode(key.id())));
        assert_eq!(id_lines.count(), 2, "{listing}");
    }
    assert_eq!(listing.matches("Private Key Object").count(), 2, "{listing}");
    assert_eq!(listing.matches("Public Key Object").count(), 2, "{listing}");
    assert!(listing.contains("label:      AUTH key") && listing.contains("label:      SIGN key"), "{listing}");
    // pkcs11-tool's own key pairs show "Usage: decrypt, sign, unwrap, derive"; ours sign only.
    assert!(!listing.contains("decrypt"), "no private key may decrypt:\n{listing}");
    assert!(!listing.contains("wrap") && !listing.contains("encrypt"), "{listing}");
    assert_eq!(listing.matches("Usage:      sign").count(), 2, "{listing}");
    assert_eq!(listing.matches("never extractable").count(), 2, "{listing}");
}

fn sign_and_check(key: &TokenKey, dir: &std::path::Path) {
    let message = b"CertificationRequestInfo stand-in";
    let signature = key.sign(message).unwrap();
    assert_verifies(key, message, &signature);

    let csr = ca_core::csr::build_csr(Name::from_str("CN=Token Test,O=National CA").unwrap(), key).unwrap();
    let verified = ca_core::csr::parse_and_verify(&csr).unwrap();
    assert_eq!(&verified.public_key, key.public_key());
    let path = dir.join(format!("{}.csr.der", key.key_algorithm()));
    std::fs::write(&path, &csr).unwrap();
    let out = openssl(&["req", "-verify", "-noout", "-inform", "DER", "-in", path.to_str().unwrap()]);
    assert!(out.contains("verify OK"), "{out}");
}

#[test]
fn token_signatures_verify_and_csrs_pass_our_and_openssls_checks() {
    let test = fresh_token("signing");
    let (_module, token) = logged_in(&test);
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa3072, KeyAlgorithm::P256, KeyAlgorithm::P384] {
        let key = token.generate_key_pair(alg, &format!("{alg} key")).unwrap();
        assert_eq!(key.key_algorithm(), alg);
        sign_and_check(&key, test.dir.path());
    }
}

#[test]
fn rsa_4096_generates_on_the_token() {
    let test = fresh_token("rsa4096");
    let (_module, token) = logged_in(&test);
    let key = token.generate_key_pair(KeyAlgorithm::Rsa4096, "big").unwrap();
    assert_eq!(key.sign(b"m").unwrap().len(), 512);
    sign_and_check(&key, test.dir.path());
}

#[test]
fn keys_are_found_again_by_id_and_label() {
    let test = fresh_token("find");
    let (module, token) = logged_in(&test);
    let made = token.generate_key_pair(KeyAlgorithm::P256, "counter key").unwrap();
    let id = made.id().to_vec();
    drop(made);
    drop(token);
    // A fresh token handle (a later run of the CLI) finds the key by its SKI.
    let token = module.open_token(&TokenSelector::Label(test.label.clone())).unwrap();
    token.login(&test.secret_pin()).unwrap();
    let by_id = token.find_key(&KeySelector::Id(id.clone())).unwrap();
    assert_eq!(by_id.id(), id);
    assert_eq!(by_id.label(), "counter key");
    assert_eq!(by_id.key_algorithm(), KeyAlgorithm::P256);
    let by_label = token.find_key(&KeySelector::Label("counter key".into())).unwrap();
    assert_eq!(by_label.public_key(), by_id.public_key());
    assert_verifies(&by_label, b"x", &by_label.sign(b"x").unwrap());

    let missing = token.find_key(&KeySelector::Label("nobody".into())).unwrap_err();
    assert!(matches!(missing, TokenError::KeyNotFound(_)), "{missing}");
    token.generate_key_pair(KeyAlgorithm::P256, "counter key").unwrap();
    let twice = token.find_key(&KeySelector::Label("counter key".into())).unwrap_err();
    assert!(matches!(twice, TokenError::AmbiguousKey(2, _)), "{twice}");

    // Private keys are invisible without a login.
    token.logout().unwrap();
    assert!(matches!(token.find_key(&KeySelector::Id(id)), Err(TokenError::KeyNotFound(_))));
    assert!(matches!(token.generate_key_pair(KeyAlgorithm::P256, "x"), Err(TokenError::NotLoggedIn)));
}

#[test]
fn certificates_are_written_read_back_and_verified_by_openssl() {
    let test = fresh_token("certs");
    let dir = test.dir.path();
    let (_module, token) = logged_in(&test);
    let key = token.generate_key_pair(KeyAlgorithm::P256, "SIGN").unwrap();
    let csr = ca_core::csr::build_csr(Name::from_str("CN=Card Holder").unwrap(), &key).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    std::fs::write(p("card.csr"), &csr).unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
        "-subj",
        "/CN=Test Issuing CA",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-inform",
        "DER",
        "-in",
        &p("card.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-set_serial",
        "4242",
        "-days",
        "30",
        "-outform",
        "DER",
        "-out",
        &p("card.der"),
    ]);
    openssl(&["x509", "-in", &p("ca.pem"), "-outform", "DER", "-out", &p("ca.der")]);
    let card_der = std::fs::read(p("card.der")).unwrap();
    let ca_der = std::fs::read(p("ca.der")).unwrap();

    let id = token.write_certificate(&card_der, "SIGN", CertificateCategory::TokenUser).unwrap();
    assert_eq!(id, key.id(), "the certificate pairs with its key by CKA_ID");
    let ca_id = token.write_certificate(&ca_der, "Test Issuing CA", CertificateCategory::Authority).unwrap();
    // Writing again (a re-run) does not duplicate it.
    token.write_certificate(&card_der, "SIGN", CertificateCategory::TokenUser).unwrap();

    let objects = token.list_objects().unwrap();
    let certificates: Vec<_> = objects.iter().filter(|o| o.class == TokenObjectClass::Certificate).collect();
    assert_eq!(certificates.len(), 2);
    let card = certificates.iter().find(|o| o.id == id).unwrap();
    assert_eq!(card.certificate_der.as_deref(), Some(card_der.as_slice()));
    let ca = certificates.iter().find(|o| o.id == ca_id).unwrap();
    assert_eq!(ca.label, "Test Issuing CA");

    std::fs::write(p("back.der"), card.certificate_der.as_ref().unwrap()).unwrap();
    openssl(&["x509", "-inform", "DER", "-in", &p("back.der"), "-out", &p("back.pem")]);
    let out = openssl(&["verify", "-CAfile", &p("ca.pem"), &p("back.pem")]);
    assert!(out.contains("OK"), "{out}");

    let listing = pkcs11_tool(&test, &["--list-objects", "--type", "cert"]);
    assert!(listing.contains(&format!("ID:         {}", hex::encode(&id))), "{listing}");
    assert!(listing.contains("label:      SIGN"), "{listing}");

    // Private key, public key and certificate share the ID.
    let linked = token.list_objects().unwrap().into_iter().filter(|o| o.id == id).count();
    assert_eq!(linked, 3);
}

#[test]
fn deleting_by_id_removes_the_pair_and_its_certificate() {
    let test = fresh_token("delete");
    let (_module, token) = logged_in(&test);
    let keep = token.generate_key_pair(KeyAlgorithm::P256, "keep").unwrap();
    let dangling = token.generate_key_pair(KeyAlgorithm::Rsa2048, "half-personalized").unwrap();
    let id = dangling.id().to_vec();
    drop(dangling);
    assert_eq!(token.delete_objects_by_id(&id).unwrap(), 2);
    assert_eq!(token.delete_objects_by_id(&id).unwrap(), 0);
    assert!(matches!(token.find_key(&KeySelector::Id(id)), Err(TokenError::KeyNotFound(_))));
    let left = token.list_objects().unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|o| o.id == keep.id()));
    // The surviving key still signs.
    assert_verifies(&keep, b"m", &keep.sign(b"m").unwrap());
}

#[test]
fn replace_id_relinks_a_pair() {
    let test = fresh_token("relink");
    let (_module, token) = logged_in(&test);
    let key = token.generate_key_pair(KeyAlgorithm::P256, "k").unwrap();
    assert_eq!(token.replace_id(key.id(), b"\x01\x02").unwrap(), 2);
    let found = token.find_key(&KeySelector::Id(vec![1, 2])).unwrap();
    assert_eq!(found.public_key(), key.public_key());
}

#[test]
fn four_threads_sign_concurrently() {
    let test = fresh_token("threads");
    let (_module, token) = logged_in(&test);
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        let key = token.generate_key_pair(alg, "shared").unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4u8 {
                let key = &key;
                scope.spawn(move || {
                    for i in 0..20u8 {
                        let message = [thread, i];
                        let signature = key.sign(&message).unwrap();
                        assert_verifies(key, &message, &signature);
                    }
                });
            }
        });
    }
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TokenKey>();
    assert_send_sync::<Token>();
}

/// SoftHSM has no removable slots, so "pulling the card" is simulated by deleting the token's
/// storage under a logged-in session. SoftHSM then answers CKR_OBJECT_HANDLE_INVALID to
/// C_SignInit and CKR_GENERAL_ERROR elsewhere (a real reader gives CKR_DEVICE_REMOVED,
/// CKR_TOKEN_NOT_PRESENT or CKR_SESSION_HANDLE_INVALID, mapped in `pkcs11::error`). Either way
/// the signer reports the key unavailable, never a signature and never a panic.
#[test]
fn token_storage_vanishing_mid_operation_is_reported() {
    let test = fresh_token("removed");
    let (_module, token) = logged_in(&test);
    let key = token.generate_key_pair(KeyAlgorithm::P256, "k").unwrap();
    key.sign(b"before").unwrap();
    std::fs::remove_dir_all(test.dir.path().join("tokens")).unwrap();
    let err = key.sign(b"after").unwrap_err();
    assert!(matches!(err, SignerError::KeyUnavailable(_)), "{err}");
    assert!(err.to_string().contains("no longer on the token"), "{err}");
    assert!(token.generate_key_pair(KeyAlgorithm::P256, "k2").is_err());
    assert!(token.description().is_err());
}
