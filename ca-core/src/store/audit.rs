//! The append-only audit journal. Each entry carries the SHA-256 of the previous entry, and its
//! own hash covers its sequence number, time, actor, action, target, details and that previous
//! hash, so editing, deleting or reordering a row breaks the chain at that row.

use time::OffsetDateTime;

/// Hash of the (non-existent) entry before the first one.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// What happened, as the caller reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// Who did it: an operator name, `ca-cli`, a certificate's serial for a signed request.
    pub actor: String,
    /// What was done, a short dotted verb such as `certificate.reserve`.
    pub action: String,
    /// What it was done to: a serial number, an application number.
    pub target: Option<String>,
    /// Structured details (JSON). Never a secret.
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Self {
        Self { actor: actor.into(), action: action.into(), target: None, details: serde_json::Value::Null }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// One stored journal entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub event: AuditEvent,
    #[serde(serialize_with = "hex_ser")]
    pub prev_hash: [u8; 32],
    #[serde(serialize_with = "hex_ser")]
    pub hash: [u8; 32],
}

fn hex_ser<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

/// The hash of an entry. The encoding is length-prefixed so that no two different entries
/// serialise to the same bytes.
pub fn entry_hash(seq: i64, at: OffsetDateTime, event: &AuditEvent, prev_hash: &[u8; 32]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut field = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    field(b"ca-audit-v1");
    field(&seq.to_be_bytes());
    field(&at.unix_timestamp_nanos().to_be_bytes());
    field(event.actor.as_bytes());
    field(event.action.as_bytes());
    field(event.target.as_deref().unwrap_or("").as_bytes());
    field(&[u8::from(event.target.is_some())]);
    field(event.details.to_string().as_bytes());
    field(prev_hash);
    let digest = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Which journal entries to list: a time range (from inclusive, until exclusive) and an actor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub from: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub actor: Option<String>,
    /// At most this many entries (the oldest that match); `None` for all.
    pub limit: Option<u64>,
}

/// Receives listed journal entries; an error stops the listing.
pub type AuditSink<'a> = dyn FnMut(AuditEntry) -> Result<(), super::StoreError> + 'a;

/// A place where the chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditProblem {
    pub seq: i64,
    pub problem: String,
}

/// Result of walking the journal.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditVerification {
    pub entries: u64,
    /// Hash of the last entry: write it down somewhere else to detect truncation later.
    pub head: String,
    pub problems: Vec<AuditProblem>,
}

impl AuditVerification {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// At most this many problems are listed; a journal broken everywhere still verifies in
/// bounded memory.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// Walks a journal one entry at a time, in `seq` order, so a store can stream millions of rows
/// through it without holding them in memory.
#[derive(Debug)]
pub struct ChainVerifier {
    prev: [u8; 32],
    expected_seq: i64,
    count: u64,
    problems: Vec<AuditProblem>,
    unlisted: u64,
    last_seq: i64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self { prev: GENESIS_HASH, expected_seq: 1, count: 0, problems: Vec::new(), unlisted: 0, last_seq: 0 }
    }

    /// Check the next entry against the chain so far.
    pub fn push(&mut self, entry: &AuditEntry) {
        self.check_position(entry.seq, Some(&entry.prev_hash));
        let recomputed = entry_hash(entry.seq, entry.at, &entry.event, &entry.prev_hash);
        if recomputed != entry.hash {
            self.problem(entry.seq, "content does not match its hash (edited?)".into());
        }
        self.prev = entry.hash;
    }

    /// Account for a stored entry that could not even be decoded (say, its details are not JSON
    /// any more). `hash` is its stored hash when that much was readable, so the chain can go on.
    pub fn push_unreadable(&mut self, seq: i64, hash: Option<[u8; 32]>, problem: String) {
        self.check_position(seq, None);
        self.problem(seq, problem);
        if let Some(hash) = hash {
            self.prev = hash;
        }
    }

    /// The verdict on everything pushed so far.
    pub fn finish(mut self) -> AuditVerification {
        if self.unlisted > 0 {
            let problem = format!("{} further problems not listed", self.unlisted);
            self.problems.push(AuditProblem { seq: self.last_seq, problem });
        }
        AuditVerification { entries: self.count, head: hex::encode(self.prev), problems: self.problems }
    }

    fn check_position(&mut self, seq: i64, prev_hash: Option<&[u8; 32]>) {
        self.count += 1;
        if seq != self.expected_seq {
            let expected = self.expected_seq;
            self.problem(seq, format!("sequence gap: expected entry {expected}, found {seq} (entries deleted?)"));
        }
        if prev_hash.is_some_and(|p| *p != self.prev) {
            self.problem(seq, "previous-hash link does not match the entry before it".into());
        }
        self.expected_seq = seq.saturating_add(1);
        self.last_seq = seq;
    }

    fn problem(&mut self, seq: i64, problem: String) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(AuditProblem { seq, problem });
        } else {
            self.unlisted += 1;
        }
    }
}

/// Check a sequence of entries, in `seq` order, against their chain.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> AuditVerification {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.push(entry);
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH;
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent::new("tester", "thing.done").target(format!("t{seq}"));
                let hash = entry_hash(seq, at, &event, &prev);
                let e = AuditEntry { seq, at, event, prev_hash: prev, hash };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let v = verify_chain(&c);
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 5);
    }

    #[test]
    fn edit_delete_and_reorder_are_detected() {
        let mut c = chain(5);
        c[2].event.actor = "mallory".into();
        assert_eq!(verify_chain(&c).problems[0].seq, 3);

        let mut c = chain(5);
        c.remove(1);
        assert!(!verify_chain(&c).is_intact());

        let mut c = chain(5);
        c.swap(1, 2);
        assert!(!verify_chain(&c).is_intact());
    }
}
