//! Token buckets for endpoints that anyone may call and that cost the server a write: a login
//! challenge is a row in the store until it expires, so an anonymous client must not be able
//! to issue them without bound. Each client (by IP address) has its own bucket, and all clients
//! together share one more, so that many addresses cannot add up to a flood either.
//!
//! Behind a reverse proxy every connection comes from the proxy; `trusted_proxies` names those
//! whose `X-Forwarded-For` is believed (the rightmost address not itself a trusted proxy is the
//! client). From anyone else the header is ignored: it is the client's own claim.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// Clients tracked at most; past that, buckets that have refilled are forgotten (they carry no
/// information), and if that is not enough the per-client memory starts over. The shared
/// bucket still holds.
const MAX_CLIENTS: usize = 100_000;

/// A sustained rate and the burst allowed on top of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self { tokens: rate.burst, updated: now }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated = now;
    }

    /// How long until one token is there (zero if one is there now).
    fn wait(&self, rate: Rate) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else if rate.per_second <= 0.0 {
            Duration::MAX
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / rate.per_second)
        }
    }
}

/// Per-client and overall limits on one kind of request.
pub struct RateLimiter {
    per_client: Rate,
    overall: Rate,
    trusted_proxies: Vec<IpAddr>,
    state: Mutex<(HashMap<IpAddr, Bucket>, Option<Bucket>)>,
}

impl RateLimiter {
    pub fn new(per_client: Rate, overall: Rate, trusted_proxies: Vec<IpAddr>) -> Self {
        Self { per_client, overall, trusted_proxies, state: Mutex::new((HashMap::new(), None)) }
    }

    fn lock(&self) -> MutexGuard<'_, (HashMap<IpAddr, Bucket>, Option<Bucket>)> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The client a request comes from: the peer, or what a trusted proxy says in
    /// `X-Forwarded-For`.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        http_common::client_address(peer, headers, &self.trusted_proxies)
    }

    /// How long `client` must wait before [`check`](Self::check) would let it through, without
    /// taking a token: for limits on *failures*, where a request is only charged when it fails.
    pub fn wait(&self, client: IpAddr, now: Instant) -> Duration {
        let mut guard = self.lock();
        let (clients, overall) = &mut *guard;
        let overall_wait = overall.as_mut().map_or(Duration::ZERO, |b| {
            b.refill(self.overall, now);
            b.wait(self.overall)
        });
        let mine = clients.get_mut(&client).map_or(Duration::ZERO, |b| {
            b.refill(self.per_client, now);
            b.wait(self.per_client)
        });
        mine.max(overall_wait)
    }

    /// Take one token for `client`, or say how long to wait. A refused request takes nothing.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut guard = self.lock();
        let (clients, overall) = &mut *guard;
        let overall = overall.get_or_insert_with(|| Bucket::full(self.overall, now));
        overall.refill(self.overall, now);
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let rate = self.per_client;
            clients.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        let mine = clients.entry(client).or_insert_with(|| Bucket::full(self.per_client, now));
        mine.refill(self.per_client, now);
        let wait = mine.wait(self.per_client).max(overall.wait(self.overall));
        if wait > Duration::ZERO {
            return Err(wait);
        }
        mine.tokens -= 1.0;
        overall.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const SLOW: Rate = Rate { per_second: 1.0, burst: 3.0 };
    const WIDE: Rate = Rate { per_second: 1000.0, burst: 1000.0 };

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_rate() {
        let limiter = RateLimiter::new(SLOW, WIDE, vec![]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("10.0.0.1"), t0), Ok(()));
        }
        let wait = limiter.check(ip("10.0.0.1"), t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        // Another client is not held up by the first.
        assert_eq!(limiter.check(ip("10.0.0.2"), t0), Ok(()));
        // Half a second later still refused (refusals took nothing); a second later one more.
        assert!(limiter.check(ip("10.0.0.1"), t0 + Duration::from_millis(500)).is_err());
        assert_eq!(limiter.check(ip("10.0.0.1"), t0 + Duration::from_secs(1)), Ok(()));
        assert!(limiter.check(ip("10.0.0.1"), t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn waiting_is_told_without_taking_a_token() {
        let limiter = RateLimiter::new(SLOW, WIDE, vec![]);
        let t0 = Instant::now();
        assert_eq!(limiter.wait(ip("10.0.0.1"), t0), Duration::ZERO, "an unknown client need not wait");
        for _ in 0..3 {
            assert_eq!(limiter.wait(ip("10.0.0.1"), t0), Duration::ZERO);
            assert_eq!(limiter.check(ip("10.0.0.1"), t0), Ok(()));
        }
        assert!(limiter.wait(ip("10.0.0.1"), t0) > Duration::ZERO);
        assert_eq!(limiter.wait(ip("10.0.0.1"), t0 + Duration::from_secs(1)), Duration::ZERO);
    }

    #[test]
    fn all_clients_together_are_limited_too() {
        let limiter = RateLimiter::new(WIDE, SLOW, vec![]);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(limiter.check(ip(&format!("10.0.0.{i}")), t0), Ok(()));
        }
        assert!(limiter.check(ip("10.0.0.99"), t0).is_err(), "a fresh address does not escape the overall limit");
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy = ip("192.0.2.1");
        let limiter = RateLimiter::new(SLOW, WIDE, vec![proxy]);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7, 192.0.2.1".parse().unwrap());
        assert_eq!(limiter.client(Some(proxy), &headers), ip("198.51.100.7"), "rightmost untrusted hop");
        assert_eq!(limiter.client(Some(ip("198.51.100.50")), &headers), ip("198.51.100.50"), "a client's own claim");
        assert_eq!(limiter.client(Some(proxy), &HeaderMap::new()), proxy);
        let mut garbage = HeaderMap::new();
        garbage.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(limiter.client(Some(proxy), &garbage), proxy);
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = RateLimiter::new(SLOW, Rate { per_second: 1e9, burst: 1e9 }, vec![]);
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 10) {
            let _ = limiter.check(IpAddr::V4(Ipv4Addr::from(i)), t0);
        }
        assert!(limiter.lock().0.len() <= MAX_CLIENTS);
    }
}
