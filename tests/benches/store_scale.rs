//! The stores at national scale, SQLite and PostgreSQL side by side. Run on demand (never in CI):
//!
//!     cargo bench -p ca-tests --bench store_scale -- 1000000      # N certificates, N/10 revoked
//!     SCALE_DIR=/big/disk cargo bench -p ca-tests --bench store_scale -- 10000000 5
//!
//! (arguments: N, seconds per rate measurement. Environment: `SCALE_DIR`, where the SQLite file
//! goes, default the temporary directory; `SCALE_ONLY=sqlite` skips PostgreSQL, `SCALE_ONLY=postgres`
//! measures only PostgreSQL (SQLite is still filled, as the copy's source);
//! `SCALE_ISSUE_SECONDS=S` measures each issuance rate over S seconds instead (PostgreSQL logs a
//! full-page image of every page first changed after a checkpoint: a short window right after
//! the load's `CHECKPOINT` is all first changes, a long one approaches the steady state of
//! checkpoints minutes apart); `SCALE_GO=FILE`
//! loads both stores, then waits for FILE to exist before measuring — fill on a busy machine,
//! measure on an idle one; `SCALE_KEEP=DIR` keeps the filled SQLite store in DIR and the next run
//! of the same N uses it instead of filling again. The PostgreSQL cluster is a throwaway one in the temporary directory,
//! durable as in production — `fsync`, `synchronous_commit`, `full_page_writes` on — and set up
//! as a deployment would be ([`PG_DEPLOYMENT`]).) Both are deleted at the end.
//!
//! **Fill.** N real certificates: the national SIGN/AUTH profile, one IIN per two certificates,
//! each signed by the issuing CA's P-256 key through the normal issuer (build, lint, sign) on
//! every core, with a capturing store in place of the database; the rows then go into the CA's
//! SQLite store in transactions of 20,000 (every tenth revoked, with its revocation event), then
//! its WAL is checkpointed (`PRAGMA wal_checkpoint(TRUNCATE)`, as the store's checkpointing does
//! in service), and into PostgreSQL by `ca store copy` (`COPY … (FORMAT binary)`), the path an
//! existing CA moves by, then `VACUUM ANALYZE` and `CHECKPOINT`: both are measured in a steady
//! state, not while the load's writes are still being flushed.
//!
//! **Measured** per backend, at size and (issuance) on an empty store of the same kind in the
//! same run: issuance rate (single thread, batches of 1 and 64), OCSP (`Responder::respond`
//! in-process on random certificates of the store: peak on every core, then p99 at a constant
//! half of that rate, latency from the scheduled send time; and the store's status read alone,
//! one thread, p99), a full CRL of all revoked entries
//! (stream from the store + build + sign + write; time and peak RSS), `ca list --iin` (the store
//! query the command runs, `limit 100`) p99 over random IINs, and bytes on disk per certificate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ca_core::clock::SystemClock;
use ca_core::identity::{Iin, Person, Subject};
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::ocsp::{request_for, Responder};
use ca_core::profile::ProfileId;
use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::signer::Signer as _;
use ca_core::store::{
    AuditEntry, AuditEvent, AuditQuery, AuditSink, AuditVerification, CertificateQuery, CertificateRecord, CrlKind,
    CrlRecord, EntrySink, Issued, PostgresStore, ReleaseOutcome, Reservation, Revocation, RevokeOutcome, RevokedEntry,
    SqliteStore, Store, StoreError,
};
use crl::{CrlBuilder, CrlEntry, CrlParams};
use fixtures::postgres::PgCluster;
use fixtures::TestCa;
use hsm::{KeyAlgorithm, SoftwareKey};
use time::OffsetDateTime;

/// The allocator of `ca-server` and `ca`, whose responder and issuer this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows per fill transaction.
const FILL_BATCH: usize = 20_000;

