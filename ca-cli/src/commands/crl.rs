//! `ca crl publish`: full and delta CRLs of the issuing CA (and of each partition), and of each
//! retired generation whose certificates may still be valid (`ca rollover issuing`), written
//! atomically under stable names in the publication directory that `ca serve` serves at /crl/.
//!
//! Full and delta CRLs share one increasing CRL number sequence per CA. A delta lists every
//! change since its base full CRL: new revocations, holds made final, and released holds as
//! removeFromCRL. Revoking never builds a CRL; this command picks the changes up.
//!
//! `--root` publishes the root CA's CRL instead (the CA certificates it revoked), signed with
//! the root key when it is present; see [`files`] for how the directory is kept consistent.

mod files;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use ca_core::ca_dir::KeyLocation;
use ca_core::config::PublicationUrls;
use ca_core::issuer::CertificateAuthority;
use ca_core::revocation::RevocationReason;
use ca_core::store::{AuditEvent, CrlKind, CrlRecord, RevokedEntry, Store, StoreError};
use clap::{Args, Subcommand, ValueEnum};
use crl::{CrlBuilder, CrlEntry, CrlParams, IssuingDistributionPoint};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::Outcome;
pub(crate) use files::PublicationDir;

#[derive(Subcommand, Debug)]
pub enum CrlCommand {
    /// Build, sign and publish CRLs.
    Publish(PublishArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// A full CRL and a delta on top of it.
    Both,
    /// Only a full CRL.
    Full,
    /// Only a delta on top of the last full CRL (a full one is made first if there is none).
    Delta,
}

#[derive(Args, Debug, Clone)]
pub struct PublishArgs {
    /// Which CRLs: both, full (daily) or delta (hourly).
    #[arg(long, value_enum, default_value = "both")]
    pub which: Which,
    /// Also write PEM copies (`<name>.pem`).
    #[arg(long)]
    pub pem: bool,
    /// Publication directory (default: publish/crl in the CA directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Publish the root CA's CRL instead (`root.crl`: the issuing CA certificates it revoked),
    /// signed with the root key, which must be present for this.
    #[arg(long, conflicts_with = "which")]
    pub root: bool,
}

#[derive(Serialize)]
pub struct Published {
    pub file: PathBuf,
    pub kind: CrlKind,
    pub partition: Option<u32>,
    pub number: u64,
    pub base_number: Option<u64>,
    pub entries: u64,
    pub bytes: usize,
    pub next_update: String,
}

fn file_name(ca: &str, partition: Option<u32>, kind: CrlKind) -> String {
    let scope = partition.map_or(ca.to_owned(), |p| format!("{ca}_p{p}"));
    match kind {
        CrlKind::Full => format!("{scope}.crl"),
        CrlKind::Delta => format!("{scope}_d.crl"),
    }
}

/// One CRL to publish.
struct Scope<'r> {
    partition: Option<u32>,
    kind: CrlKind,
    /// The full CRL a delta builds on.
    base: Option<&'r CrlRecord>,
    validity: Duration,
    /// Full CRLs of a CA that publishes deltas announce them (FreshestCRL).
    announce_deltas: bool,
}

/// Signs and publishes the CRLs of one CA. Neither the `ca` context nor the command line is
/// needed, so `ca init` publishes the root's first CRL with it too.
pub(crate) struct Publisher<'a> {
    pub store: &'a dyn Store,
    pub urls: &'a PublicationUrls,
    pub actor: &'a str,
    pub ca: &'a CertificateAuthority,
    pub dir: &'a PublicationDir,
    pub pem: bool,
    pub now: OffsetDateTime,
}

impl<'a> Publisher<'a> {
    /// A publisher for `ca` with the context's store, URLs, actor and clock.
    fn new(ctx: &'a Context, ca: &'a CertificateAuthority, dir: &'a PublicationDir, pem: bool) -> Self {
        Self {
            store: ctx.store.as_ref(),
            urls: &ctx.config.urls,
            actor: &ctx.actor,
            ca,
            dir,
            pem,
            now: ctx.clock_now(),
        }
    }

