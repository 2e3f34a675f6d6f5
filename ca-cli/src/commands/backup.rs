//! `ca backup DEST`, `ca backup verify DIR`, `ca restore BACKUP --dir NEW`.
//!
//! A backup is a new directory holding a consistent copy of the store (SQLite's online backup
//! API: one snapshot, taken while the server keeps running), every other file of the CA
//! directory byte for byte — configuration, certificates, the CA's and the service's keys
//! *as encrypted at rest*, applicants' PKCS#12 files, published CRLs, the outbox maildir — and
//! `MANIFEST.json` with the size, mode and SHA-256 of each file and the head of the audit
//! journal. Nothing is decrypted; a file holding a private key in clear stops the backup. The
//! backup is built in a scratch directory and renamed into place complete.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ca_core::ca_dir::{CaDir, CONFIG_FILE, STORE_FILE};
use ca_core::store::{SqliteStore, Store};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::context::Context;
use crate::failure::Failure;
use crate::output::print_json;
use crate::Outcome;

pub const MANIFEST: &str = "MANIFEST.json";
const FORMAT: u32 = 1;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// A new directory for the backup (not inside the CA directory).
    #[arg(required = true)]
    pub dest: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Check a backup: every file against the manifest, nothing missing or extra, the store's
    /// integrity.
    Verify {
        /// The backup directory (as `ca backup DEST` made it).
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup directory; it is restored into --dir, which must not exist.
    pub backup: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    pub source: PathBuf,
    pub schema_version: i64,
    pub audit_entries: u64,
    pub audit_head: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the CA directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub mode: u32,
    pub sha256: String,
}

/// What `backup verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub files: usize,
    pub audit_entries: u64,
    pub audit_head: String,
    pub problems: Vec<String>,
}

fn internal(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Internal(e.into())
}

pub fn run(cli: &crate::Cli, args: &BackupArgs) -> Outcome {
    if let Some(BackupCommand::Verify { dir }) = &args.command {
        return verify_command(dir, cli.json);
    }
    let dest = args.dest.as_deref().ok_or_else(|| Failure::Input("give the backup directory".into()))?;
    let ctx = Context::open(cli)?;
    let manifest = create(&ctx, dest)?;
    if cli.json {
        print_json(&manifest);
    } else {
        println!(
            "backup of {} in {}: {} files, audit journal {} entries, head {}",
            cli.dir.display(),
            dest.display(),
            manifest.files.len(),
            manifest.audit_entries,
            manifest.audit_head
        );
    }
    Ok(())
}

