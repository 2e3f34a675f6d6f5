//! `ca rollover issuing`: a new generation of the issuing CA under the root, and `ca rollover
//! root`: a new root with a cross certificate from the current one (see docs/ROLLOVER.md). The new CA gets a new name (`nca-2`, `nca-3`, …), so its certificate, key,
//! CRL files, AIA and CDP URLs and store records are its own; the old one moves to `[[retired]]`
//! in ca.toml and keeps its CRLs and OCSP responder until the last certificate it issued expires.
//!
//! Order, so that an interruption leaves a directory that works: the key and certificate of the
//! new CA are written under the new name (nothing refers to them yet), the old OCSP responder's
//! files are renamed to `ocsp-<old>.*` (each rename on its own; a re-run finishes them), then
//! ca.toml is replaced atomically. A running server picks the new ca.toml up on reload.

use anyhow::Context as _;
use ca_core::ca_dir::{CaSection, KeyLocation, RetiredCa};
use ca_core::identity::Subject;
use ca_core::issuer::{CertificateAuthority, IssuedCertificate};
use ca_core::signer::Signer;
use ca_core::store::AuditEvent;
use clap::{Args, Subcommand};
use hsm::{KeyAlgorithm, SoftwareKey};
use time::Duration;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::service_keys::HsmArgs;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum RolloverCommand {
    /// A new issuing CA under the root; the current one keeps publishing CRLs and OCSP answers
    /// for its certificates until they expire, and issues nothing more.
    Issuing(NewCaArgs),
    /// A new root, and a cross certificate from the current root for its key; the current
    /// root keeps signing its CRL for the CAs under it until their certificates expire. Run
    /// `ca rollover issuing` next for an issuing CA under the new root.
    Root(NewCaArgs),
}

/// The new CA of a rollover; each default is the current CA's.
#[derive(Args, Debug, Clone)]
pub struct NewCaArgs {
    /// Key of the new CA: rsa4096, p384, rsa3072, rsa2048, p256 (default: the current one's).
    #[arg(long)]
    pub key_algorithm: Option<String>,
    /// Common name of the new CA, different from every earlier generation's (default: the
    /// current one's with the generation number, `… G2`).
    #[arg(long)]
    pub common_name: Option<String>,
    /// Validity of the new CA's certificate in days (default: the current one's).
    #[arg(long)]
    pub validity_days: Option<u32>,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

pub fn run(ctx: &Context, cmd: &RolloverCommand) -> Outcome {
    match cmd {
        RolloverCommand::Issuing(args) => issuing(ctx, args),
        RolloverCommand::Root(args) => root(ctx, args),
    }
}

/// The next free generation name after `current`: `nca` → `nca-2` → `nca-3`.
fn next_name(ctx: &Context, current: &str) -> String {
    let base = match current.rsplit_once('-') {
        Some((base, n)) if !base.is_empty() && n.parse::<u32>().is_ok() => base,
        _ => current,
    };
    (2u32..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| {
            ctx.config.key_location(name).is_none()
                && !ctx.dir.certificate_pem(name).exists()
                && !ctx.dir.key(name).exists()
        })
        .expect("some generation number is free")
}

fn parse_algorithm(name: &str) -> Result<KeyAlgorithm, Failure> {
    name.parse().map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))
}

/// The common name given, or the default, refused when an earlier generation has it: relying
/// parties find a certificate's issuer, and a CRL's, by name first, and two generations under
/// one name would leave them only key identifiers to tell them apart.
fn new_common_name<'a>(
    given: Option<&str>,
    current: &str,
    name: &str,
    mut earlier: impl Iterator<Item = &'a str>,
) -> Result<String, Failure> {
    let common_name = given.map_or_else(|| default_common_name(current, name), str::to_owned);
    if earlier.any(|cn| cn == common_name) {
        return Err(Failure::Input(format!(
            "an earlier generation is named {common_name:?}: give the new one its own --common-name"
        )));
    }
    Ok(common_name)
}

/// `… G<n>` for generation `<base>-<n>`, replacing an earlier `G<m>` suffix.
fn default_common_name(current: &str, name: &str) -> String {
    let generation = name.rsplit_once('-').map_or("2", |(_, n)| n);
    let base = match current.rsplit_once(" G") {
        Some((base, n)) if n.parse::<u32>().is_ok() => base,
        _ => current,
    };
    format!("{base} G{generation}")
}

/// A key for the new CA and where ca.toml will say it is.
struct NewKey {
    signer: Box<dyn Signer>,
    location: Option<KeyLocation>,
    /// A key made on a token, deleted again when the rollover fails.
    token: Option<(hsm::pkcs11::Token, Vec<u8>)>,
}

