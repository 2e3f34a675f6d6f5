//! Interrupted `ca issue` runs. Before it reserves a serial, `ca issue` durably writes a marker
//! `issued/.pending/<ski>.json` naming the public key and the files it is about to write; the
//! marker is removed once they are written. The next `ca issue` settles every marker it finds:
//!
//! - nothing was recorded as issued (the run stopped before the record): nothing to do — a
//!   reserved serial stays reserved and unused;
//! - the certificate was recorded and, for a generated key, the PKCS#12 file is complete: the
//!   certificate file is written if it is missing (from the store), and the issuance is complete;
//! - the certificate was recorded but the generated key's PKCS#12 was never written: the key is
//!   lost, so the certificate is revoked (cessationOfOperation).
//!
//! Several `ca issue` processes may run in one CA directory at once, so a marker is settled only
//! when its run is over: the run holds an exclusive advisory lock (`flock`) on
//! `issued/.pending/<ski>.lock` from before it writes the marker until the marker is removed, and
//! the kernel releases it however the process ends. Settling takes the same lock without
//! waiting; a marker whose lock is held belongs to a run in progress and is left alone.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ca_core::fs::{remove_durably, write_atomically, AtomicWrite};
use ca_core::identity::{Bin, Iin};
use ca_core::revocation::RevocationReason;
use ca_core::store::{CertificateQuery, CertificateRecord};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::failure::Failure;

/// What an issuance in progress is about to write.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    /// Subject key identifier (hex) of the certificate's public key.
    pub ski: String,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    /// Unix seconds before the serial was reserved.
    pub started_at: i64,
    /// The certificate file (`--out`); `None`: `issued/<serial>.pem`.
    pub certificate: Option<PathBuf>,
    /// The key store, when the key is generated here.
    pub pkcs12: Option<PathBuf>,
}

/// What settling one marker did.
#[derive(Debug, Serialize)]
pub struct Settled {
    pub ski: String,
    pub serial: Option<String>,
    /// "nothing-issued", "completed" or "revoked".
    pub outcome: &'static str,
}

fn pending_dir(ctx: &Context) -> PathBuf {
    ctx.dir.issued().join(".pending")
}

/// An issuance marker in place, with the lock that says its run is in progress.
#[derive(Debug)]
pub struct Marker {
    path: PathBuf,
    lock: Lock,
}

/// The exclusive lock on `<ski>.lock`, held while the file under that name is the one locked.
#[derive(Debug)]
struct Lock {
    path: PathBuf,
    _file: File,
}

impl Lock {
    /// Lock `path` without waiting; `None` when another process holds it.
    fn try_take(path: &Path) -> std::io::Result<Option<Self>> {
        loop {
            let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            // The holder removes the file before it unlocks: a lock taken on a name that was
            // removed (or replaced) meanwhile protects nothing, so try again on the current one.
            match std::fs::metadata(path) {
                Ok(m) if m.ino() == file.metadata()?.ino() && m.dev() == file.metadata()?.dev() => {
                    return Ok(Some(Self { path: path.to_owned(), _file: file }))
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Remove the lock file, then (on drop) unlock.
    fn release(self) -> std::io::Result<()> {
        remove_durably(&self.path)
    }
}

fn lock_path(dir: &Path, ski: &str) -> PathBuf {
    dir.join(format!("{ski}.lock"))
}

fn internal(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Internal(anyhow::anyhow!("{}: {e}", path.display()))
}

impl Pending {
    /// Lock the key's marker and write the marker durably; refused if an issuance for the same
    /// key is in progress.
    pub fn begin(&self, ctx: &Context) -> Result<Marker, Failure> {
        let dir = pending_dir(ctx);
        std::fs::create_dir_all(&dir).map_err(|e| internal(&dir, e))?;
        let path = dir.join(format!("{}.json", self.ski));
        let in_progress =
            || Failure::Already(format!("an issuance for this public key is in progress ({})", path.display()));
        let lock_file = lock_path(&dir, &self.ski);
        let lock = Lock::try_take(&lock_file).map_err(|e| internal(&lock_file, e))?.ok_or_else(in_progress)?;
        let text = serde_json::to_vec_pretty(self).map_err(|e| Failure::Internal(e.into()))?;
        write_atomically(&path, &text, AtomicWrite::PRIVATE_NEW).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                in_progress()
            } else {
                internal(&path, e)
            }
        })?;
        Ok(Marker { path, lock })
    }
}

/// The issuance is delivered (or settled): drop its marker, then its lock.
pub fn finish(marker: Marker) -> Result<(), Failure> {
    remove_durably(&marker.path).map_err(|e| internal(&marker.path, e))?;
    let lock_file = marker.lock.path.clone();
    marker.lock.release().map_err(|e| internal(&lock_file, e))
}

/// Settle the markers of interrupted runs (see the module documentation); markers of runs in
/// progress in other processes are left to them.
pub fn settle_all(ctx: &Context) -> Result<Vec<Settled>, Failure> {
    let dir = pending_dir(ctx);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ca_core::fs::is_partial(&name) {
            // A marker that was never in place: its run stopped before reserving anything —
            // unless that run is still writing it.
            let ski = name.trim_start_matches('.').split_once(".json.partial-").map(|(ski, _)| ski.to_owned());
            if let Some(ski) = ski {
                let lock_file = lock_path(&dir, &ski);
                if let Some(lock) = Lock::try_take(&lock_file).map_err(|e| internal(&lock_file, e))? {
                    let _ = std::fs::remove_file(&path);
                    if !dir.join(format!("{ski}.json")).exists() {
                        lock.release().map_err(|e| internal(&lock_file, e))?;
                    }
                }
            }
            continue;
        }
        let Some(ski) = name.strip_suffix(".json") else { continue };
        let lock_file = lock_path(&dir, ski);
        let Some(lock) = Lock::try_take(&lock_file).map_err(|e| internal(&lock_file, e))? else {
            continue; // a run in progress
        };
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            // Finished by its run between the listing and the lock.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                lock.release().map_err(|e| internal(&lock_file, e))?;
                continue;
            }
            Err(e) => return Err(internal(&path, e)),
        };
        let pending: Pending = serde_json::from_slice(&text)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("{} is not an issuance marker: {e}", path.display())))?;
        out.push(settle(ctx, &pending)?);
        finish(Marker { path, lock })?;
    }
    Ok(out)
}

