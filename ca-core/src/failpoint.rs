//! Crash injection for tests: `failpoint::hit("name")` marks a point between two durable steps
//! (reserve, sign, record, a file written, a transition committed). In a debug build, when the
//! environment variable `CA_FAILPOINT` names that point, the process exits on the spot with
//! [`EXIT_CODE`] — no destructor, no rollback, no cleanup, like a `kill -9` or a power cut.
//! `CA_FAILPOINT=name#n` exits at the n-th hit of the point instead of the first.
//!
//! `CA_FAILPOINT_PAUSE=name` (or `name#n`) holds the process at that point instead: it writes
//! `failpoint NAME: paused` on stderr and waits for a line (or end of file) on stdin, so a test
//! can run another process against the same directory while this one is in the middle of a step.
//!
//! Release builds compile every point to nothing; the variables have no effect there.

/// The exit status of a process stopped at a failpoint.
pub const EXIT_CODE: i32 = 86;

/// An application is claimed (`issuing`), nothing issued yet.
pub const CLAIMED: &str = "ra.claimed";
/// An application is `issued`: certificates delivered, notice queued.
pub const COMPLETED: &str = "ra.completed";
/// The serials are reserved (before anything is signed).
pub const RESERVED: &str = "issue.reserved";
/// The certificates are signed, not yet recorded as issued.
pub const SIGNED: &str = "issue.signed";
/// The certificates are recorded as issued.
pub const RECORDED: &str = "issue.recorded";
/// `ca rollover issuing`: the new CA's certificate is written and the old OCSP responder's
/// files renamed, ca.toml not yet replaced.
pub const ROLLOVER_PREPARED: &str = "rollover.prepared";
/// A temporary file is written and synced, not yet renamed into place.
pub const BEFORE_RENAME: &str = "fs.before-rename";
/// A file was renamed into place (and its directory synced).
pub const RENAMED: &str = "fs.renamed";

/// Stop the process here if `CA_FAILPOINT` names this point (debug builds only).
#[cfg(debug_assertions)]
pub fn hit(name: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HITS: AtomicU32 = AtomicU32::new(0);
    static PAUSE_HITS: AtomicU32 = AtomicU32::new(0);
    let wanted = |var: &str, hits: &AtomicU32| {
        let Some(wanted) = std::env::var_os(var) else { return false };
        let wanted = wanted.to_string_lossy();
        let (point, nth) = match wanted.split_once('#') {
            Some((p, n)) => (p, n.parse::<u32>().unwrap_or(1)),
            None => (wanted.as_ref(), 1),
        };
        point == name && hits.fetch_add(1, Ordering::SeqCst) + 1 == nth
    };
    if wanted("CA_FAILPOINT_PAUSE", &PAUSE_HITS) {
        eprintln!("failpoint {name}: paused");
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    if wanted("CA_FAILPOINT", &HITS) {
        eprintln!("failpoint {name}: stopping the process");
        std::process::exit(EXIT_CODE);
    }
}

/// Stop the process here if `CA_FAILPOINT` names this point (debug builds only).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_name: &str) {}
