//! Short-code resolution of portal-server: `POST /api/v1/documents/open {"code"}` by a logged-in
//! third party — the session check, the code lookup under its limits (one write transaction with
//! the view mark), the document, and its verification report (the authority's signature, path
//! and CRLs, the time stamp's signature and path). First the peak rate (closed loop, as many
//! client threads as it takes), then p50/p99 latency at a constant rate of half the peak (open
//! loop: latency counted from each request's scheduled start, so a stall is not hidden).
//!
//! Every HTTP request is a new loopback connection. Run:
//! `cargo bench -p portal --bench documents -- [SECONDS]`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/documents.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let seconds: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5.0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let d = support::DocsPortal::start(|c| {
        c.documents.access.code_tries_per_viewer = 1_000_000;
        c.documents.access.code_failures_global = 1_000_000;
    });
    let subject = fixtures::person(90).iin.to_string();
    let id = d.submit_ok(&subject, "identity-card", "BENCH-1");
    let owner = d.person_session(90);
    let viewer = d.person_session(91);
    let codes: Vec<String> = (0..200)
        .map(|_| {
            let (status, grant) = d.post_as(&format!("/api/v1/documents/{id}/access"), &owner, Value::Null);
            assert_eq!(status, 201, "{grant}");
            grant["short_code"].as_str().unwrap().to_owned()
        })
        .collect();
    let bodies: Vec<String> = codes.iter().map(|c| json!({ "code": c }).to_string()).collect();
    let auth = format!("Bearer {viewer}");
    let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
    let resolve = |n: usize| {
        let body = &bodies[n % bodies.len()];
        let (status, answer) = ca_tests::http(d.t.port, "POST", "/api/v1/documents/open", &headers, body.as_bytes());
        assert!(
            status == 200 && answer.windows(14).any(|w| w == b"\"valid\":true,\""),
            "{status} {}",
            String::from_utf8_lossy(&answer)
        );
    };
    for n in 0..50 {
        resolve(n);
    }

    let threads = 2 * cores;
    println!("portal short-code resolution: {cores} cores, {threads} client threads for the peak, {seconds} s per phase, P-256 keys");
    let peak = ca_tests::rate_on_threads(threads, seconds, resolve);
    let rate = peak / 2.0;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * seconds) as usize;
    let senders = 4 * cores;
    let start = Instant::now() + Duration::from_millis(50);
    let mut latencies: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..senders)
            .map(|k| {
                let resolve = &resolve;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut i = k;
                    while i < total {
                        let due = start + interval * i as u32;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        resolve(i);
                        mine.push(due.elapsed().as_secs_f64() * 1000.0);
                        i += senders;
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("sender")).collect()
    });
    let achieved = latencies.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    println!("| measurement | value |");
    println!("|---|---:|");
    println!("| peak resolutions/s (closed loop, {threads} threads) | {peak:.0} |");
    println!("| constant rate (half of peak), achieved | {rate:.0} target, {achieved:.0} achieved |");
    println!("| p50 at half of peak | {:.2} ms |", percentile(&latencies, 0.50));
    println!("| p99 at half of peak | {:.2} ms |", percentile(&latencies, 0.99));
    println!("| max at half of peak | {:.2} ms |", latencies.last().copied().unwrap_or_default());
    let marks = d.t.portal.store.document_events(u32::MAX).unwrap().iter().filter(|e| e.action == "view").count();
    println!("({marks} view marks journaled)");
}
