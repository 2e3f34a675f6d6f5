//! Building a [`Portal`] from `portal.toml`.

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::ra::outbox::Maildir;

use crate::account::password::PasswordHasherConfig;
use crate::config::PortalConfig;
use crate::documents::timestamp::{HttpTimeStamper, TimeStamper};
use crate::http::metrics::Metrics;
use crate::login::otp_login::BoundPhones;
use crate::notify::sms::{sms_transport, OutboxSms, SmsDispatcher};
use crate::notify::{Mailer, SmsSender};
use crate::otp::{OtpService, DEFAULT_ATTEMPTS, MAX_TTL};
use crate::phone::{PhoneService, StoreBoundPhones};
use crate::registry::CsvRegistry;
use crate::signing::PortalSigner;
use crate::store::PortalStore;
use crate::trust::PortalTrust;
use crate::Portal;

/// The parts of a portal that are not in its configuration file.
pub struct Plugins {
    pub clock: Arc<dyn Clock>,
    /// Where OTP login finds an account's phone; `None`: the phone bindings in the store.
    pub phones: Option<Arc<dyn BoundPhones>>,
    /// How OTP login sends its codes; `None`: the SMS outbox, when `[phone.sms]` is configured.
    pub sms: Option<Arc<dyn SmsSender>>,
}

/// Open the store, read trust, registry and signing identity, and check the Argon2id
/// parameters; every failure names what could not be used.
pub fn build(config: &PortalConfig, plugins: Plugins) -> Result<Portal, String> {
    let store: Arc<dyn PortalStore> =
        crate::store::open(&config.store).map_err(|e| format!("{}: {e}", config.store))?;
    let trust = Arc::new(PortalTrust::from_config(&config.trust, plugins.clock.clone()).map_err(|e| e.to_string())?);
    let registry = Arc::new(CsvRegistry::load(&config.registry.csv)?);
    let passwords = PasswordHasherConfig::new(config.argon2).map_err(|e| e.to_string())?;
    let signer = config.signing.as_ref().map(PortalSigner::load).transpose()?;
    let mailer = config
        .mail
        .as_ref()
        .map(|m| Mailer::new(store.clone(), plugins.clock.clone(), Arc::new(Maildir::new(&m.maildir, m.from.clone()))));
    let dispatcher = match &config.phone.sms {
        Some(sms) => {
            Some(SmsDispatcher::new(store.clone(), plugins.clock.clone(), sms_transport(sms, &config.phone.sender)?))
        }
        None => None,
    };
    let sms = plugins.sms.or_else(|| {
        dispatcher.as_ref().map(|_| {
            Arc::new(OutboxSms {
                store: store.clone(),
                clock: plugins.clock.clone(),
                purpose: "login-code",
                valid_for: Some(MAX_TTL),
            }) as Arc<dyn SmsSender>
        })
    });
    let phones = plugins.phones.unwrap_or_else(|| Arc::new(StoreBoundPhones(store.clone())));
    let phone = PhoneService::new(config.phone.clone(), store.clone(), plugins.clock.clone(), dispatcher);
    let key = zeroize::Zeroizing::new(store.challenge_key().map_err(|e| e.to_string())?);
    let challenge_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_ref());
    let stamper =
        config.documents.tsa.as_ref().map(|tsa| {
            Arc::new(HttpTimeStamper::new(tsa, trust.clone(), plugins.clock.clone())) as Arc<dyn TimeStamper>
        });
    Ok(Portal {
        challenge_key,
        started_at: plugins.clock.now(),
        otp: OtpService::new(store.clone(), plugins.clock.clone(), MAX_TTL, DEFAULT_ATTEMPTS),
        store,
        clock: plugins.clock,
        trust,
        registry: registry.clone(),
        representatives: registry,
        documents: config.documents.clone(),
        stamper,
        passwords,
        policy: config.login,
        phones,
        sms,
        phone,
        mailer,
        signer,
        counter: config.counter.clone(),
        metrics: Metrics::default(),
        pages: config.pages.clone(),
    })
}
