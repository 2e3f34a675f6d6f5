//! Human output by default, JSON with `--json`. Errors go to stderr (human) or stdout (JSON,
//! so that scripts read one document either way).

use std::io::Write;

use serde::Serialize;

use crate::failure::Failure;

/// Write to stdout (what the crate's `print!`/`println!` do). When the reader has gone away
/// (`ca list | head -1`, a closed pipe) the process exits at once with success and no
/// message, as `head`'s user expects: whatever the command changed was committed before it
/// printed. Any other write error ends it with exit code 1 and says so on stderr.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot encode output: {e}"),
    }
}

pub fn print_failure(failure: &Failure, json: bool) {
    let kind = match failure {
        Failure::Input(_) => "invalid-input",
        Failure::NotFound(_) => "not-found",
        Failure::Auth(_) => "authentication",
        Failure::Already(_) => "already-done",
        Failure::Integrity(_) => "integrity",
        Failure::Refused(_) => "refused",
        Failure::Internal(_) => "internal",
    };
    let message = match failure {
        Failure::Internal(e) => format!("{e:#}"),
        other => other.to_string(),
    };
    if message.is_empty() {
        // The command already printed its own (JSON) report.
    } else if json {
        print_json(&serde_json::json!({ "error": kind, "message": message }));
    } else if matches!(failure, Failure::Already(_)) {
        eprintln!("{message}");
    } else {
        eprintln!("error: {message}");
    }
}

/// RFC 3339 for humans and JSON alike.
pub fn when(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}