    /// Allocate a number, sign, write the file into place, then record it. A run that dies
    /// after the rename leaves a published CRL the store does not know; the next run sees that
    /// ([`PublicationDir::published_number`]) and replaces it under a new number.
    fn publish(&self, scope: &Scope<'_>) -> Result<Published, Failure> {
        let Scope { partition, kind, base, validity, announce_deltas } = *scope;
        let store = self.store;
        let issuer = &self.ca.name;
        let next_update = self.now + validity;
        let number = store.allocate_crl_number(issuer)?;
        let params = CrlParams {
            issuer: self.ca.subject().clone(),
            authority_key_id: self.ca.key_id().to_vec(),
            crl_number: number,
            this_update: self.now,
            next_update,
            delta_base: base.map(|b| b.number),
            // Partition CRLs say which certificates they cover: the URL in those certificates'
            // CRL distribution point. A delta names the same point as its base (RFC 5280
            // 5.2.5, 6.3.3), not its own file, or relying parties cannot pair them. The one
            // unpartitioned CRL covers all of the CA's certificates without a partition.
            issuing_distribution_point: partition.map(|p| IssuingDistributionPoint {
                uri: self.urls.partition_crl(issuer, p),
                only_contains_user_certs: true,
            }),
            freshest_crl: (kind == CrlKind::Full && announce_deltas)
                .then(|| self.urls.delta_crl_for(issuer, partition)),
        };
        let mut builder = CrlBuilder::new(&params, self.ca.signer()).map_err(|e| Failure::Internal(e.into()))?;
        let mut build_error = None;
        let mut sink = |e: RevokedEntry| -> Result<(), StoreError> {
            let entry = CrlEntry {
                serial: e.serial.as_bytes(),
                revoked_at: e.revoked_at,
                reason: Some(e.reason).filter(|r| *r != RevocationReason::Unspecified),
                invalidity_date: e.invalidity_date,
            };
            builder.push(&entry).map_err(|err| {
                let message = err.to_string();
                build_error = Some(err);
                StoreError::Database(format!("building the CRL: {message}"))
            })
        };
        let position = match base {
            None => store.revoked_snapshot(issuer, partition, &mut sink),
            Some(b) => store.revocation_changes(issuer, partition, b.event_seq, &mut sink),
        };
        if let Some(e) = build_error {
            return Err(Failure::Internal(e.into()));
        }
        let position = position?;
        let name = file_name(issuer, partition, kind);
        let pem_name = name.replace(".crl", ".pem");
        let mut summary = None;
        let path = self
            .dir
            .write(&name, |f| {
                let mut w = std::io::BufWriter::new(f);
                summary = Some(builder.finish_into(&mut w)?);
                w.flush()?;
                Ok(())
            })
            .with_context(|| format!("publishing {}", self.dir.path().join(&name).display()))?;
        let summary = summary.context("the CRL was written")?;
        if self.pem {
            let der_bytes = std::fs::read(&path).with_context(|| format!("reading back {}", path.display()))?;
            let pem = crate::pem::encode("X509 CRL", &der_bytes)?;
            self.dir.write(&pem_name, |f| Ok(f.write_all(pem.as_bytes())?))?;
        } else {
            // A PEM copy from an earlier `--pem` run would now contradict the DER file.
            self.dir.remove(&pem_name)?;
        }
        let record = CrlRecord {
            issuer: issuer.clone(),
            partition,
            kind,
            number,
            base_number: base.map(|b| b.number),
            this_update: self.now,
            next_update,
            event_seq: position,
        };
        let audit = AuditEvent::new(self.actor, "crl.publish").target(name.clone()).details(serde_json::json!({
            "kind": kind.as_str(), "number": number, "base": record.base_number, "entries": summary.entries,
            "partition": partition,
        }));
        store.record_crl(&record, &audit)?;
        Ok(Published {
            file: path,
            kind,
            partition,
            number,
            base_number: record.base_number,
            entries: summary.entries,
            bytes: summary.len,
            next_update: when(next_update),
        })
    }

    /// Whether the CRL published as `kind` for `partition` is the one the store recorded last.
    /// A file the store does not know (or cannot be read) is reported once on stderr.
    fn published_is_recorded(&self, partition: Option<u32>, kind: CrlKind, last: Option<&CrlRecord>) -> bool {
        let name = file_name(&self.ca.name, partition, kind);
        let problem = match (self.dir.published_number(&name), last) {
            (Ok(None), None) => return true,
            (Ok(Some(n)), Some(r)) if n == r.number => return true,
            (Ok(None), Some(r)) => format!("{name} is missing (the store recorded CRL number {})", r.number),
            (Ok(Some(n)), r) => format!(
                "{name} carries CRL number {n}, which the store did not record (last recorded: {}); an interrupted publication?",
                r.map_or("none".to_owned(), |r| r.number.to_string())
            ),
            (Err(e), _) => format!("the published {name} is unreadable: {e}"),
        };
        tracing::info!(%problem, "replacing a published CRL");
        eprintln!("note: {problem}; publishing a new {} CRL", kind.as_str());
        false
    }
}

fn hours(h: u32) -> Duration {
    Duration::hours(h.max(1).into())
}

/// Publish according to `args`; used by the command and the demo.
pub fn publish(ctx: &Context, args: &PublishArgs) -> Result<Vec<Published>, Failure> {
    if args.root {
        return publish_root(ctx, args);
    }
    let dir = PublicationDir::lock(&args.out.clone().unwrap_or_else(|| ctx.dir.publish_crl()))?;
    // The current issuing CA, and each retired generation whose certificates may still be valid
    // (`ca rollover issuing`), with its own files and CRL numbers.
    let now = ctx.clock_now();
    let generations = std::iter::once(ctx.config.issuing.name.as_str())
        .chain(ctx.config.retired.iter().filter(|r| r.serving(now)).map(|r| r.name.as_str()));
    let mut published = Vec::new();
    for name in generations {
        let ca = ctx.authority(name)?;
        published.extend(publish_ca(ctx, args, &dir, &ca)?);
    }
    Ok(published)
}