/// The valid IIN number `i` (distinct for every i that has one; about 9 in 10 have).
fn iin(i: u64) -> Option<Iin> {
    let yy = i % 100;
    let mm = 1 + (i / 100) % 12;
    let dd = 1 + (i / 1200) % 28;
    let sex = 3 + (i / 33_600) % 2;
    let serial = (i / 67_200) % 10_000;
    Iin::with_check_digit(&format!("{yy:02}{mm:02}{dd:02}{sex}{serial:04}"))
}

fn person(iin: Iin) -> Subject {
    Subject::Individual(Person {
        iin,
        surname: "Тестов".into(),
        given_name: "Тест".into(),
        patronymic: None,
        email: None,
    })
}

/// The fill's issuer writes here instead of a database: reservations are accepted (serials are
/// 20 random octets) and signed certificates kept for the bulk load.
#[derive(Default)]
/// Reservations, each with its certificate's DER and key digest once recorded.
#[allow(clippy::type_complexity)]
struct Capture(Mutex<Vec<(Reservation, Option<(Vec<u8>, [u8; 32])>)>>);

fn not_a_database<T>() -> Result<T, StoreError> {
    Err(StoreError::Database("the fill's capturing store only takes reservations and records".into()))
}

impl Store for Capture {
    fn reserve(&self, reservations: &[Reservation], _: &[AuditEvent]) -> Result<(), StoreError> {
        self.0.lock().unwrap().extend(reservations.iter().map(|r| (r.clone(), None)));
        Ok(())
    }
    fn record_issued(&self, issued: &[Issued], _: &[AuditEvent]) -> Result<(), StoreError> {
        // The key digest the store records with each certificate (what finds a certificate by
        // key), computed here on the signing threads as `record_issued` does.
        let digests: Vec<[u8; 32]> = issued
            .iter()
            .map(|cert| {
                use der::{Decode, Encode};
                let parsed = x509_cert::Certificate::from_der(&cert.der).expect("the issuer's DER");
                ca_core::ra::csr_keys::spki_sha256(&parsed.tbs_certificate.subject_public_key_info.to_der().unwrap())
            })
            .collect();
        let mut rows = self.0.lock().unwrap();
        for (cert, digest) in issued.iter().zip(digests) {
            let row = rows.iter_mut().rev().find(|(r, _)| r.serial == cert.serial).expect("reserved first");
            row.1 = Some((cert.der.clone(), digest));
        }
        Ok(())
    }
    fn revoke(&self, _: &SerialNumber, _: &Revocation, _: &AuditEvent) -> Result<RevokeOutcome, StoreError> {
        not_a_database()
    }
    /// The issuer looks up its own CA certificate's standing: unknown here, as for an external
    /// root.
    fn certificate(&self, _: &SerialNumber) -> Result<Option<CertificateRecord>, StoreError> {
        Ok(None)
    }
    fn find(&self, _: &CertificateQuery) -> Result<Vec<CertificateRecord>, StoreError> {
        not_a_database()
    }
    fn append_audit(&self, _: &AuditEvent) -> Result<AuditEntry, StoreError> {
        not_a_database()
    }
    fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        not_a_database()
    }
    fn audit_entries(&self, _: &AuditQuery, _: &mut AuditSink<'_>) -> Result<(), StoreError> {
        not_a_database()
    }
    fn audit_hash(&self, _: i64) -> Result<Option<[u8; 32]>, StoreError> {
        not_a_database()
    }
    fn release_hold(&self, _: &SerialNumber, _: &AuditEvent) -> Result<ReleaseOutcome, StoreError> {
        not_a_database()
    }
    fn allocate_crl_number(&self, _: &str) -> Result<u64, StoreError> {
        not_a_database()
    }
    fn revoked_snapshot(&self, _: &str, _: Option<u32>, _: &mut EntrySink<'_>) -> Result<i64, StoreError> {
        not_a_database()
    }
    fn revocation_changes(&self, _: &str, _: Option<u32>, _: i64, _: &mut EntrySink<'_>) -> Result<i64, StoreError> {
        not_a_database()
    }
    fn record_crl(&self, _: &CrlRecord, _: &AuditEvent) -> Result<(), StoreError> {
        not_a_database()
    }
    fn last_crl(&self, _: &str, _: Option<u32>, _: CrlKind) -> Result<Option<CrlRecord>, StoreError> {
        not_a_database()
    }
}

