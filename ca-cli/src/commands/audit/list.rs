//! `ca audit list|export`: journal entries by time range and actor. `export` writes JSON lines
//! (one entry per line, as `ca audit list --json` prints them), to a file or stdout.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use ca_core::store::{AuditEntry, AuditQuery, StoreError};
use clap::Args;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::when;
use crate::Outcome;

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Entries at or after this time (RFC 3339, e.g. 2026-05-01T00:00:00+05:00).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only the entries of this actor (exactly as journaled, e.g. `ca-cli` or `operator … (serial)`;
    /// `--actor` is the global option naming who runs the command).
    #[arg(long = "by", value_name = "ACTOR")]
    pub by: Option<String>,
    /// At most this many entries (the oldest that match).
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: ListArgs,
    /// Write to this file (created, not overwritten) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

fn time_arg(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, Failure> {
    value
        .map(|v| {
            OffsetDateTime::parse(v.trim(), &Rfc3339)
                .map_err(|e| Failure::Input(format!("--{name} {v:?} is not an RFC 3339 time: {e}")))
        })
        .transpose()
}

fn query(args: &ListArgs) -> Result<AuditQuery, Failure> {
    let from = time_arg("from", args.from.as_deref())?;
    let until = time_arg("until", args.until.as_deref())?;
    if let (Some(f), Some(u)) = (from, until) {
        if f >= u {
            return Err(Failure::Input("--from must be before --until".into()));
        }
    }
    Ok(AuditQuery { from, until, actor: args.by.clone(), limit: args.limit })
}

/// One entry as a JSON line.
fn json_line(entry: &AuditEntry) -> Result<String, StoreError> {
    serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(format!("audit entry {}: {e}", entry.seq)))
}

/// Stream the matching entries to `out`, one `line` each. A closed pipe (`ca audit list | head`)
/// ends the listing quietly.
fn stream(
    ctx: &Context,
    query: &AuditQuery,
    out: &mut dyn Write,
    line: impl Fn(&AuditEntry) -> Result<String, StoreError>,
) -> Outcome {
    let mut write_error: Option<std::io::Error> = None;
    let result = ctx.store.audit_entries(query, &mut |entry| {
        let text = line(&entry)?;
        writeln!(out, "{text}").map_err(|e| {
            let message = format!("writing the listing: {e}");
            write_error = Some(e);
            StoreError::Database(message)
        })
    });
    match write_error {
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => return Err(Failure::Internal(anyhow::Error::new(e).context("writing the listing"))),
        None => result?,
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("writing the listing")?),
    }
}

pub fn list(ctx: &Context, args: &ListArgs) -> Outcome {
    let query = query(args)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if ctx.json {
        return stream(ctx, &query, &mut out, json_line);
    }
    stream(ctx, &query, &mut out, |e| {
        let target = e.event.target.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
        let details = if e.event.details.is_null() { String::new() } else { format!(" {}", e.event.details) };
        Ok(format!("{:>6} {} {} {}{target}{details}", e.seq, when(e.at), e.event.actor, e.event.action))
    })
}

pub fn export(ctx: &Context, args: &ExportArgs) -> Outcome {
    let query = query(&args.filter)?;
    match &args.out {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| Failure::Input(format!("cannot create {}: {e}", path.display())))?;
            let mut out = std::io::BufWriter::new(file);
            stream(ctx, &query, &mut out, json_line)?;
            out.into_inner()
                .map_err(|e| Failure::Internal(e.into_error().into()))?
                .sync_all()
                .context("syncing the export")?;
            Ok(())
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            stream(ctx, &query, &mut out, json_line)
        }
    }
}
