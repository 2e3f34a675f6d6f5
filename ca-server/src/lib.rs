//! HTTP services of the CA: the OCSP responder (RFC 6960, GET and POST), CRL distribution
//! (`/crl/<file>`), CA certificate distribution for AIA caIssuers (`/ca/<file>`), certificate
//! information for portals (`/api/v1/x509/info`), verification of signed requests and bare
//! certificates (`/api/v1/cms/verify`, `/api/v1/x509/verify`), XML signatures
//! (`/api/v1/xml/verify`, `/api/v1/xml/sign`), login by signature
//! (`/api/v1/auth/challenge`, `/api/v1/auth/login`), signing with the service's own system
//! certificate (`/api/v1/cms/sign`), the RFC 3161 time-stamping authority (`/tsa`), the
//! certification practice statement (`/cps`), the registration authority's operator console
//! (`/console`, HTML pages: [`console`]), health, Prometheus metrics and the OpenAPI
//! description. Every error outside the console, inside `/api/v1` or not, is a JSON body
//! `{"error": kind, "message": …}` (the console's pages answer HTML); OCSP answers are
//! OCSPResponses, time-stamp answers TimeStampResps.
//!
//! Status comes from the store at request time; CPU-heavy work runs off the async executor;
//! bodies, concurrency and time per request are bounded.
#![forbid(unsafe_code)]

mod api;
pub mod checkpoints;
pub mod console;
mod distribution;
mod metrics;
mod ocsp_http;
pub mod rate_limit;
pub mod refusals;
mod reload;
mod tsa_http;
mod verifier;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use ca_core::ca_dir::{CaConfig, CaDir, KeyLocation, ServerSection};
use ca_core::clock::{Clock, SystemClock};
use ca_core::expiry::OwnCertificate;
use ca_core::ocsp::Responder;
use ca_core::store::open::Reads;
use ca_core::store::{CaStore, NonceStore, Store};
use ca_core::tsa::TimeStampAuthority;
use hsm::pkcs11::{KeySelector, Pkcs11Module, SecretPin, TokenSelector};
use hsm::SoftwareKey;

pub use api::sign::{ApiTokens, SystemSigner};
pub use ca_core::cms::fetch::{CrlRevocationSource, OcspRevocationSource};
pub use checkpoints::AuditCheckpoints;
pub use distribution::CpsPage;
pub use metrics::Metrics;
pub use rate_limit::{Rate, RateLimiter};
pub use reload::Live;
pub use verifier::Verifier;

/// Largest OCSP request body read; anything longer is answered with malformedRequest.
pub const MAX_OCSP_REQUEST: usize = 16 * 1024;
/// Largest time-stamp request body (a TimeStampReq with a SHA-512 imprint and a long nonce is
/// about 120 octets); a longer one is answered with rejection/badDataFormat.
pub const MAX_TSA_REQUEST: usize = 4 * 1024;
/// Largest API request body.
pub const MAX_API_BODY: usize = 1024 * 1024;
/// Requests handled at once; more wait.
pub const MAX_CONCURRENT_REQUESTS: usize = 512;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a login challenge stays valid.
pub const NONCE_TTL: time::Duration = time::Duration::minutes(5);