fn issuer<'a>(ca: &'a TestCa, store: &'a dyn Store, clock: &'a SystemClock) -> Issuer<'a> {
    Issuer {
        ca: &ca.issuing,
        store,
        clock,
        urls: &ca.urls,
        validity: time::Duration::days(365),
        actor: "bench",
        crl_partitions: None,
    }
}

/// Sign `n` certificates (two per IIN) on every core and load them into the SQLite file at
/// `db`; returns the serials and IINs loaded.
fn fill(
    ca: &TestCa,
    db: &std::path::Path,
    n: usize,
    keys: &[spki::SubjectPublicKeyInfoOwned],
) -> Vec<(String, String)> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mut conn = rusqlite::Connection::open(db).unwrap();
    // Each event row goes in just before its certificate row (which names it): consistent once
    // the batch commits.
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF").unwrap();
    let clock = SystemClock;
    let mut loaded = Vec::with_capacity(n);
    let mut next_iin = 0u64;
    let started = Instant::now();
    while loaded.len() < n {
        let batch = FILL_BATCH.min(n - loaded.len());
        let mut subjects = Vec::with_capacity(batch / 2 + 1);
        while subjects.len() * 2 < batch {
            if let Some(iin) = iin(next_iin) {
                subjects.push(iin);
            }
            next_iin += 1;
        }
        let capture = Capture::default();
        std::thread::scope(|s| {
            for part in subjects.chunks(subjects.len().div_ceil(cores)) {
                let (capture, clock) = (&capture, &clock);
                s.spawn(move || {
                    let issuer = issuer(ca, capture, clock);
                    for chunk in part.chunks(32) {
                        let requests: Vec<IssuanceRequest> = chunk
                            .iter()
                            .enumerate()
                            .flat_map(|(i, iin)| {
                                [ProfileId::IndividualSign, ProfileId::IndividualAuth].map(|profile| IssuanceRequest {
                                    profile,
                                    subject: person(*iin),
                                    roles: vec![],
                                    public_key: keys[i % keys.len()].clone(),
                                })
                            })
                            .collect();
                        issuer.issue_batch(&requests).unwrap();
                    }
                });
            }
        });
        let rows = capture.0.into_inner().unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut cert = tx
                .prepare_cached(
                    "INSERT INTO certificates (serial, issuer, status, profile, subject_dn, iin, not_before, not_after,
                         reserved_at, issued_at, der, revoked_at, revocation_reason, revocation_seq, spki_sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .unwrap();
            let mut event = tx
                .prepare_cached(
                    "INSERT INTO revocation_events (serial, issuer, kind, at) VALUES (?1, ?2, 'revoke', ?3)",
                )
                .unwrap();
            for (r, signed) in rows.into_iter().take(batch) {
                let (der, digest) = signed.expect("signed");
                let serial = r.serial.to_hex();
                let at = r.not_before.unix_timestamp();
                let revoked = loaded.len() % 10 == 9;
                let seq = revoked.then(|| {
                    event.execute(rusqlite::params![serial, r.issuer, at + 60]).unwrap();
                    tx.last_insert_rowid()
                });
                cert.execute(rusqlite::params![
                    serial,
                    r.issuer,
                    if revoked { "revoked" } else { "issued" },
                    r.profile,
                    r.subject_dn,
                    r.iin.map(|i| i.as_string()),
                    at,
                    r.not_after.unix_timestamp(),
                    at,
                    der,
                    revoked.then_some(at + 60),
                    revoked.then_some([1i64, 4, 5, 0][loaded.len() % 4]),
                    seq,
                    &digest[..],
                ])
                .unwrap();
                loaded.push((serial, r.iin.map(|i| i.as_string()).unwrap_or_default()));
            }
        }
        tx.commit().unwrap();
        if loaded.len() % 200_000 < FILL_BATCH {
            let rate = loaded.len() as f64 / started.elapsed().as_secs_f64();
            eprintln!("  filled {} of {n} ({rate:.0}/s)", loaded.len());
        }
    }
    loaded
}

