//! A running portal-server for the HTTP tests: a test CA (root + issuing, P-256) whose
//! certificates and CRLs are laid out like a relying party gets them, the synthetic person
//! registry, certificates issued by that CA, and `openssl cms -sign` to make signatures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use ca_core::clock::{Clock, FixedClock};
use ca_core::identity::Subject;
use ca_core::issuer::{IssuanceRequest, IssuedCertificate, Issuer};
use ca_core::profile::{ProfileId, Role};
use ca_core::serial::SerialNumber;
use ca_core::signer::Signer;
use ca_tests::{openssl_ok, write_pem};
use fixtures::TestCa;
use hsm::{KeyAlgorithm, SoftwareKey};
use portal::config::{
    CounterConfig, LoginPolicy, PortalConfig, RegistryConfig, SigningConfig, TrustConfig, WorkstationRule,
};
use portal::http::{serve, AppState};
use portal::login::otp_login::BoundPhones;
use portal::notify::SmsSender;
use portal::setup::{build, Plugins};
use portal::store::Account;
use portal::Portal;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

/// A clock the test moves.
pub struct TestClock(pub Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// A phone bound to every account whose login is in the list (a test double: phone binding
/// is its own issue), and the texts sent.
#[derive(Default)]
pub struct TestPhones {
    pub bound: Mutex<Vec<(String, String)>>,
    pub sent: Mutex<Vec<(String, String)>>,
}

impl BoundPhones for TestPhones {
    fn bound_phone(&self, account: &Account) -> Result<Option<String>, String> {
        Ok(self.bound.lock().unwrap().iter().find(|(l, _)| *l == account.login).map(|(_, p)| p.clone()))
    }
}

impl SmsSender for TestPhones {
    fn send(&self, phone: &str, text: &str) -> Result<(), String> {
        self.sent.lock().unwrap().push((phone.to_owned(), text.to_owned()));
        Ok(())
    }
}

/// A certificate holder: key, certificate, and PEM files for openssl. The files are named by
/// the holder's name and certificate serial, so two holders never share (overwrite) a file.
pub struct Holder {
    pub key: SoftwareKey,
    pub cert: IssuedCertificate,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// The key and certificate with the issuing CA as a client has them (password `pw`).
    pub p12: PathBuf,
}

pub struct TestPortal {
    pub ca: TestCa,
    pub dir: tempfile::TempDir,
    pub clock: Arc<TestClock>,
    pub phones: Arc<TestPhones>,
    pub portal: Arc<Portal>,
    pub port: u16,
    pub runtime: tokio::runtime::Runtime,
    pub issuing_pem: PathBuf,
    pub root_pem: PathBuf,
    pub crl_dir: PathBuf,
    pub maildir: PathBuf,
    pub portal_signer: Holder,
    pub workstation: Holder,
    /// The configuration it was started with (to open a second portal on the same database).
    pub config: PortalConfig,
    counter: std::sync::atomic::AtomicU32,
}

pub const WORKSTATION_ORG: u32 = 19;

impl TestPortal {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Start with the configuration changed by `tweak`.
    pub fn start_with(tweak: impl FnOnce(&mut PortalConfig)) -> Self {
        Self::start_on(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), tweak)
    }

    /// Start relying on `ca` (e.g. one whose certificates point at a local ca-server).
    pub fn start_on(ca: TestCa, tweak: impl FnOnce(&mut PortalConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = fixtures::fixed_now().0;
        let clock = Arc::new(TestClock(Mutex::new(now)));
        let root_pem = write_pem(dir.path(), "root.pem", "CERTIFICATE", &ca.root.certificate_der);
        let issuing_pem = write_pem(dir.path(), "nca.pem", "CERTIFICATE", &ca.issuing.certificate_der);
        let crl_dir = dir.path().join("crl");
        std::fs::create_dir_all(&crl_dir).unwrap();
        let registry = dir.path().join("registry.csv");
        std::fs::write(&registry, fixtures::registry::registry_csv()).unwrap();
        let maildir = dir.path().join("mail");
        let portal_signer = holder_in(
            &ca,
            dir.path(),
            now,
            "portal",
            ProfileId::LegalSign,
            fixtures::employee(200, 18),
            vec![Role::SigningRight],
        );
        let workstation = holder_in(
            &ca,
            dir.path(),
            now,
            "workstation",
            ProfileId::LegalSign,
            fixtures::employee(201, WORKSTATION_ORG),
            vec![Role::Employee],
        );
        // The portal's key as `ca system init` leaves a system key: encrypted PKCS#8.
        let key_file = dir.path().join("portal.key");
        std::fs::write(&key_file, portal_signer.key.to_encrypted_pem(b"portal-pass").unwrap()).unwrap();
        let pass_file = dir.path().join("portal.pass");
        std::fs::write(&pass_file, "portal-pass\n").unwrap();
        let mut config = PortalConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: dir.path().join("portal.db").into(),
            trust: TrustConfig {
                ca_dir: None,
                anchors: vec![root_pem.clone()],
                intermediates: vec![issuing_pem.clone()],
                crl_dirs: vec![crl_dir.clone()],
            },
            registry: RegistryConfig { csv: registry },
            argon2: Default::default(),
            login: LoginPolicy::default(),
            mail: Some(portal::config::MailConfig { maildir: maildir.clone(), from: "noreply@egov.kz".into() }),
            signing: Some(SigningConfig {
                certificate: portal_signer.cert_pem.clone(),
                key: key_file,
                passphrase_env: "UNUSED".into(),
                passphrase_file: Some(pass_file),
                chain: vec![issuing_pem.clone()],
            }),
            counter: CounterConfig {
                workstations: vec![WorkstationRule {
                    bin: Some(fixtures::organisation(WORKSTATION_ORG).bin.to_string()),
                    role: Some("employee".into()),
                    certificate_sha256: None,
                }],
                request_window_seconds: 600,
            },
            documents: Default::default(),
            phone: Default::default(),
            server: Default::default(),
            pages: Default::default(),
        };
        tweak(&mut config);
        config.validate().unwrap();
        let phones = Arc::new(TestPhones::default());
        let portal = Arc::new(
            build(&config, Plugins { clock: clock.clone(), phones: Some(phones.clone()), sms: Some(phones.clone()) })
                .unwrap(),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(serve(listener, AppState::behind(portal.clone(), config.server.trusted_proxies.clone())));
        let me = Self {
            ca,
            dir,
            clock,
            phones,
            portal,
            port,
            runtime,
            issuing_pem,
            root_pem,
            crl_dir,
            maildir,
            portal_signer,
            workstation,
            config,
            counter: std::sync::atomic::AtomicU32::new(2),
        };
        me.publish_crls(&[]);
        me
    }

    /// Publish the root's and the issuing CA's CRLs, the latter revoking `revoked`.
    pub fn publish_crls(&self, revoked: &[&SerialNumber]) {
        std::fs::write(self.crl_dir.join("root.crl"), self.crl(&self.ca.root, &[])).unwrap();
        std::fs::write(self.crl_dir.join("nca.crl"), self.crl(&self.ca.issuing, revoked)).unwrap();
    }

    /// A CRL of `authority` listing `revoked` (keyCompromise), the next CRL number, issued a
    /// minute ago for 30 days.
    pub fn crl(&self, authority: &ca_core::issuer::CertificateAuthority, revoked: &[&SerialNumber]) -> Vec<u8> {
        let n = u64::from(self.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let this = self.clock.now() - Duration::minutes(1);
        let params = crl::CrlParams {
            issuer: authority.subject().clone(),
            authority_key_id: authority.key_id().to_vec(),
            crl_number: n,
            this_update: this,
            next_update: this + Duration::days(30),
            delta_base: None,
            issuing_distribution_point: None,
            freshest_crl: None,
        };
        let entries = revoked.iter().map(|s| crl::CrlEntry {
            serial: s.as_bytes(),
            revoked_at: this,
            reason: Some(ca_core::revocation::RevocationReason::KeyCompromise),
            invalidity_date: None,
        });
        crl::build_crl(&params, entries, authority.signer()).unwrap()
    }

    pub fn holder(&self, name: &str, profile: ProfileId, subject: Subject, roles: Vec<Role>) -> Holder {
        holder_in(&self.ca, self.dir.path(), self.clock.now(), name, profile, subject, roles)
    }

    /// An AUTH certificate of person `n`.
    pub fn person_auth(&self, n: u32) -> Holder {
        self.holder(&format!("auth{n}"), ProfileId::IndividualAuth, fixtures::individual(n), vec![])
    }

    /// An issuer at `at` with `validity`.
    pub fn issuer_at<'a>(&'a self, clock: &'a FixedClock, validity: Duration) -> Issuer<'a> {
        Issuer { validity, ..self.ca.issuer(clock) }
    }

    /// `openssl cms -sign` of `content` by `holder` (attached, DER), base64.
    pub fn sign(&self, holder: &Holder, content: &[u8]) -> String {
        self.sign_with(holder, content, &["-nodetach"])
    }

    pub fn sign_with(&self, holder: &Holder, content: &[u8], extra: &[&str]) -> String {
        let dir = self.dir.path();
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let data = dir.join(format!("data{n}.bin"));
        let out = dir.join(format!("out{n}.cms"));
        std::fs::write(&data, content).unwrap();
        let mut args = vec!["cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER"];
        let (signer, key, certfile, input, output) = (
            holder.cert_pem.to_str().unwrap().to_owned(),
            holder.key_pem.to_str().unwrap().to_owned(),
            self.issuing_pem.to_str().unwrap().to_owned(),
            data.to_str().unwrap().to_owned(),
            out.to_str().unwrap().to_owned(),
        );
        args.extend(["-signer", &signer, "-inkey", &key, "-certfile", &certfile, "-in", &input, "-out", &output]);
        args.extend(extra);
        openssl_ok(&args);
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(out).unwrap())
    }

    /// A request; the answer's status and JSON.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json"), ("User-Agent", "portal-tests/1")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        let (status, bytes) = ca_tests::http(self.port, method, path, &headers, &body);
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, json)
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, None, &body)
    }

    pub fn challenge(&self) -> String {
        let (status, body) = self.post("/api/v1/challenge", Value::Null);
        assert_eq!(status, 200, "{body}");
        body["challenge"].as_str().unwrap().to_owned()
    }

    /// A registration body for individual `n` signed by `holder`.
    pub fn registration(&self, n: u32, holder: &Holder, password: &str) -> Value {
        let iin = fixtures::person(n).iin.to_string();
        let email = format!("person{n}@example.kz");
        let challenge = self.challenge();
        let statement = portal::account::registration::statement(
            portal::account::AccountKind::Individual,
            &iin,
            None,
            &email,
            &challenge,
        );
        serde_json::json!({
            "kind": "individual", "iin": iin, "email": email, "password": password, "password_repeat": password,
            "agreement_accepted": true, "challenge": challenge, "cms": self.sign(holder, &statement),
        })
    }

    /// Register individual `n` with a fresh AUTH certificate; panics unless it succeeds.
    pub fn register_person(&self, n: u32, password: &str) -> Holder {
        let holder = self.person_auth(n);
        let (status, body) = self.post("/api/v1/registration", self.registration(n, &holder, password));
        assert_eq!(status, 200, "{body}");
        holder
    }

    pub fn login_password(&self, login: &str, password: &str) -> (u16, Value) {
        self.post("/api/v1/login/password", serde_json::json!({ "login": login, "password": password }))
    }

    /// Login by signature over a fresh challenge.
    pub fn login_eds(&self, holder: &Holder) -> (u16, Value) {
        let challenge = self.challenge();
        let raw = base64::engine::general_purpose::STANDARD.decode(&challenge).unwrap();
        self.post("/api/v1/login/eds", serde_json::json!({ "cms": self.sign(holder, &raw) }))
    }

    /// Messages in the maildir's `new/`, decoded bodies.
    pub fn mail(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        entries
            .flatten()
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap();
                let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().replace("\r\n", "");
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body).unwrap()).unwrap()
            })
            .collect()
    }
}

