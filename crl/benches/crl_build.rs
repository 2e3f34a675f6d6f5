//! CRL build + sign at national scale, next to `openssl ca -gencrl` on the same revocations.
//!
//! `cargo bench -p crl --bench crl_build` (set `CRL_BENCH_ENTRIES` for another size,
//! `CRL_BENCH_SKIP_OPENSSL=1` to leave OpenSSL out). Entries are generated lazily from a fixed
//! seed, as a store cursor would deliver them, so peak RSS shows the builder's own memory.
//! Peak RSS is VmHWM after resetting it through /proc/self/clear_refs before each run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration as StdDuration, Instant};

use ca_core::revocation::RevocationReason;
use crl::{build_crl, parse_and_verify, write_crl, CrlEntry, CrlParams};
use hsm::{KeyAlgorithm, SoftwareKey};
use support::{path_str, revocation_field, OpensslCa};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use x509_cert::name::Name;

const THIS_UPDATE: OffsetDateTime = datetime!(2026-01-15 00:00 UTC);
const REASONS: [(RevocationReason, &str); 4] = [
    (RevocationReason::KeyCompromise, "keyCompromise"),
    (RevocationReason::Superseded, "superseded"),
    (RevocationReason::AffiliationChanged, "affiliationChanged"),
    (RevocationReason::CessationOfOperation, "cessationOfOperation"),
];

/// splitmix64: fast, seedable, good enough to make serials look random.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A serial shaped like ours: 20 octets, first in 0x10..=0x7F.
    fn serial(&mut self) -> [u8; 20] {
        let mut s = [0u8; 20];
        for chunk in s.chunks_mut(8) {
            let bytes = self.next().to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        s[0] = 0x10 + s[0] % 0x70;
        s
    }
}

fn entries(n: usize, seed: u64) -> impl Iterator<Item = CrlEntry<[u8; 20]>> {
    let mut rng = Rng(seed);
    (0..n).map(move |i| CrlEntry {
        serial: rng.serial(),
        revoked_at: THIS_UPDATE - Duration::seconds(i as i64 * 7),
        reason: Some(REASONS[i % REASONS.len()].0),
        invalidity_date: None,
    })
}

fn params(crl_number: u64, delta_base: Option<u64>) -> CrlParams {
    CrlParams {
        issuer: "CN=BENCH NATIONAL CA,O=Bench,C=KZ".parse::<Name>().expect("name"),
        authority_key_id: vec![0x5a; 20],
        crl_number,
        this_update: THIS_UPDATE,
        next_update: THIS_UPDATE + Duration::days(1),
        delta_base,
        issuing_distribution_point: None,
        freshest_crl: delta_base.is_none().then(|| "http://pki.test.kz/crl/nca_d.crl".to_owned()),
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

/// Reset the peak-RSS watermark (Linux >= 4.0); returns the current RSS in KiB.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: StdDuration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    let n: usize = std::env::var("CRL_BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let skip_openssl = std::env::var_os("CRL_BENCH_SKIP_OPENSSL").is_some();
    let seed = 0x05ee_dc41;
    println!("CRL build benchmark: {n} entries, 20-octet random serials, reasonCode on every entry");

    let mut ours_p256 = StdDuration::ZERO;
    for (name, alg) in [("P-256", KeyAlgorithm::P256), ("RSA-2048", KeyAlgorithm::Rsa2048)] {
        let signer = SoftwareKey::generate(alg).expect("key");

        let base = reset_peak();
        let start = Instant::now();
        let der = build_crl(&params(1000, None), entries(n, seed), &signer).expect("full CRL");
        let took = start.elapsed();
        let peak = status_kib("VmHWM:");
        if alg == KeyAlgorithm::P256 {
            ours_p256 = took;
        }
        println!(
            "full CRL, {name}, build_crl (Vec): {}  peak RSS {:.1} MiB (baseline {:.1} MiB, +{:.1})  output {:.1} MiB",
            secs(took),
            mib(peak),
            mib(base),
            mib(peak.saturating_sub(base)),
            der.len() as f64 / 1048576.0
        );

        let start = Instant::now();
        let crl = parse_and_verify(&der, ca_core::signer::Signer::public_key(&signer)).expect("parses and verifies");
        let count = crl.entries().filter(|e| e.reason.is_some()).count();
        assert_eq!(count, n);
        println!("  parse + verify + iterate all entries: {}", secs(start.elapsed()));
        drop(crl);
        drop(der);

        let dir = tempfile::tempdir().expect("temp dir");
        let file = std::fs::File::create(dir.path().join("full.crl")).expect("file");
        let base = reset_peak();
        let start = Instant::now();
        let summary =
            write_crl(&params(1000, None), entries(n, seed), &signer, std::io::BufWriter::new(file)).expect("write");
        let took = start.elapsed();
        let peak = status_kib("VmHWM:");
        println!(
            "full CRL, {name}, write_crl (file): {}  peak RSS {:.1} MiB (+{:.1})  {} octets",
            secs(took),
            mib(peak),
            mib(peak.saturating_sub(base)),
            summary.len
        );

        let runs = 50;
        let start = Instant::now();
        let mut len = 0;
        for r in 0..runs {
            len = build_crl(&params(1001 + r, Some(1000)), entries(1_000, seed ^ r), &signer).expect("delta").len();
        }
        println!(
            "delta CRL, {name}, 1,000 entries: {:.2} ms per CRL ({len} octets)",
            start.elapsed().as_secs_f64() * 1e3 / runs as f64
        );
    }

    if skip_openssl {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = OpensslCa::new(dir.path(), &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let mut rng = Rng(seed);
    ca.write_index((0..n).map(|i| {
        let revoked_at = THIS_UPDATE - Duration::seconds(i as i64 * 7);
        (hex::encode(rng.serial()), revocation_field(revoked_at, Some(REASONS[i % REASONS.len()].1), None))
    }));
    let out = dir.path().join("ossl.crl.pem");
    let args = ca.gencrl_args(&out);
    let start = Instant::now();
    let run = Command::new("/usr/bin/time").arg("-f").arg("%M").arg("openssl").args(&args).output().expect("openssl");
    let took = start.elapsed();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let max_rss_kib: u64 =
        String::from_utf8_lossy(&run.stderr).lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    println!(
        "openssl ca -gencrl, P-256, same {n} revocations: {}  peak RSS {:.1} MiB  (PEM {:.1} MiB at {})",
        secs(took),
        mib(max_rss_kib),
        std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0,
        path_str(&out)
    );
    println!("ratio openssl / ours (P-256, build_crl): {:.1}x", took.as_secs_f64() / ours_p256.as_secs_f64());
}