impl NewKey {
    /// Give up a key that got no certificate in ca.toml: deleted from the token or the file.
    fn discard(&self, ctx: &Context, name: &str) {
        match &self.token {
            Some((token, id)) => {
                let _ = token.delete_objects_by_id(id);
            }
            None => {
                let _ = std::fs::remove_file(ctx.dir.key(name));
            }
        }
    }
}

/// On the token given, else on the token the key it replaces (`current`) is on, else a file
/// encrypted under the CA passphrase.
fn new_key(
    ctx: &Context,
    hsm: &HsmArgs,
    current: Option<&KeyLocation>,
    name: &str,
    alg: KeyAlgorithm,
) -> Result<NewKey, Failure> {
    let on_token = match (hsm.token(), current) {
        (Some(t), _) => Some((t.module.to_owned(), t.label.to_owned())),
        (None, Some(KeyLocation::Pkcs11 { module, token, .. })) => Some((module.clone(), token.clone())),
        (None, _) => None,
    };
    match on_token {
        Some((module, label)) => {
            let token = crate::keys::open_token(&module, &label, &ctx.hsm_pin)?;
            let key = token.generate_key_pair(alg, &format!("{name} CA key"))?;
            let id = key.id().to_vec();
            let location = Some(KeyLocation::Pkcs11 { module, token: label, id: hex::encode(&id) });
            Ok(NewKey { signer: Box::new(key), location, token: Some((token, id)) })
        }
        None => {
            let passphrase = ctx.passphrase.read(false)?;
            let key = SoftwareKey::generate(alg)?;
            hsm::write_encrypted_key_file(&ctx.dir.key(name), &key.to_encrypted_pem(passphrase.as_bytes())?)?;
            Ok(NewKey { signer: Box::new(key), location: None, token: None })
        }
    }
}

/// The next generation after `old` (a root or an issuing CA; `earlier`: its retired
/// predecessors): its name, a common name no earlier generation had, its key (on the token given
/// or the one `old` is on, else a file) and its ca.toml section.
fn next_generation(
    ctx: &Context,
    args: &NewCaArgs,
    old: &CaSection,
    earlier: &[RetiredCa],
    alg: KeyAlgorithm,
    validity_days: u32,
    what: &str,
) -> Result<(CaSection, NewKey), Failure> {
    let name = next_name(ctx, &old.name);
    let earlier = earlier.iter().map(|r| r.common_name.as_str()).chain([old.common_name.as_str()]);
    let common_name = new_common_name(args.common_name.as_deref(), &old.common_name, &name, earlier)?;
    if !ctx.json {
        eprintln!("generating the {name} {what} key ({alg}) …");
    }
    let key = new_key(ctx, &args.hsm, old.key.as_ref(), &name, alg)?;
    let section = CaSection {
        name,
        common_name,
        organisation: old.organisation.clone(),
        key_algorithm: alg.name().to_owned(),
        validity_days,
        policies: old.policies,
        key: key.location.clone(),
    };
    Ok((section, key))
}

/// `old` as a retired generation whose CRLs (and OCSP, with `ocsp_key`) are served until `until`.
fn retired(old: &CaSection, ocsp_key: Option<KeyLocation>, until: time::OffsetDateTime) -> RetiredCa {
    RetiredCa {
        name: old.name.clone(),
        common_name: old.common_name.clone(),
        key_algorithm: old.key_algorithm.clone(),
        key: old.key.clone(),
        ocsp_key,
        until,
    }
}