fn holder_in(
    ca: &TestCa,
    dir: &Path,
    now: OffsetDateTime,
    name: &str,
    profile: ProfileId,
    subject: Subject,
    roles: Vec<Role>,
) -> Holder {
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let clock = FixedClock(now - Duration::minutes(5));
    let cert = ca
        .issuer(&clock)
        .issue(&IssuanceRequest { profile, subject, roles, public_key: key.public_key().clone() })
        .unwrap();
    holder_files(ca, dir, name, key, cert)
}

/// PEM files of a holder's certificate and key (the key through a PKCS#12, as a client has it),
/// named `<name>-<serial>.*`.
pub fn holder_files(ca: &TestCa, dir: &Path, name: &str, key: SoftwareKey, cert: IssuedCertificate) -> Holder {
    let p12 =
        hsm::build_pkcs12(&key, &cert.der, std::slice::from_ref(&ca.issuing.certificate_der), "pw", name).unwrap();
    let name = format!("{name}-{}", cert.serial.to_hex());
    let p12_path = dir.join(format!("{name}.p12"));
    std::fs::write(&p12_path, p12).unwrap();
    let key_pem = dir.join(format!("{name}.key"));
    openssl_ok(&[
        "pkcs12",
        "-in",
        p12_path.to_str().unwrap(),
        "-passin",
        "pass:pw",
        "-nodes",
        "-nocerts",
        "-out",
        key_pem.to_str().unwrap(),
    ]);
    let cert_pem = write_pem(dir, &format!("{name}.pem"), "CERTIFICATE", &cert.der);
    Holder { key, cert, cert_pem, key_pem, p12: p12_path }
}

/// `[store]` for a new database in `cluster`, its password in a file under `dir` (never in the
/// environment of a test process, where other tests would see it).
pub fn postgres_store(cluster: &fixtures::postgres::PgCluster, dir: &Path) -> portal::config::StoreConfig {
    let database = cluster.create_database(None).unwrap();
    let password_file = dir.join("store.pass");
    std::fs::write(&password_file, format!("{}\n", cluster.password())).unwrap();
    portal::config::StoreConfig::Postgres(portal::config::PostgresStoreConfig {
        url: cluster.url(&database),
        password_env: Some("PORTAL_TEST_UNSET_STORE_PASSWORD".into()),
        password_file: Some(password_file),
    })
}

impl TestPortal {
    /// The time the test CA's certificates are issued at (the portal's clock may have moved).
    pub fn ca_now(&self) -> OffsetDateTime {
        fixtures::fixed_now().0
    }
}
