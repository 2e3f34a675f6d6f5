//! `ca store`: the schema of the CA's store (`migrate`), and moving an embedded SQLite store into
//! PostgreSQL (`copy --to URL`) without re-issuing anything.

use anyhow::Context as _;
use ca_core::ca_dir::CaDir;
use ca_core::store::copy::{sqlite_to_postgres, CopyReport};
use ca_core::store::{AuditEvent, PostgresStore, SqliteStore, Store};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::failure::Failure;
use crate::output::print_json;
use crate::{Cli, Outcome};

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Apply the schema migrations this program knows to the CA's store and print its version
    /// (every command also does so on opening; this one reports it).
    Migrate,
    /// Copy this CA's embedded SQLite store (ca.db) into an empty PostgreSQL database and point
    /// ca.toml at it. Stop `ca serve`/`ca-server` first. The password comes from
    /// CA_STORE_PASSWORD or CA_STORE_PASSWORD_FILE, never from the URL.
    Copy(CopyArgs),
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The PostgreSQL database: `postgres://user@host:port/database`.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Serialize)]
struct MigrateReport {
    store: &'static str,
    version_before: i64,
    version: i64,
}

pub fn run(cli: &Cli, cmd: &StoreCommand) -> Outcome {
    let dir = CaDir::new(&cli.dir);
    match cmd {
        StoreCommand::Migrate => migrate(cli, &dir),
        StoreCommand::Copy(args) => copy(cli, &dir, args),
    }
}

fn migrate(cli: &Cli, dir: &CaDir) -> Outcome {
    let config = dir.load_config()?;
    let report = match &config.store.url {
        None => {
            let before = SqliteStore::check_file(&dir.store()).unwrap_or(0);
            let store = SqliteStore::open(&dir.store())?;
            MigrateReport { store: "sqlite", version_before: before, version: store.schema_version()? }
        }
        Some(url) => {
            let store = PostgresStore::connect_unmigrated(url, config.store.password()?.as_deref())?;
            let before = store.schema_version()?;
            MigrateReport { store: "postgres", version_before: before, version: store.migrate()? }
        }
    };
    if cli.json {
        print_json(&report);
    } else if report.version_before == report.version {
        println!("the {} store is at schema version {}; nothing to do", report.store, report.version);
    } else {
        println!(
            "the {} store moved from schema version {} to {}",
            report.store, report.version_before, report.version
        );
    }
    Ok(())
}

fn copy(cli: &Cli, dir: &CaDir, args: &CopyArgs) -> Outcome {
    let mut config = dir.load_config()?;
    if let Some(url) = &config.store.url {
        return Err(Failure::Already(format!(
            "this CA's store is already the PostgreSQL database {url}; nothing was changed"
        )));
    }
    if !dir.store().exists() {
        return Err(Failure::NotFound(format!("no store at {}", dir.store().display())));
    }
    let mut target = config.store.clone();
    target.url = Some(args.to.clone());
    let to = PostgresStore::connect(&args.to, target.password()?.as_deref())?;
    let from = SqliteStore::open(&dir.store())?;
    let report: CopyReport = sqlite_to_postgres(&from, &to)?;
    let event = AuditEvent::new(&cli.actor, "store.copy").details(serde_json::json!({
        "from": "sqlite",
        "to": "postgres",
        "entries": report.audit_entries,
        "head": report.audit_head,
        "tables": report.tables,
    }));
    to.append_audit(&event)?;
    config.store = target;
    config.replace(&dir.config()).context("pointing ca.toml at the PostgreSQL store")?;
    if cli.json {
        print_json(&report);
    } else {
        for (table, rows) in &report.tables {
            println!("{table:>20}: {rows} rows");
        }
        println!(
            "copied; the audit journal ({} entries, head {}) verifies on PostgreSQL, and ca.toml now names it. \
             {} is no longer used: keep it as the pre-move copy or remove it.",
            report.audit_entries,
            report.audit_head,
            dir.store().display()
        );
    }
    Ok(())
}
