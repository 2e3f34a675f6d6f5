//! Raw signing rate of keys on a SoftHSM2 token, one thread and two threads.
//!
//! `cargo bench -p hsm --bench token_sign` (set `TOKEN_SIGN_SECONDS` to change the run time of
//! each measurement; default 3). The issuance rate with the CA key on the token is compared
//! against these figures elsewhere.

#[path = "../tests/support/softhsm.rs"]
mod softhsm;

use std::time::{Duration, Instant};

use ca_core::signer::Signer;
use hsm::pkcs11::{Pkcs11Module, TokenKey, TokenSelector};
use hsm::KeyAlgorithm;

/// Signatures per second with `threads` threads signing for `run` in total.
fn rate(key: &TokenKey, threads: usize, run: Duration) -> f64 {
    let message = [0x5au8; 512];
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut count = 0u64;
                    while start.elapsed() < run {
                        key.sign(&message).expect("token signature");
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("signing thread")).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds = std::env::var("TOKEN_SIGN_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let run = Duration::from_secs_f64(seconds);
    let test = softhsm::fresh_token("bench");
    let module = Pkcs11Module::load(softhsm::MODULE).expect("SoftHSM module");
    let token = module.open_token(&TokenSelector::Label(test.label.clone())).expect("token");
    token.login(&test.secret_pin()).expect("login");
    println!(
        "raw token signing on SoftHSM2 ({}), {seconds} s per row",
        module.info().map(|i| i.library_version).unwrap_or_default()
    );
    println!("{:<10} {:>8} {:>14} {:>10}", "key", "threads", "signatures/s", "vs 1 thr");
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        let key = token.generate_key_pair(alg, "bench").expect("key generation");
        let one = rate(&key, 1, run);
        println!("{:<10} {:>8} {:>14.0} {:>10.2}", alg.name(), 1, one, 1.0);
        let two = rate(&key, 2, run);
        println!("{:<10} {:>8} {:>14.0} {:>10.2}", alg.name(), 2, two, two / one);
    }
    drop(token);
    drop(module);
    drop(test);
}