/// Everything the routes serve.
pub struct Services {
    /// The OCSP responder; replaced when its certificate is renewed (see [`Services::reload`]).
    pub ocsp: Live<Option<Arc<Responder>>>,
    /// The responders of retired issuing CA generations (`ca rollover issuing`); a request goes
    /// to the responder whose CA its CertIDs name.
    pub retired_ocsp: Live<Arc<Vec<Arc<Responder>>>>,
    /// The time-stamping authority (`ca tsa init`, `[tsa] enabled`); replaced when renewed.
    pub tsa: Live<Option<Arc<TimeStampAuthority>>>,
    /// The store of this CA, for certificate status in the API.
    pub store: Option<Arc<dyn Store>>,
    /// The issuing CA's name in the store.
    pub ca_name: String,
    pub crl_dir: PathBuf,
    pub certs_dir: PathBuf,
    pub metrics: Metrics,
    /// Trust and revocation for the verification endpoints; `None` answers them 503.
    pub verifier: Option<Arc<Verifier>>,
    /// Login challenges; `None` answers the login endpoints 503.
    pub nonces: Option<Arc<dyn NonceStore>>,
    pub nonce_ttl: time::Duration,
    /// The service's own signing key and certificate for `/api/v1/cms/sign`.
    pub system_signer: Live<Option<Arc<SystemSigner>>>,
    /// The bearer tokens allowed to sign; read again from `token_file` when it changes.
    pub api_tokens: Live<Arc<ApiTokens>>,
    /// The CA's own certificates, for the expiry gauges of `/metrics`.
    pub own_certificates: Live<Arc<Vec<OwnCertificate>>>,
    token_file: Option<reload::TokenFile>,
    reload_source: Option<ReloadSource>,
    /// How often [`serve`] looks for renewed keys (SIGHUP always works); `None`: never.
    pub reload_interval: Option<Duration>,
    pub clock: Arc<dyn Clock>,
    /// The store as the registration authority's store, for the admin endpoints (always the
    /// primary database: the RA reads back what it writes).
    pub ra_store: Option<Arc<dyn CaStore>>,
    /// Limits on login challenges (each is a row in the store until it expires).
    pub challenge_limiter: RateLimiter,
    /// Limits on refused anonymous administration requests: a client past them is turned away
    /// before its CMS is verified.
    pub admin_refusal_limiter: RateLimiter,
    /// Refused anonymous administration requests, summed into one journal entry per interval.
    pub anonymous_refusals: refusals::AnonymousRefusals,
    /// What `/cps` serves.
    pub cps: CpsPage,
    /// Signed checkpoints of the audit journal at an interval, when configured and the audit
    /// key could be opened.
    pub audit_checkpoints: Option<Arc<AuditCheckpoints>>,
    /// This CA's certificates (roots, every issuing generation, cross certificates), DER: the
    /// chain served with an applicant's certificates.
    pub ca_certificates: Vec<Vec<u8>>,
    /// The public base URL of this server for the links of the applicants' notices
    /// (`[server] public_base_url`); empty: no links.
    pub public_base_url: String,
    /// How long an install link stays valid.
    pub install_ttl: time::Duration,
    /// The operator console's sessions and the signing client's address (`/console`).
    pub console: console::Console,
}

/// Refused anonymous administration requests per client (IP address), sustained and at once.
pub const ADMIN_REFUSALS_PER_CLIENT: Rate = Rate { per_second: 1.0, burst: 10.0 };
/// ... and for all clients together, which bounds the CPU that junk can cost.
pub const ADMIN_REFUSALS_TOTAL: Rate = Rate { per_second: 50.0, burst: 200.0 };

/// The limits on refused anonymous administration requests, behind `trusted_proxies`.
pub fn admin_refusal_limiter(server: &ServerSection) -> RateLimiter {
    RateLimiter::new(ADMIN_REFUSALS_PER_CLIENT, ADMIN_REFUSALS_TOTAL, server.trusted_proxies.clone())
}

/// The challenge limits of a `[server]` section.
pub fn challenge_limiter(server: &ServerSection) -> RateLimiter {
    RateLimiter::new(
        Rate { per_second: server.challenges_per_second, burst: f64::from(server.challenge_burst) },
        Rate { per_second: server.challenges_per_second_total, burst: f64::from(server.challenge_burst_total) },
        server.trusted_proxies.clone(),
    )
}