fn rate(seconds: f64, mut op: impl FnMut() -> usize) -> f64 {
    op();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        done += op();
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn issuance_rate(
    ca: &TestCa,
    store: &dyn Store,
    batch: usize,
    seconds: f64,
    keys: &[spki::SubjectPublicKeyInfoOwned],
) -> f64 {
    let clock = SystemClock;
    let issuer = issuer(ca, store, &clock);
    let mut n = 10_000_000u64;
    rate(seconds, || {
        let requests: Vec<IssuanceRequest> = (0..batch)
            .map(|i| {
                n += 1;
                let iin = (n..).find_map(iin).unwrap();
                IssuanceRequest {
                    profile: ProfileId::IndividualSign,
                    subject: person(iin),
                    roles: vec![],
                    public_key: keys[i % keys.len()].clone(),
                }
            })
            .collect();
        issuer.issue_batch(&requests).unwrap().len()
    })
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    samples.get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1))).copied().unwrap_or_default()
}

/// Clients of the half-peak phase: like `oha -c16` at a constant rate, a slow or descheduled
/// client holds up only its own requests (ca-server answers OCSP on a pool of threads, not on
/// one thread per core).
const OCSP_CLIENTS: usize = 16;

/// One request of an open-loop run: latency from its due time, service time, start after due.
type Timing = (Duration, Duration, Duration);

/// `total` calls of `op` on an open-loop schedule (call `k` is due at `k × interval`), taken in
/// order by [`OCSP_CLIENTS`] threads.
fn open_loop(total: usize, interval: Duration, op: &(dyn Fn(usize) + Sync)) -> Vec<Timing> {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let next = AtomicUsize::new(0);
    let samples = Mutex::new(Vec::with_capacity(total));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..OCSP_CLIENTS {
            let (samples, next) = (&samples, &next);
            s.spawn(move || {
                let mut mine = Vec::with_capacity(total / OCSP_CLIENTS + 16);
                loop {
                    let k = next.fetch_add(1, Relaxed);
                    if k >= total {
                        break;
                    }
                    let due = start + interval * k as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let began = Instant::now();
                    op(k);
                    let done = Instant::now();
                    mine.push((done - due, done - began, began.saturating_duration_since(due)));
                }
                samples.lock().unwrap().extend(mine);
            });
        }
    });
    samples.into_inner().unwrap()
}