fn write_certificate(ctx: &Context, name: &str, der_bytes: &[u8]) -> Result<(), Failure> {
    let pem = crate::pem::encode("CERTIFICATE", der_bytes)?;
    for (path, bytes) in [(ctx.dir.certificate_pem(name), pem.as_bytes()), (ctx.dir.certificate_der(name), der_bytes)] {
        ca_core::fs::write_atomically(&path, bytes, ca_core::fs::AtomicWrite::PUBLIC)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Move the current OCSP responder's files to the retired CA's names (each rename on its own,
/// so a re-run after an interruption finishes the rest).
fn retire_ocsp_files(ctx: &Context, old: &str) -> Result<(), Failure> {
    for (from, to) in [
        (ctx.dir.ocsp_certificate(), ctx.dir.retired_ocsp_certificate(old)),
        (ctx.dir.ocsp_key(), ctx.dir.retired_ocsp_key(old)),
    ] {
        if from.exists() {
            std::fs::rename(&from, &to).with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Undo [`retire_ocsp_files`] when the rollover fails after it.
fn restore_ocsp_files(ctx: &Context, old: &str) {
    for (from, to) in [
        (ctx.dir.retired_ocsp_certificate(old), ctx.dir.ocsp_certificate()),
        (ctx.dir.retired_ocsp_key(old), ctx.dir.ocsp_key()),
    ] {
        if from.exists() && !to.exists() {
            let _ = std::fs::rename(&from, &to);
        }
    }
}

fn issuing(ctx: &Context, args: &NewCaArgs) -> Outcome {
    let old = ctx.config.issuing.clone();
    let alg = parse_algorithm(args.key_algorithm.as_deref().unwrap_or(&old.key_algorithm))?;
    let validity_days = args.validity_days.unwrap_or(old.validity_days);
    let end_entity_days = ctx.config.end_entity.validity_days;
    if validity_days <= end_entity_days {
        return Err(Failure::Input(format!(
            "the new issuing CA would be valid for {validity_days} days, not longer than the {end_entity_days} days \
             of the certificates it issues ([end_entity] validity_days): give a longer --validity-days"
        )));
    }
    let now = ctx.clock_now();
    let root = ctx.authority(&ctx.config.root.name)?;
    let (_, root_not_after) = root.validity();
    let not_after = now + Duration::days(validity_days.into());
    if not_after > root_not_after {
        return Err(Failure::Input(format!(
            "the root CA's certificate expires {}, before the new issuing CA would ({}): give a shorter \
             --validity-days, or roll the root over first",
            when(root_not_after),
            when(not_after)
        )));
    }
    // The old CA's certificates all end by then; nothing new is issued under it from here on.
    let until = ctx.store.latest_not_after(&old.name)?.unwrap_or(now).max(now);
    let (section, key) = next_generation(ctx, args, &old, &ctx.config.retired, alg, validity_days, "CA")?;
    let name = section.name.clone();
    let result = certify(ctx, &root, key.signer.as_ref(), &section).and_then(|issued| {
        retire_ocsp_files(ctx, &old.name)?;
        ca_core::failpoint::hit(ca_core::failpoint::ROLLOVER_PREPARED);
        let mut config = ctx.config.clone();
        let ocsp_key = config.server.ocsp_key.take();
        config.retired.push(retired(&old, ocsp_key, until));
        config.issuing = section.clone();
        if let Err(e) = config.replace(&ctx.dir.config()) {
            // ca.toml still names the old CA as the current one: its responder goes back.
            restore_ocsp_files(ctx, &old.name);
            return Err(e.into());
        }
        Ok(issued)
    });
    let issued = result.inspect_err(|_| key.discard(ctx, &name))?;
    let audit = AuditEvent::new(&ctx.actor, "ca.rollover").target(name.clone()).details(serde_json::json!({
        "serial": issued.serial.to_hex(), "retired": old.name, "until": when(until),
    }));
    ctx.store.append_audit(&audit)?;
    report(ctx, &name, &old.name, &issued, until);
    Ok(())
}

/// The new CA's certificate from the root, written under its name.
fn certify(
    ctx: &Context,
    root: &CertificateAuthority,
    key: &dyn Signer,
    section: &CaSection,
) -> Result<IssuedCertificate, Failure> {
    let subject =
        Subject::Service { common_name: section.common_name.clone(), organisation: section.organisation.clone() };
    let issued = root.create_subordinate(
        subject,
        key.public_key().clone(),
        Duration::days(section.validity_days.into()),
        ctx.store.as_ref(),
        &ctx.clock,
        &ctx.config.urls,
        &ctx.actor,
        section.policies,
    )?;
    write_certificate(ctx, &section.name, &issued.der)?;
    Ok(issued)
}

fn report(ctx: &Context, name: &str, old: &str, issued: &IssuedCertificate, until: time::OffsetDateTime) {
    if ctx.json {
        print_json(&serde_json::json!({
            "issuing": name, "serial": issued.serial.to_hex(), "not_after": when(issued.not_after),
            "certificate": ctx.dir.certificate_pem(name), "retired": old, "retired_until": when(until),
        }));
        return;
    }
    println!("New issuing CA {name}, serial {}, valid until {}", issued.serial, when(issued.not_after));
    println!("  {}", ctx.dir.certificate_pem(name).display());
    println!("{old} is retired: it issues nothing more; its CRLs are published until {}", when(until));
    println!("Next: `ca crl publish` (CRLs of both), `ca ocsp init` (a responder for {name}),");
    println!("      `ca system renew` (the system certificate from {name}); a running server reloads ca.toml.");
}

/// `ca rollover root`: a new self-signed root, its cross certificate from the current root,
/// ca.toml (the current root to `[[retired_roots]]`), then the new root's first CRL.
fn root(ctx: &Context, args: &NewCaArgs) -> Outcome {
    let old = ctx.config.root.clone();
    let alg = parse_algorithm(args.key_algorithm.as_deref().unwrap_or(&old.key_algorithm))?;
    let validity_days = args.validity_days.unwrap_or(old.validity_days);
    let issuing_days = ctx.config.issuing.validity_days;
    if validity_days <= issuing_days {
        return Err(Failure::Input(format!(
            "the new root would be valid for {validity_days} days, not longer than the {issuing_days} days of \
             the issuing CAs under it ([issuing] validity_days): give a longer --validity-days"
        )));
    }
    let old_root = ctx.authority(&old.name)?;
    let now = ctx.clock_now();
    let (section, key) = next_generation(ctx, args, &old, &ctx.config.retired_roots, alg, validity_days, "root")?;
    let name = section.name.clone();
    let result = (|| {
        let subject =
            Subject::Service { common_name: section.common_name.clone(), organisation: section.organisation.clone() };
        let validity = Duration::days(validity_days.into());
        let (store, clock, urls, actor) = (ctx.store.as_ref(), &ctx.clock, &ctx.config.urls, ctx.actor.as_str());
        let policies = section.policies;
        let signer = key.signer.as_ref();
        let new_root = CertificateAuthority::create_root(
            &name,
            subject.clone(),
            signer,
            validity,
            store,
            clock,
            urls,
            actor,
            policies,
        )?;
        write_certificate(ctx, &name, &new_root.der)?;
        // The cross certificate lives within the current root's validity.
        let (_, old_not_after) = old_root.validity();
        let cross_validity = validity.min(old_not_after - now);
        let public_key = signer.public_key().clone();
        // Certified at the instant the validity was computed from: read later, the clock could
        // put the end a second past the current root's and the issuer would refuse it.
        let at_now = ca_core::clock::FixedClock(now);
        let cross =
            old_root.create_cross(subject, public_key, cross_validity, store, &at_now, urls, actor, policies)?;
        write_certificate(ctx, &format!("{name}-cross"), &cross.der)?;
        // The old root's CA certificates (issuing CAs, the cross certificate) all end by then.
        let until = ctx.store.latest_not_after(&old.name)?.unwrap_or(now).max(now);
        let mut config = ctx.config.clone();
        config.retired_roots.push(retired(&old, None, until));
        config.root = section.clone();
        config.replace(&ctx.dir.config())?;
        Ok::<_, Failure>((new_root, cross, until))
    })();
    let (new_root, cross, until) = result.inspect_err(|_| key.discard(ctx, &name))?;
    // The new root's first (empty) CRL, which the issuing CAs it certifies will point at.
    let root_ca = CertificateAuthority::new(name.clone(), new_root.der.clone(), key.signer)
        .map_err(|e| Failure::Internal(e.into()))?;
    let publication = crate::commands::crl::PublicationDir::lock(&ctx.dir.publish_crl())?;
    let publisher = crate::commands::crl::Publisher {
        store: ctx.store.as_ref(),
        urls: &ctx.config.urls,
        actor: &ctx.actor,
        ca: &root_ca,
        dir: &publication,
        pem: false,
        now,
    };
    publisher.publish_root(ctx.config.crl.root_hours)?;
    let audit = AuditEvent::new(&ctx.actor, "ca.rollover-root").target(name.clone()).details(serde_json::json!({
        "serial": new_root.serial.to_hex(), "cross": cross.serial.to_hex(), "retired": old.name, "until": when(until),
    }));
    ctx.store.append_audit(&audit)?;
    let cross_path = ctx.dir.cross_certificate_pem(&name);
    if ctx.json {
        print_json(&serde_json::json!({
            "root": name, "serial": new_root.serial.to_hex(), "not_after": when(new_root.not_after),
            "certificate": ctx.dir.certificate_pem(&name), "cross": cross_path,
            "cross_serial": cross.serial.to_hex(), "retired": old.name, "retired_until": when(until),
        }));
        return Ok(());
    }
    println!("New root {name}, serial {}, valid until {}", new_root.serial, when(new_root.not_after));
    println!("  {}", ctx.dir.certificate_pem(&name).display());
    println!("Cross certificate ({name}'s key certified by {}), valid until {}", old.name, when(cross.not_after));
    println!("  {}", cross_path.display());
    println!("{} is retired: it certifies nothing more; its CRL is published until {}", old.name, when(until));
    println!("Next: `ca rollover issuing` (an issuing CA under {name}); give {name} to relying parties.");
    Ok(())
}