impl Services {
    pub fn new(
        ocsp: Option<Arc<Responder>>,
        store: Option<Arc<dyn Store>>,
        ca_name: impl Into<String>,
        crl_dir: PathBuf,
        certs_dir: PathBuf,
    ) -> Self {
        let ca_name = ca_name.into();
        Self {
            ocsp: Live::new(ocsp),
            retired_ocsp: Live::default(),
            tsa: Live::default(),
            store,
            cps: CpsPage::notice(&ca_name),
            ca_name,
            crl_dir,
            certs_dir,
            metrics: Metrics::default(),
            verifier: None,
            nonces: None,
            nonce_ttl: NONCE_TTL,
            system_signer: Live::default(),
            api_tokens: Live::default(),
            own_certificates: Live::default(),
            token_file: None,
            reload_source: None,
            reload_interval: None,
            clock: Arc::new(SystemClock),
            ra_store: None,
            challenge_limiter: challenge_limiter(&ServerSection::default()),
            admin_refusal_limiter: admin_refusal_limiter(&ServerSection::default()),
            anonymous_refusals: refusals::AnonymousRefusals::default(),
            audit_checkpoints: None,
            ca_certificates: Vec::new(),
            public_base_url: String::new(),
            install_ttl: ServerSection::default().install_ttl(),
            console: console::Console::default(),
        }
    }

    /// The chain of `certificate` (DER) among this CA's certificates, from its issuer up to a
    /// self-signed root; empty when its issuer is not one of ours.
    pub fn chain_of(&self, certificate: &[u8]) -> Vec<Vec<u8>> {
        use der::Decode;
        let parse = |der: &[u8]| x509_cert::Certificate::from_der(der).ok();
        let mut chain: Vec<Vec<u8>> = Vec::new();
        let Some(mut current) = parse(certificate) else { return chain };
        // Bounded: a chain longer than the CA's certificates would be a loop.
        while chain.len() < self.ca_certificates.len() {
            let wanted = &current.tbs_certificate.issuer;
            // Roots come first in the list, so a self-signed root wins over a cross certificate
            // with the same subject.
            let next = self
                .ca_certificates
                .iter()
                .filter(|der| !chain.contains(der))
                .filter_map(|der| parse(der).map(|c| (der, c)))
                .find(|(_, c)| c.tbs_certificate.subject == *wanted);
            let Some((der, c)) = next else { break };
            chain.push(der.clone());
            if c.tbs_certificate.subject == c.tbs_certificate.issuer {
                break;
            }
            current = c;
        }
        chain
    }
}