/// A fixed amount of integer work (`rounds` dependent multiply-adds): what the machine's own
/// hiccups do to a task that touches no store, no lock and no system call.
fn busy(rounds: u64) {
    let mut x = rounds;
    for i in 0..rounds {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    std::hint::black_box(x);
}

/// OCSP peak on every core, then p99 at half of it: an open-loop schedule, latency counted from
/// the due time. Then the machine's floor: the same schedule with [`busy`] work of a response's
/// CPU time instead of a response. On a VM whose CPU slows for tens of
/// milliseconds at a time (as this one does), the floor is what no responder can go below.
fn ocsp(responder: &Responder, requests: &[Vec<u8>], seconds: f64) -> (f64, Duration, Duration) {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let peak = ca_tests::rate_on_threads(cores, seconds, |_| {
        let i = next.fetch_add(7919, std::sync::atomic::Ordering::Relaxed) % requests.len();
        responder.respond(&requests[i]);
    });
    let interval = Duration::from_secs_f64(2.0 / peak);
    let total = (seconds * peak / 2.0) as usize;
    let samples = open_loop(total, interval, &|k| drop(responder.respond(&requests[(k * 7919) % requests.len()])));
    let p99 = |samples: &[Timing], f: fn(&Timing) -> Duration| percentile(samples.iter().map(f).collect(), 0.99);
    let mean_service = samples.iter().map(|s| s.1).sum::<Duration>() / samples.len().max(1) as u32;
    // Calibrate `busy` to the CPU time of a response (at peak every core answered `peak / cores`
    // per second), then run it on the same schedule.
    let t = Instant::now();
    busy(1_000_000);
    let rounds = (1e6 * (cores as f64 / peak) / t.elapsed().as_secs_f64()) as u64;
    let floor = open_loop(total, interval, &|_| busy(rounds));
    eprintln!(
        "  OCSP at half peak ({:.0}/s): p99 {:.2} ms, service p99 {:.3} ms (mean {:.3} ms), start after due p99 {:.2} ms; \
         the machine's floor (busy work of a response's CPU time, same schedule): p99 {:.2} ms, service p99 {:.3} ms",
        peak / 2.0,
        p99(&samples, |s| s.0).as_secs_f64() * 1e3,
        p99(&samples, |s| s.1).as_secs_f64() * 1e3,
        mean_service.as_secs_f64() * 1e3,
        p99(&samples, |s| s.2).as_secs_f64() * 1e3,
        p99(&floor, |s| s.0).as_secs_f64() * 1e3,
        p99(&floor, |s| s.1).as_secs_f64() * 1e3,
    );
    (peak, p99(&samples, |s| s.0), p99(&floor, |s| s.0))
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A full CRL of every revoked certificate: store stream + build + sign + write; (entries,
/// seconds, peak RSS MB).
fn full_crl(store: &dyn Store, ca: &TestCa, out: &std::path::Path) -> (u64, f64, f64) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let params = CrlParams {
        issuer: ca.issuing.subject().clone(),
        authority_key_id: ca.issuing.key_id().to_vec(),
        crl_number: 1,
        this_update: now,
        next_update: now + time::Duration::hours(24),
        delta_base: None,
        issuing_distribution_point: None,
        freshest_crl: None,
    };
    let t = Instant::now();
    let mut builder = CrlBuilder::new(&params, ca.issuing.signer()).unwrap();
    let mut sink = |e: RevokedEntry| -> Result<(), StoreError> {
        builder
            .push(&CrlEntry {
                serial: e.serial.as_bytes(),
                revoked_at: e.revoked_at,
                reason: Some(e.reason).filter(|r| *r != RevocationReason::Unspecified),
                invalidity_date: e.invalidity_date,
            })
            .map_err(|err| StoreError::Database(err.to_string()))
    };
    store.revoked_snapshot(&ca.issuing.name, None, &mut sink).unwrap();
    let summary = builder.finish_into(std::io::BufWriter::new(std::fs::File::create(out).unwrap())).unwrap();
    (summary.entries, t.elapsed().as_secs_f64(), peak_rss_mb())
}

/// The OCSP responder's store read alone (the CA's serial and one certificate's, as `respond`
/// asks), one thread, no load: what the store adds to a response.
fn status_p99(store: &dyn Store, serials: &[SerialNumber]) -> Duration {
    let samples = serials
        .iter()
        .map(|serial| {
            let t = Instant::now();
            let (found, _) = store.states_as_of(&[serial.clone(), serial.clone()]).unwrap();
            assert!(found[0].is_some());
            t.elapsed()
        })
        .collect();
    percentile(samples, 0.99)
}

fn list_p99(store: &dyn Store, iins: &[String]) -> Duration {
    let samples = iins
        .iter()
        .map(|iin| {
            let t = Instant::now();
            let found = store
                .find(&CertificateQuery { iin: Some(iin.parse().unwrap()), limit: Some(100), ..Default::default() })
                .unwrap();
            assert!(!found.is_empty());
            t.elapsed()
        })
        .collect();
    percentile(samples, 0.99)
}

struct Row {
    backend: &'static str,
    load_secs: f64,
    issue_empty: [f64; 2],
    issue_full: [f64; 2],
    ocsp_peak: f64,
    ocsp_p99: Duration,
    /// p99 of busy work of the same mean time on the same schedule: the machine's floor.
    ocsp_floor: Duration,
    status_p99: Duration,
    crl: (u64, f64, f64),
    list_p99: Duration,
    bytes_per_cert: f64,
}

/// What every backend is measured with.
struct Inputs<'a> {
    ca: &'a TestCa,
    sample: &'a Sample,
    seconds: f64,
    /// Per issuance rate (the others: `seconds`).
    issue_seconds: f64,
    keys: &'a [spki::SubjectPublicKeyInfoOwned],
}

fn measure(
    backend: &'static str,
    full: &dyn Store,
    empty: &dyn Store,
    responder: &Responder,
    inputs: &Inputs<'_>,
) -> Row {
    let Inputs { ca, sample, seconds, issue_seconds, keys } = *inputs;
    eprintln!("{backend}: measuring");
    let issue_empty = [1, 64].map(|b| issuance_rate(ca, empty, b, issue_seconds, keys));
    let issue_full = [1, 64].map(|b| issuance_rate(ca, full, b, issue_seconds, keys));
    let (ocsp_peak, ocsp_p99, ocsp_floor) = ocsp(responder, &sample.requests, seconds);
    let status_p99 = status_p99(full, &sample.serials);
    let crl = full_crl(full, ca, &ca.dir.path().join(format!("{backend}.crl")));
    let list_p99 = list_p99(full, &sample.iins);
    Row {
        backend,
        load_secs: 0.0,
        issue_empty,
        issue_full,
        ocsp_peak,
        ocsp_p99,
        ocsp_floor,
        status_p99,
        crl,
        list_p99,
        bytes_per_cert: 0.0,
    }
}

/// Random certificates of the store: OCSP requests for them and their IINs.
struct Sample {
    requests: Vec<Vec<u8>>,
    serials: Vec<SerialNumber>,
    iins: Vec<String>,
}

fn sample(store: &dyn Store, ca: &TestCa, picks: &[(String, String)]) -> Sample {
    use der::Decode;
    let requests = picks
        .iter()
        .map(|(serial, _)| {
            let record = store.certificate(&serial.parse().unwrap()).unwrap().unwrap();
            let cert = x509_cert::Certificate::from_der(record.der.as_ref().unwrap()).expect("real DER that parses");
            request_for(&cert, &ca.issuing.certificate).unwrap()
        })
        .collect();
    Sample {
        requests,
        serials: picks.iter().map(|(serial, _)| serial.parse().unwrap()).collect(),
        iins: picks.iter().take(1000).map(|(_, iin)| iin.clone()).collect(),
    }
}

/// Certificates the OCSP and status measurements ask about, drawn at random from the whole
/// store: the pages they touch are as cold as the store's size makes them (a few thousand
/// would soon all sit in the page cache).
const SAMPLE: usize = 20_000;

/// [`SAMPLE`] random certificates of a kept store (serial, IIN), by random rowid.
fn kept_picks(db: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let max: i64 = conn.query_row("SELECT max(rowid) FROM certificates", [], |r| r.get(0)).unwrap();
    let mut stmt = conn
        .prepare("SELECT serial, COALESCE(iin, '') FROM certificates WHERE rowid = ?1 AND status <> 'reserved'")
        .unwrap();
    let mut picks = Vec::with_capacity(SAMPLE);
    while picks.len() < SAMPLE {
        let rowid = 1 + (rand_index() % max as u64) as i64;
        if let Ok(row) = stmt.query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?))) {
            picks.push(row);
        }
    }
    picks
}