/// The full and delta CRLs (of each partition) of one issuing CA.
fn publish_ca(
    ctx: &Context,
    args: &PublishArgs,
    dir: &PublicationDir,
    ca: &CertificateAuthority,
) -> Result<Vec<Published>, Failure> {
    let publisher = Publisher::new(ctx, ca, dir, args.pem);
    let crl = &ctx.config.crl;
    let mut scopes = vec![None];
    if let Some(n) = crl.partitions() {
        scopes.extend((0..n).map(Some));
    }
    let mut published = Vec::new();
    for partition in scopes {
        let last_full = ctx.store.last_crl(&ca.name, partition, CrlKind::Full)?;
        let full_ok =
            args.which != Which::Delta || publisher.published_is_recorded(partition, CrlKind::Full, last_full.as_ref());
        let base = match last_full {
            Some(full) if args.which == Which::Delta && full_ok => full,
            _ => {
                let full = Scope {
                    partition,
                    kind: CrlKind::Full,
                    base: None,
                    validity: hours(crl.full_hours),
                    announce_deltas: true,
                };
                published.push(publisher.publish(&full)?);
                ctx.store.last_crl(&ca.name, partition, CrlKind::Full)?.context("the full CRL just recorded")?
            }
        };
        if args.which == Which::Full {
            // A delta file the store does not know is replaced even in a full-only run.
            let last_delta = ctx.store.last_crl(&ca.name, partition, CrlKind::Delta)?;
            let name = file_name(&ca.name, partition, CrlKind::Delta);
            if matches!(dir.published_number(&name), Ok(None))
                || publisher.published_is_recorded(partition, CrlKind::Delta, last_delta.as_ref())
            {
                continue;
            }
        }
        let delta = Scope {
            partition,
            kind: CrlKind::Delta,
            base: Some(&base),
            validity: hours(crl.delta_hours),
            announce_deltas: false,
        };
        published.push(publisher.publish(&delta)?);
    }
    Ok(published)
}

/// The root CA's CRL (ARL): the issuing CA certificates it revoked, signed with the root key,
/// which may be kept offline. Its own CRL number sequence, no deltas, `crl.root_hours`. After
/// `ca rollover root`, each earlier root's CRL too while CA certificates it issued (the issuing
/// CAs under it, the cross certificate) may be valid.
fn publish_root(ctx: &Context, args: &PublishArgs) -> Result<Vec<Published>, Failure> {
    let now = ctx.clock_now();
    let retired = ctx.config.retired_roots.iter().filter(|r| r.serving(now)).map(|r| (r.name.as_str(), r.key.as_ref()));
    let roots: Vec<_> =
        std::iter::once((ctx.config.root.name.as_str(), ctx.config.root.key.as_ref())).chain(retired).collect();
    for (name, key) in &roots {
        let key_file = ctx.dir.key(name);
        if matches!(key, None | Some(KeyLocation::File)) && !key_file.exists() {
            return Err(Failure::NotFound(format!(
                "the root CA's key is not here ({} is missing; it may be kept offline): bring it back and run \
                 `ca crl publish --root` again. Until then the root CRL stays as last published.",
                key_file.display()
            )));
        }
    }
    let dir = PublicationDir::lock(&args.out.clone().unwrap_or_else(|| ctx.dir.publish_crl()))?;
    let mut published = Vec::new();
    for (name, _) in roots {
        let root = ctx.authority(name)?;
        let publisher = Publisher::new(ctx, &root, &dir, args.pem);
        published.push(publisher.publish_root(ctx.config.crl.root_hours)?);
    }
    Ok(published)
}

impl Publisher<'_> {
    /// The root's full CRL, valid `root_hours`.
    pub fn publish_root(&self, root_hours: u32) -> Result<Published, Failure> {
        let scope = Scope {
            partition: None,
            kind: CrlKind::Full,
            base: None,
            validity: hours(root_hours),
            announce_deltas: false,
        };
        self.publish(&scope)
    }
}

pub fn run(ctx: &Context, cmd: &CrlCommand) -> Outcome {
    let CrlCommand::Publish(args) = cmd;
    let published = publish(ctx, args)?;
    if ctx.json {
        print_json(&published);
    } else {
        for p in &published {
            println!(
                "{:<5} CRL #{:<4} {:>8} entries  {:>10} bytes  next update {}  {}",
                p.kind.as_str(),
                p.number,
                p.entries,
                p.bytes,
                p.next_update,
                p.file.display()
            );
        }
    }
    Ok(())
}