/// The server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ca_core::ca_dir::ConfigError),
    #[error("store: {0}")]
    Store(#[from] ca_core::store::StoreError),
    #[error("key of the server (OCSP responder, TSA or system signing): {0}")]
    Key(#[from] hsm::KeyError),
    #[error("OCSP responder: {0}")]
    Responder(#[from] ca_core::ocsp::ResponderError),
    #[error("time-stamping authority: {0}")]
    Tsa(#[from] ca_core::tsa::TsaError),
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("key on a token: {0}")]
    Token(#[from] hsm::pkcs11::TokenError),
    #[error("a key of the server is on token {0:?}: give its PIN (CA_HSM_PIN or CA_HSM_PIN_FILE)")]
    PinNeeded(String),
    #[error("certificate of the CA: {0}")]
    OwnCertificate(#[from] ca_core::expiry::ExpiryError),
    #[error("audit checkpoints: {0}")]
    Checkpoint(#[from] ca_core::checkpoint::CheckpointError),
}

fn read_text(path: &Path) -> Result<zeroize::Zeroizing<String>, StartError> {
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| StartError::Read { path: path.to_owned(), message: e.to_string() })
}

/// A key of the server (OCSP responder, system signing): on a token when ca.toml says so (the
/// PIN is then required), else the encrypted file when it exists and a passphrase was given.
fn open_server_key(
    location: Option<&KeyLocation>,
    file: &Path,
    passphrase: Option<&[u8]>,
    pin: Option<&zeroize::Zeroizing<String>>,
    config: &Path,
) -> Result<Option<Arc<dyn ca_core::signer::Signer>>, StartError> {
    if let Some(KeyLocation::Pkcs11 { module, token, id }) = location {
        let pin = pin.ok_or_else(|| StartError::PinNeeded(token.clone()))?;
        let bad_id = |_| StartError::Read { path: config.to_owned(), message: format!("key id {id:?} is not hex") };
        let id = hex::decode(id).map_err(bad_id)?;
        let token = Pkcs11Module::load(module)?.open_token(&TokenSelector::Label(token.clone()))?;
        token.login(&SecretPin::new(pin.clone()))?;
        return Ok(Some(Arc::new(token.find_key(&KeySelector::Id(id))?)));
    }
    match passphrase {
        Some(passphrase) if file.exists() => {
            Ok(Some(Arc::new(SoftwareKey::from_encrypted_pem(&read_text(file)?, passphrase)?)))
        }
        _ => Ok(None),
    }
}

/// Refuse to start with a key that does not belong to its certificate: every signature would
/// fail verification.
fn check_key_matches(key: &dyn ca_core::signer::Signer, certificate: &[u8], path: &Path) -> Result<(), StartError> {
    use der::{Decode, Encode};
    let err = |message: String| StartError::Read { path: path.to_owned(), message };
    let cert = x509_cert::Certificate::from_der(certificate).map_err(|e| err(e.to_string()))?;
    let ours = key.public_key().to_der().map_err(|e| err(e.to_string()))?;
    let theirs = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| err(e.to_string()))?;
    if ours != theirs {
        return Err(err("the certificate is not for the key next to it".into()));
    }
    Ok(())
}

fn read_pem_certificate(path: &Path) -> Result<Vec<u8>, StartError> {
    let err = |message: String| StartError::Read { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let block = ca_core::pem::first_block(text.as_bytes()).ok_or_else(|| err("not PEM: no BEGIN line".into()))?;
    let (label, der) = der::pem::decode_vec(block).map_err(|e| err(format!("not PEM: {e}")))?;
    if label != "CERTIFICATE" {
        return Err(err(format!("PEM label {label:?}, expected CERTIFICATE")));
    }
    Ok(der)
}

impl Services {
    /// Open a CA directory. The OCSP responder runs when `ca ocsp init` has made its key and
    /// certificate; `passphrase` opens that key.
    pub fn load(dir: &CaDir, passphrase: Option<&[u8]>) -> Result<Self, StartError> {
        Self::load_with_pin(dir, passphrase, None)
    }

    /// [`load`](Self::load), with the PIN of the token that holds the system signing key when
    /// ca.toml puts it on one (`[server] system_key = { type = "pkcs11", … }`).
    pub fn load_with_pin(
        dir: &CaDir,
        passphrase: Option<&[u8]>,
        pin: Option<zeroize::Zeroizing<String>>,
    ) -> Result<Self, StartError> {
        let config: CaConfig = dir.load_config()?;
        let primary = ca_core::store::open::open(&dir.store(), &config.store, Reads::Primary)?;
        // Checked when the configuration was loaded: application steps are timed by ca.toml.
        if let Ok(timing) = config.regulation.timing() {
            primary.set_timing(timing);
        }
        // OCSP, verification and downloads may read a streaming replica (`[store] read_url`).
        let store: Arc<dyn Store> = match config.store.read_url {
            Some(_) => ca_core::store::open::open(&dir.store(), &config.store, Reads::Replica)?,
            None => primary.clone(),
        };
        let source = ReloadSource {
            dir: dir.clone(),
            passphrase: passphrase.map(|p| zeroize::Zeroizing::new(p.to_vec())),
            pin,
            watched: reload::Watched::new(vec![
                dir.config(),
                dir.ocsp_certificate(),
                dir.ocsp_key(),
                dir.system_certificate(),
                dir.system_key(),
                dir.tsa_certificate(),
                dir.tsa_key(),
                // Responders of retired generations come and go with rollovers and renewals:
                // any entry made or replaced in these directories changes their state.
                dir.certs(),
                dir.private(),
            ]),
        };
        let keys = ServerKeys::load(dir, &config, source.secrets(), store.clone())?;
        let audit_checkpoints = {
            let (passphrase, pin) = source.secrets();
            checkpoints::load(dir, &config, store.clone(), |location, file| {
                open_server_key(location, file, passphrase, pin, &dir.config())
            })?
        };
        let roots: Vec<Vec<u8>> = config
            .root_names()
            .map(|name| read_pem_certificate(&dir.certificate_pem(name)))
            .collect::<Result<_, _>>()?;
        let mut issuing: Vec<Vec<u8>> = config
            .issuing_names()
            .map(|name| read_pem_certificate(&dir.certificate_pem(name)))
            .collect::<Result<Vec<_>, _>>()?;
        for root in config.root_names() {
            let cross = dir.cross_certificate_pem(root);
            if cross.exists() {
                issuing.push(read_pem_certificate(&cross)?);
            }
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // Roots first: among several certificates with the issuer's name, the chain takes the
        // self-signed one (not a cross certificate) when it reaches the root.
        let ca_certificates: Vec<Vec<u8>> = roots.iter().chain(issuing.iter()).cloned().collect();
        let verifier = Verifier::from_dir(&dir.root, roots, issuing, clock.clone())?;
        let tokens_path = dir.api_tokens();
        let token_state = reload::FileState::of(&tokens_path);
        let api_tokens = if tokens_path.exists() {
            ApiTokens::parse(&read_text(&tokens_path)?)
                .map_err(|message| StartError::Read { path: tokens_path.clone(), message })?
        } else {
            ApiTokens::default()
        };
        let cps = match &config.server.cps_file {
            Some(file) => {
                let path = dir.root.join(file);
                let body = std::fs::read_to_string(&path)
                    .map_err(|e| StartError::Read { path: path.clone(), message: e.to_string() })?;
                CpsPage::from_file(&path, body)
            }
            None => CpsPage::notice(&config.issuing.common_name),
        };
        let mut services = Self::new(None, Some(store), config.issuing.name, dir.publish_crl(), dir.certs());
        services.install(keys);
        services.cps = cps;
        services.verifier = Some(Arc::new(verifier));
        services.nonces = Some(primary.clone());
        services.ra_store = Some(primary);
        services.api_tokens = Live::new(Arc::new(api_tokens));
        services.token_file = Some(reload::TokenFile { path: tokens_path, seen: std::sync::Mutex::new(token_state) });
        services.clock = clock;
        services.challenge_limiter = challenge_limiter(&config.server);
        services.admin_refusal_limiter = admin_refusal_limiter(&config.server);
        services.audit_checkpoints = audit_checkpoints.map(Arc::new);
        services.ca_certificates = ca_certificates;
        services.public_base_url = config.server.link_base().to_owned();
        services.install_ttl = config.server.install_ttl();
        services.reload_interval =
            (config.server.reload_seconds > 0).then(|| Duration::from_secs(config.server.reload_seconds));
        services.reload_source = Some(source);
        Ok(services)
    }

    /// Put freshly loaded keys in service.
    fn install(&self, keys: ServerKeys) {
        self.ocsp.set(keys.ocsp);
        self.retired_ocsp.set(Arc::new(keys.retired_ocsp));
        self.system_signer.set(keys.system_signer);
        self.tsa.set(keys.tsa);
        self.own_certificates.set(Arc::new(keys.own_certificates));
    }
}

/// Where [`Services::reload`] loads keys from: the CA directory and the secrets that open them
/// (kept, zeroized on drop, for as long as the server runs: the keys they open are in memory
/// anyway).
struct ReloadSource {
    dir: CaDir,
    passphrase: Option<zeroize::Zeroizing<Vec<u8>>>,
    pin: Option<zeroize::Zeroizing<String>>,
    watched: reload::Watched,
}

impl ReloadSource {
    fn secrets(&self) -> (Option<&[u8]>, Option<&zeroize::Zeroizing<String>>) {
        (self.passphrase.as_ref().map(|p| p.as_slice()), self.pin.as_ref())
    }
}

/// The server's own keys and certificates, loaded together.
struct ServerKeys {
    ocsp: Option<Arc<Responder>>,
    retired_ocsp: Vec<Arc<Responder>>,
    system_signer: Option<Arc<SystemSigner>>,
    tsa: Option<Arc<TimeStampAuthority>>,
    own_certificates: Vec<OwnCertificate>,
}

impl ServerKeys {
    /// The OCSP responder runs when `ca ocsp init` has made its key and certificate, the TSA when
    /// `ca tsa init` has, the system signer when `ca system init` has; a key that is not its
    /// certificate's stops the load.
    fn load(
        dir: &CaDir,
        config: &CaConfig,
        (passphrase, pin): (Option<&[u8]>, Option<&zeroize::Zeroizing<String>>),
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        let server_key = |location: Option<&KeyLocation>, file: &Path| {
            open_server_key(location, file, passphrase, pin, &dir.config())
        };
        let issuing = read_pem_certificate(&dir.certificate_pem(&config.issuing.name))?;
        let responder = |ca: &str, ca_cert: &[u8], key: Option<Arc<dyn ca_core::signer::Signer>>, cert: &Path| {
            key.map(|key| -> Result<_, StartError> {
                let responder_cert = read_pem_certificate(cert)?;
                let responder =
                    Responder::new(ca, ca_cert, &responder_cert, key, store.clone(), Arc::new(SystemClock))?;
                Ok(Arc::new(responder))
            })
            .transpose()
        };
        let ocsp = responder(
            &config.issuing.name,
            &issuing,
            server_key(config.server.ocsp_key.as_ref(), &dir.ocsp_key())?,
            &dir.ocsp_certificate(),
        )?;
        let mut retired_ocsp = Vec::new();
        for retired in &config.retired {
            let key = server_key(retired.ocsp_key.as_ref(), &dir.retired_ocsp_key(&retired.name))?;
            let ca_cert = read_pem_certificate(&dir.certificate_pem(&retired.name))?;
            retired_ocsp.extend(responder(&retired.name, &ca_cert, key, &dir.retired_ocsp_certificate(&retired.name))?);
        }
        let system_signer = match server_key(config.server.system_key.as_ref(), &dir.system_key())? {
            Some(signer) => {
                let certificate = read_pem_certificate(&dir.system_certificate())?;
                check_key_matches(signer.as_ref(), &certificate, &dir.system_certificate())?;
                // The generation that issued the system certificate (it may predate a rollover).
                let chain = vec![issuer_of(dir, config, &certificate)?.unwrap_or(issuing)];
                Some(Arc::new(SystemSigner { signer, certificate, chain }))
            }
            None => None,
        };
        // The TSA runs when `ca tsa init` has made its key and certificate and [tsa] enables it.
        // A disabled TSA's key is not even opened (no PIN asked for it).
        let tsa_key = if config.tsa.enabled { server_key(config.tsa.key.as_ref(), &dir.tsa_key())? } else { None };
        let tsa = match tsa_key {
            Some(signer) => {
                let certificate = read_pem_certificate(&dir.tsa_certificate())?;
                let settings =
                    config.tsa.settings().map_err(|message| StartError::Read { path: dir.config(), message })?;
                Some(Arc::new(TimeStampAuthority::new(&certificate, signer, Arc::new(SystemClock), settings)?))
            }
            None => None,
        };
        let own_certificates = ca_core::expiry::own_certificates(dir, config)?;
        Ok(Self { ocsp, retired_ocsp, system_signer, tsa, own_certificates })
    }
}

/// The certificate of the issuing CA generation whose subject is `certificate`'s issuer.
fn issuer_of(dir: &CaDir, config: &CaConfig, certificate: &[u8]) -> Result<Option<Vec<u8>>, StartError> {
    use der::Decode;
    let issuer_name = |der: &[u8]| x509_cert::Certificate::from_der(der).map(|c| c.tbs_certificate.issuer);
    let subject_name = |der: &[u8]| x509_cert::Certificate::from_der(der).map(|c| c.tbs_certificate.subject);
    let Ok(wanted) = issuer_name(certificate) else { return Ok(None) };
    for name in config.issuing_names() {
        let ca = read_pem_certificate(&dir.certificate_pem(name))?;
        if subject_name(&ca).is_ok_and(|s| s == wanted) {
            return Ok(Some(ca));
        }
    }
    Ok(None)
}

/// All routes, with limits on body size, concurrency and time.
pub fn router(services: Arc<Services>) -> Router {
    let api = Router::new()
        .route("/api/v1/x509/info", post(api::x509::info))
        .route("/api/v1/x509/verify", post(api::verify::x509_verify))
        .route("/api/v1/cms/verify", post(api::verify::cms_verify))
        .route("/api/v1/cms/sign", post(api::sign::sign))
        .route("/api/v1/xml/verify", post(api::xml::verify))
        .route("/api/v1/xml/sign", post(api::xml::sign))
        .route("/api/v1/auth/challenge", post(api::auth::challenge))
        .route("/api/v1/auth/login", post(api::auth::login))
        .route("/api/v1/admin/applications/{number}/confirm", post(api::admin::confirm))
        .route("/api/v1/admin/revocations", post(api::admin::revoke_certificate))
        .route("/api/v1/admin/applications/{number}/verify", post(api::admin::verify_identity))
        .route("/api/v1/admin/applications/{number}/refuse", post(api::admin::refuse))
        .route("/api/v1/applications", post(api::applications::submit))
        .route("/api/v1/applications/{number}", get(api::applications::status))
        .route("/api/v1/applications/{number}/status", post(api::applications::signed_status))
        .route("/api/v1/applications/{number}/head-confirm", post(api::applications::head_confirm))
        .route("/api/v1/openapi.json", get(api::openapi))
        .layer(DefaultBodyLimit::max(MAX_API_BODY));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::render))
        // GET without a request in the path is an empty, hence malformed, OCSP request.
        .route("/ocsp", post(ocsp_http::ocsp_post).get(ocsp_http::ocsp_get_empty))
        .route("/ocsp/", post(ocsp_http::ocsp_post).get(ocsp_http::ocsp_get_empty))
        .route("/ocsp/{*request}", get(ocsp_http::ocsp_get))
        .route("/crl/{file}", get(distribution::crl_file))
        .route("/ca/{file}", get(distribution::ca_file))
        .route("/tsa", post(tsa_http::tsa_post))
        .route("/cps", get(distribution::cps))
        .route("/install/{number}", get(api::install::install))
        .merge(api)
        .fallback(api::no_route)
        // Framework refusals (wrong method, body too large, …) become JSON errors everywhere
        // but in the console, whose pages answer HTML.
        .layer(axum::middleware::from_fn(api::json_errors));
    let app = match console::router(services.clone()) {
        Ok(console) => app.merge(console.layer(DefaultBodyLimit::max(MAX_API_BODY))),
        Err(e) => {
            tracing::error!(error = %e, "the operator console cannot be served");
            app
        }
    };
    app.layer(axum::middleware::from_fn_with_state(services.clone(), metrics::track))
        .layer(axum::middleware::from_fn(api::deadline))
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .with_state(services)
}

/// Serve until Ctrl-C or SIGTERM, then finish in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, services: Arc<Services>) -> std::io::Result<()> {
    // The peer address is what per-client limits key on.
    let reloader = tokio::spawn(reload::reload_loop(services.clone(), services.reload_interval));
    let checkpoints = services
        .audit_checkpoints
        .clone()
        .map(|checkpoints| tokio::spawn(checkpoints::run(checkpoints, services.clock.clone())));
    let app = router(services).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(http_common::shutdown_signal()).await;
    reloader.abort();
    if let Some(task) = checkpoints {
        task.abort();
    }
    served
}