fn rand_index() -> u64 {
    let serial = SerialNumber::random();
    u64::from_be_bytes(serial.as_bytes()[..8].try_into().unwrap())
}

fn responder(ca: &TestCa, store: Arc<dyn Store>, key: &Arc<SoftwareKey>, cert: &[u8]) -> Responder {
    Responder::new(
        ca.issuing.name.clone(),
        &ca.issuing.certificate_der,
        cert,
        key.clone(),
        store,
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// What a deployment gives a database server, beyond the test clusters' settings: 2 GB of
/// shared buffers (tests run on 32 MB), and checkpoints far enough apart that a random-key
/// index page written many times between two of them is logged in full once, not at every
/// checkpoint of a 1 GB WAL (serial numbers are random by design: every insert touches a random
/// page of the serial and key-digest indexes), compressed.
const PG_DEPLOYMENT: &[&str] =
    &["shared_buffers=2GB", "max_wal_size=4GB", "checkpoint_timeout=15min", "wal_compression=on"];

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let seconds: f64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let only_sqlite = std::env::var("SCALE_ONLY").is_ok_and(|b| b == "sqlite");
    let only_postgres = std::env::var("SCALE_ONLY").is_ok_and(|b| b == "postgres");
    let issue_seconds: f64 = std::env::var("SCALE_ISSUE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(seconds);
    let scratch = tempfile::Builder::new()
        .prefix("store-scale-")
        .tempdir_in(std::env::var_os("SCALE_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
        .unwrap();
    // `SCALE_KEEP=DIR`: the filled SQLite store is kept in DIR and used again by the next run of
    // the same N (the fill is most of a run's time; the issuing CA is made afresh under the same
    // name, which is all the measurements need).
    let keep = std::env::var_os("SCALE_KEEP").map(std::path::PathBuf::from);
    let keys: Vec<_> =
        (0..64).map(|_| SoftwareKey::generate(KeyAlgorithm::P256).unwrap().public_key().clone()).collect();
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let (key, responder_cert) = ca.ocsp_responder(KeyAlgorithm::P256);
    let key = Arc::new(key);

    // SQLite: the CA's own store format, filled.
    let db = match &keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            dir.join(format!("ca-{n}.db"))
        }
        None => scratch.path().join("ca.db"),
    };
    let marker = db.with_extension("filled");
    let (loaded, sqlite_load) = match std::fs::read_to_string(&marker).ok().and_then(|s| s.trim().parse::<f64>().ok()) {
        Some(secs) => {
            eprintln!("using the SQLite store filled before: {}", db.display());
            (kept_picks(&db), secs)
        }
        None => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            drop(SqliteStore::open(&db).unwrap());
            eprintln!("filling SQLite with {n} certificates");
            let t = Instant::now();
            let loaded = fill(&ca, &db, n, &keys);
            let secs = t.elapsed().as_secs_f64();
            let loaded = (0..SAMPLE).map(|_| loaded[(rand_index() % loaded.len() as u64) as usize].clone()).collect();
            {
                // What the store's own checkpointing does in service: the load's WAL into the file.
                let conn = rusqlite::Connection::open(&db).unwrap();
                conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
            }
            if keep.is_some() {
                std::fs::write(&marker, format!("{secs}\n")).unwrap();
            }
            (loaded, secs)
        }
    };
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let sqlite_bytes = dir_bytes(&db) as f64 / n as f64;
    let empty_sqlite = SqliteStore::open(&scratch.path().join("empty.db")).unwrap();
    let sample = sample(sqlite.as_ref(), &ca, &loaded);

    // PostgreSQL: the same rows, moved by `ca store copy`, durable as in production.
    let cluster = (!only_sqlite).then(|| {
        let settings: Vec<&str> = fixtures::postgres::DURABLE.iter().chain(PG_DEPLOYMENT).copied().collect();
        let cluster = PgCluster::start_with(&settings).unwrap();
        assert_eq!(cluster.psql("postgres", "SHOW fsync").unwrap(), "on");
        cluster
    });
    let pg = cluster.as_ref().map(|cluster| {
        let (full_db, empty_db) = (cluster.create_database(None).unwrap(), cluster.create_database(None).unwrap());
        let connect = |db: &str| PostgresStore::connect(&cluster.url(db), Some(cluster.password())).unwrap();
        let pg = connect(&full_db);
        eprintln!("copying into PostgreSQL (ca store copy)");
        let t = Instant::now();
        ca_core::store::copy::sqlite_to_postgres(&SqliteStore::open(&db).unwrap(), &pg).unwrap();
        let pg_load = t.elapsed().as_secs_f64();
        cluster.psql(&full_db, "VACUUM ANALYZE").unwrap();
        // VACUUM dirtied every page (hint bits, visibility map): flushed now, not during the OCSP run.
        cluster.psql(&full_db, "CHECKPOINT").unwrap();
        let pg_bytes: f64 =
            cluster.psql(&full_db, "SELECT pg_database_size(current_database())").unwrap().parse().unwrap();
        (Arc::new(pg) as Arc<dyn Store>, connect(&empty_db), pg_load, pg_bytes / n as f64)
    });

    // Both stores are loaded: the measurements may wait for an idle machine.
    if let Some(go) = std::env::var_os("SCALE_GO") {
        eprintln!("loaded; measuring once {} exists", std::path::Path::new(&go).display());
        while !std::path::Path::new(&go).exists() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    let inputs = Inputs { ca: &ca, sample: &sample, seconds, issue_seconds, keys: &keys };
    let mut rows = vec![];
    if !only_postgres {
        let sqlite_responder = responder(&ca, sqlite.clone(), &key, &responder_cert.der);
        let mut row = measure("sqlite", sqlite.as_ref(), &empty_sqlite, &sqlite_responder, &inputs);
        row.load_secs = sqlite_load;
        row.bytes_per_cert = sqlite_bytes;
        rows.push(row);
    }
    drop(sqlite);
    if keep.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    if let Some((pg, empty_pg, pg_load, pg_bytes)) = pg {
        let pg_responder = responder(&ca, pg.clone(), &key, &responder_cert.der);
        let mut row = measure("postgres", pg.as_ref(), &empty_pg, &pg_responder, &inputs);
        row.load_secs = pg_load;
        row.bytes_per_cert = pg_bytes;
        rows.push(row);
    }
    print_rows(n, seconds, issue_seconds, &rows);
}

fn print_rows(n: usize, seconds: f64, issue_seconds: f64, rows: &[Row]) {
    println!(
        "\n{n} certificates ({} revoked), {seconds} s per rate ({issue_seconds} s per issuance rate), P-256 CA and OCSP keys",
        n / 10
    );
    println!(
        "| backend | load | issue/s empty (1 / 64) | issue/s at size (1 / 64) | ratio (1 / 64) | OCSP peak/s | OCSP p99 at ½ peak | machine floor p99 | status read p99 | full CRL | CRL peak RSS | list --iin p99 | bytes/cert |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} s | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} / {:.2} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} entries, {:.2} s | {:.0} MB | {:.2} ms | {:.0} |",
            r.backend,
            r.load_secs,
            r.issue_empty[0],
            r.issue_empty[1],
            r.issue_full[0],
            r.issue_full[1],
            r.issue_full[0] / r.issue_empty[0],
            r.issue_full[1] / r.issue_empty[1],
            r.ocsp_peak,
            r.ocsp_p99.as_secs_f64() * 1e3,
            r.ocsp_floor.as_secs_f64() * 1e3,
            r.status_p99.as_secs_f64() * 1e3,
            r.crl.0,
            r.crl.1,
            r.crl.2,
            r.list_p99.as_secs_f64() * 1e3,
            r.bytes_per_cert
        );
    }
}