/// Make a backup of the CA in `ctx` at `dest` (which must not exist).
pub fn create(ctx: &Context, dest: &Path) -> Result<Manifest, Failure> {
    let Some(sqlite) = ctx.store.as_sqlite() else {
        return Err(Failure::Input(format!(
            "ca backup copies an embedded SQLite store; this CA's store is {}: back the database up with \
             pg_basebackup or pg_dump, and the CA directory by copying it",
            ctx.store.kind()
        )));
    };
    if dest.exists() {
        return Err(Failure::Input(format!("{} exists; a backup goes into a new directory", dest.display())));
    }
    let root = ctx.dir.root.canonicalize().with_context(|| format!("{}", ctx.dir.root.display()))?;
    let scratch = scratch_for(dest)?;
    if scratch.starts_with(&root) {
        return Err(Failure::Input(format!("{} is inside the CA directory", dest.display())));
    }
    // Refused before anything is written.
    let files = files_of(&root)?;
    for rel in &files {
        refuse_clear_key(&root.join(rel))?;
    }
    let result = (|| {
        std::fs::create_dir(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
        set_mode(&scratch, 0o700)?;
        let audit = sqlite.backup_to(&scratch.join(STORE_FILE))?;
        if !audit.is_intact() {
            tracing::warn!(problems = audit.problems.len(), "the audit journal in the backup has problems");
        }
        for rel in &files {
            let (from, to) = (root.join(rel), scratch.join(rel));
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            copy_durably(&from, &to)?;
        }
        let manifest = manifest_of(&scratch, &root, audit)?;
        let text = serde_json::to_vec_pretty(&manifest).map_err(internal)?;
        ca_core::fs::write_atomically(&scratch.join(MANIFEST), &text, ca_core::fs::AtomicWrite::NEW)
            .context("writing the manifest")?;
        sync_tree(&scratch)?;
        std::fs::rename(&scratch, dest).with_context(|| format!("cannot move the backup to {}", dest.display()))?;
        ca_core::fs::sync_dir(parent_of(dest)).context("syncing the backup's directory")?;
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

/// The files of a CA directory to copy as they are: everything but the store (copied through
/// SQLite) and temporary files of interrupted writes. Sorted, relative.
fn files_of(root: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let name = entry.file_name();
            let name_str = name.to_string_lossy();
            let path = rel.join(&name);
            let meta = std::fs::metadata(entry.path()).with_context(|| format!("{}", entry.path().display()))?;
            if meta.is_dir() {
                stack.push(path);
            } else if rel.as_os_str().is_empty() && name_str.starts_with(STORE_FILE) {
                // ca.db and its -wal/-shm/-journal: the snapshot is taken through SQLite.
            } else if ca_core::fs::is_partial(&name_str) {
            } else if meta.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A private key in clear has no place in the CA directory, let alone in a backup.
fn refuse_clear_key(path: &Path) -> Result<(), Failure> {
    const CLEAR: [&[u8]; 3] =
        [b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----", b"-----BEGIN EC PRIVATE KEY-----"];
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if CLEAR.iter().any(|marker| bytes.windows(marker.len()).any(|w| w == *marker)) {
        return Err(Failure::Refused(format!(
            "{} holds a private key in clear; a backup never copies clear keys (encrypt it or move it out of the CA directory)",
            path.display()
        )));
    }
    Ok(())
}

fn manifest_of(dir: &Path, source: &Path, audit: ca_core::store::AuditVerification) -> Result<Manifest, Failure> {
    let schema_version = SqliteStore::check_file(&dir.join(STORE_FILE))?;
    let mut files = vec![PathBuf::from(STORE_FILE)];
    files.extend(files_of(dir)?.into_iter().filter(|p| p != Path::new(MANIFEST)));
    let files = files.iter().map(|rel| entry(dir, rel)).collect::<Result<Vec<_>, _>>()?;
    Ok(Manifest {
        format: FORMAT,
        created_at: time::OffsetDateTime::now_utc(),
        source: source.to_owned(),
        schema_version,
        audit_entries: audit.entries,
        audit_head: audit.head,
        files,
    })
}

fn entry(dir: &Path, rel: &Path) -> Result<FileEntry, Failure> {
    let path = dir.join(rel);
    let meta = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
    Ok(FileEntry {
        path: rel.iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/"),
        bytes: meta.len(),
        mode: mode_of(&meta),
        sha256: sha256_file(&path)?,
    })
}

fn sha256_file(path: &Path) -> Result<String, Failure> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Check a backup against its manifest.
pub fn verify(dir: &Path) -> Result<(Manifest, Verification), Failure> {
    let text = std::fs::read(dir.join(MANIFEST))
        .map_err(|e| Failure::NotFound(format!("{}: no backup manifest ({e})", dir.display())))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| Failure::Integrity(format!("{} is not a backup manifest: {e}", dir.join(MANIFEST).display())))?;
    let mut problems = Vec::new();
    if manifest.format != FORMAT {
        problems.push(format!("unknown backup format {}", manifest.format));
    }
    for f in &manifest.files {
        let rel = safe_relative(&f.path)?;
        let path = dir.join(&rel);
        match std::fs::metadata(&path) {
            Err(_) => problems.push(format!("{}: missing", f.path)),
            Ok(m) if m.len() != f.bytes => {
                problems.push(format!("{}: {} bytes, expected {}", f.path, m.len(), f.bytes))
            }
            Ok(_) if sha256_file(&path)? != f.sha256 => problems.push(format!("{}: SHA-256 differs", f.path)),
            Ok(_) => {}
        }
    }
    let listed: std::collections::HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for rel in files_of(dir)? {
        let rel = rel.iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/");
        if rel != MANIFEST && !listed.contains(rel.as_str()) {
            problems.push(format!("{rel}: not in the manifest"));
        }
    }
    if !listed.contains(STORE_FILE) || !listed.contains(CONFIG_FILE) {
        problems.push(format!("the backup has no {STORE_FILE} or no {CONFIG_FILE}"));
    }
    if problems.is_empty() {
        match SqliteStore::check_file(&dir.join(STORE_FILE)) {
            Ok(v) if v != manifest.schema_version => {
                problems.push(format!("{STORE_FILE}: schema version {v}, manifest says {}", manifest.schema_version))
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{STORE_FILE}: {e}")),
        }
    }
    let v = Verification {
        files: manifest.files.len(),
        audit_entries: manifest.audit_entries,
        audit_head: manifest.audit_head.clone(),
        problems,
    };
    Ok((manifest, v))
}

fn verify_command(dir: &Path, json: bool) -> Outcome {
    let (_, v) = verify(dir)?;
    if json {
        print_json(&v);
    } else if v.problems.is_empty() {
        println!("backup intact: {} files, audit journal {} entries, head {}", v.files, v.audit_entries, v.audit_head);
    } else {
        println!("backup DAMAGED: {} problem(s)", v.problems.len());
        for p in &v.problems {
            println!("  {p}");
        }
    }
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Integrity(format!("the backup {} has {} problem(s)", dir.display(), v.problems.len())))
    }
}

/// Restore `args.backup` into the new CA directory `target`.
pub fn restore(target: &Path, args: &RestoreArgs, json: bool) -> Outcome {
    if target.exists() {
        return Err(Failure::Input(format!(
            "{} exists; a backup is restored only into a new directory (nothing was changed)",
            target.display()
        )));
    }
    let (manifest, v) = verify(&args.backup)?;
    if !v.problems.is_empty() {
        return Err(Failure::Integrity(format!(
            "the backup {} does not match its manifest ({}); nothing was restored",
            args.backup.display(),
            v.problems.join("; ")
        )));
    }
    let scratch = scratch_for(target)?;
    let result = (|| {
        std::fs::create_dir(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
        set_mode(&scratch, 0o700)?;
        for f in &manifest.files {
            let rel = safe_relative(&f.path)?;
            let to = scratch.join(&rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            copy_durably(&args.backup.join(&rel), &to)?;
            set_mode(&to, f.mode)?;
            if sha256_file(&to)? != f.sha256 {
                return Err(Failure::Integrity(format!("{}: changed while it was restored", f.path)));
            }
        }
        // The restored journal must end where the backup's did.
        let store = SqliteStore::open(&CaDir::new(&scratch).store()).context("opening the restored store")?;
        let audit = store.verify_audit()?;
        drop(store);
        if audit.head != manifest.audit_head || !audit.is_intact() {
            return Err(Failure::Integrity(format!(
                "the restored audit journal ({} entries, head {}) is not the one backed up ({} entries, head {})",
                audit.entries, audit.head, manifest.audit_entries, manifest.audit_head
            )));
        }
        sync_tree(&scratch)?;
        std::fs::rename(&scratch, target).with_context(|| format!("cannot move into {}", target.display()))?;
        ca_core::fs::sync_dir(parent_of(target)).context("syncing the restored directory's parent")?;
        Ok(audit)
    })();
    let audit = match result {
        Ok(a) => a,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };
    if json {
        print_json(&serde_json::json!({
            "restored": target, "files": manifest.files.len(), "audit_entries": audit.entries, "audit_head": audit.head,
        }));
    } else {
        println!(
            "restored {} files into {}; audit journal intact: {} entries, head {}",
            manifest.files.len(),
            target.display(),
            audit.entries,
            audit.head
        );
    }
    Ok(())
}

/// A manifest path must stay inside the backup.
fn safe_relative(path: &str) -> Result<PathBuf, Failure> {
    let rel = PathBuf::from(path);
    let ok = !path.is_empty() && rel.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(rel)
    } else {
        Err(Failure::Integrity(format!("the manifest names {path:?}, which is not a path inside the backup")))
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn scratch_for(dest: &Path) -> Result<PathBuf, Failure> {
    let name = dest
        .file_name()
        .ok_or_else(|| Failure::Input(format!("{} names no directory", dest.display())))?
        .to_string_lossy();
    let parent = parent_of(dest);
    let parent = parent.canonicalize().with_context(|| format!("{}", parent.display()))?;
    Ok(parent.join(format!(".{name}.partial-{}", std::process::id())))
}

fn copy_durably(from: &Path, to: &Path) -> Result<(), Failure> {
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    File::open(to).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", to.display()))?;
    Ok(())
}

/// Sync every directory of a tree, so the renamed tree is durable with all its entries.
fn sync_tree(root: &Path) -> Result<(), Failure> {
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let entry = entry.map_err(internal)?;
            if entry.file_type().map_err(internal)?.is_dir() {
                stack.push(entry.path());
            }
        }
        ca_core::fs::sync_dir(&dir).with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(())
}

fn mode_of(meta: &std::fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0o600
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    let _ = (path, mode);
    Ok(())
}
