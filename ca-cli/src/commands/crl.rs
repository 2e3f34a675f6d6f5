//! `ca crl publish`: full and delta CRLs of the issuing CA (and of each partition), written
//! atomically under stable names in the publication directory that `ca serve` serves at /crl/.
//!
//! Full and delta CRLs share one increasing CRL number sequence per CA. A delta lists every
//! change since its base full CRL: new revocations, holds made final, and released holds as
//! removeFromCRL. Revoking never builds a CRL; this command picks the changes up.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
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

/// Write `bytes` next to `path` and rename over it: readers see the old file or the new one.
fn write_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let dir = path.parent().context("publication path has no directory")?;
    let mut tmp = tempfile::Builder::new().prefix(".publishing-").tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn file_name(ca: &str, partition: Option<u32>, kind: CrlKind) -> String {
    let scope = partition.map_or(ca.to_owned(), |p| format!("{ca}_p{p}"));
    match kind {
        CrlKind::Full => format!("{scope}.crl"),
        CrlKind::Delta => format!("{scope}_d.crl"),
    }
}

struct Publisher<'a> {
    ctx: &'a Context,
    ca: &'a CertificateAuthority,
    out: PathBuf,
    pem: bool,
    now: OffsetDateTime,
}

impl Publisher<'_> {
    fn publish(&self, partition: Option<u32>, kind: CrlKind, base: Option<&CrlRecord>) -> Result<Published, Failure> {
        let store = self.ctx.store.as_ref();
        let issuer = &self.ca.name;
        let urls = &self.ctx.config.urls;
        let hours = match kind {
            CrlKind::Full => self.ctx.config.crl.full_hours,
            CrlKind::Delta => self.ctx.config.crl.delta_hours,
        };
        let next_update = self.now + Duration::hours(hours.max(1).into());
        let number = store.allocate_crl_number(issuer)?;
        let params = CrlParams {
            issuer: self.ca.subject().clone(),
            authority_key_id: self.ca.key_id().to_vec(),
            crl_number: number,
            this_update: self.now,
            next_update,
            delta_base: base.map(|b| b.number),
            // Partition CRLs say which certificates they cover; the one unpartitioned CRL
            // covers all of the CA's certificates without a partition.
            issuing_distribution_point: partition.map(|p| IssuingDistributionPoint {
                uri: match kind {
                    CrlKind::Full => urls.partition_crl(issuer, p),
                    CrlKind::Delta => urls.partition_delta_crl(issuer, p),
                },
                only_contains_user_certs: true,
            }),
            freshest_crl: (kind == CrlKind::Full).then(|| urls.delta_crl_for(issuer, partition)),
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
        let path = self.out.join(&name);
        let mut summary = None;
        write_atomically(&path, |f| {
            let mut w = std::io::BufWriter::new(f);
            summary = Some(builder.finish_into(&mut w)?);
            w.flush()?;
            Ok(())
        })
        .with_context(|| format!("publishing {}", path.display()))?;
        let summary = summary.expect("written");
        if self.pem {
            let der_bytes = std::fs::read(&path).with_context(|| format!("reading back {}", path.display()))?;
            let pem = crate::pem::encode("X509 CRL", &der_bytes)?;
            write_atomically(&self.out.join(name.replace(".crl", ".pem")), |f| Ok(f.write_all(pem.as_bytes())?))?;
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
        let audit = AuditEvent::new(&self.ctx.actor, "crl.publish").target(name.clone()).details(serde_json::json!({
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
}

/// Publish according to `args`; used by the command and the demo.
pub fn publish(ctx: &Context, args: &PublishArgs) -> Result<Vec<Published>, Failure> {
    let out = args.out.clone().unwrap_or_else(|| ctx.dir.publish_crl());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    let publisher = Publisher { ctx, ca: &ca, out, pem: args.pem, now: ctx.clock_now() };
    let mut scopes = vec![None];
    if let Some(n) = ctx.config.crl.partitions() {
        scopes.extend((0..n).map(Some));
    }
    let mut published = Vec::new();
    for partition in scopes {
        let last_full = ctx.store.last_crl(&ca.name, partition, CrlKind::Full)?;
        let base = match (args.which, last_full) {
            (Which::Delta, Some(full)) => full,
            _ => {
                let full = publisher.publish(partition, CrlKind::Full, None)?;
                let record = ctx.store.last_crl(&ca.name, partition, CrlKind::Full)?.expect("just recorded");
                published.push(full);
                if args.which == Which::Full {
                    continue;
                }
                record
            }
        };
        published.push(publisher.publish(partition, CrlKind::Delta, Some(&base))?);
    }
    Ok(published)
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