/// `issued/<serial>.pem`.
pub fn default_certificate_path(ctx: &Context, serial: &ca_core::serial::SerialNumber) -> PathBuf {
    ctx.dir.issued().join(format!("{serial}.pem"))
}

/// Settle one interrupted (or failed) issuance.
pub fn settle(ctx: &Context, p: &Pending) -> Result<Settled, Failure> {
    let Some(record) = recorded(ctx, p)? else {
        return Ok(Settled { ski: p.ski.clone(), serial: None, outcome: "nothing-issued" });
    };
    let serial = Some(record.serial.to_hex());
    let key_lost = p.pkcs12.as_ref().is_some_and(|k| !k.is_file());
    if key_lost {
        if record.revocation.is_none() {
            ca_core::revocation::revoke(
                ctx.store.as_ref(),
                &ctx.clock,
                &record.serial,
                RevocationReason::CessationOfOperation,
                None,
                &format!("{} (interrupted issuance: key lost)", ctx.actor),
            )
            .map_err(|e| Failure::Internal(e.into()))?;
        }
        if let Some(k) = &p.pkcs12 {
            super::delivery::remove_partials(k);
        }
        return Ok(Settled { ski: p.ski.clone(), serial, outcome: "revoked" });
    }
    let certificate = p.certificate.clone().unwrap_or_else(|| default_certificate_path(ctx, &record.serial));
    if !certificate.is_file() {
        super::delivery::remove_partials(&certificate);
        let der = record.der.ok_or_else(|| Failure::Internal(anyhow::anyhow!("certificate {serial:?} has no DER")))?;
        let pem = crate::pem::encode("CERTIFICATE", &der)?;
        write_atomically(&certificate, pem.as_bytes(), AtomicWrite::NEW)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("{}: {e}", certificate.display())))?;
    }
    Ok(Settled { ski: p.ski.clone(), serial, outcome: "completed" })
}

/// The certificate the interrupted run recorded for this key, if it got that far.
fn recorded(ctx: &Context, p: &Pending) -> Result<Option<CertificateRecord>, Failure> {
    use der::Decode;
    let query = CertificateQuery {
        iin: p.iin,
        bin: p.bin,
        issuer: Some(ctx.config.issuing.name.clone()),
        limit: (p.iin.is_none() && p.bin.is_none()).then_some(10_000),
        ..Default::default()
    };
    for record in ctx.store.find(&query)? {
        if record.issued_at.is_none_or(|t| t.unix_timestamp() < p.started_at) {
            continue;
        }
        let full = match record.der {
            Some(_) => record,
            None => match ctx.store.certificate(&record.serial)? {
                Some(r) => r,
                None => continue,
            },
        };
        let Some(der) = &full.der else { continue };
        let Ok(cert) = x509_cert::Certificate::from_der(der) else { continue };
        if hex::encode(ca_core::profile::key_identifier(&cert.tbs_certificate.subject_public_key_info)) == p.ski {
            return Ok(Some(full));
        }
    }
    Ok(None)
}
