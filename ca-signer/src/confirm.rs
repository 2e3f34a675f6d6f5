//! Asking the person before every signature: which site asks, with which key, for what.

use std::io::{BufRead, Write};
use std::sync::Mutex;

/// What a signature request would do, as shown to the person.
#[derive(Clone, Debug)]
pub struct Confirmation {
    /// The WebSocket `Origin` of the requesting page.
    pub origin: String,
    /// The protocol method (`createCAdESFromBase64`, `signXml`).
    pub method: String,
    /// The key: its type, its certificate's subject and serial.
    pub key: String,
    /// What is signed: size, SHA-256, and the start of it when it is text.
    pub content: String,
}

impl std::fmt::Display for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} asks to sign ({}) with {}: {}", self.origin, self.method, self.key, self.content)
    }
}

/// Describe `data` for a person: size, SHA-256 and, for UTF-8 text, its first 200 characters.
pub fn describe(data: &[u8]) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(data));
    match std::str::from_utf8(data) {
        Ok(text) => {
            let preview: String = text.chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect();
            let more = if text.chars().count() > 200 { "…" } else { "" };
            format!("{} bytes, SHA-256 {digest}: \"{preview}{more}\"", data.len())
        }
        Err(_) => format!("{} bytes of binary data, SHA-256 {digest}", data.len()),
    }
}

/// Decides whether a signature may be made.
pub trait Confirmer: Send + Sync {
    fn confirm(&self, request: &Confirmation) -> bool;
}

/// Non-interactive confirmation, for kiosks and tests: every decision is logged as a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// Sign without asking.
    Accept,
    /// Refuse every signature.
    Refuse,
}

impl Confirmer for Policy {
    fn confirm(&self, request: &Confirmation) -> bool {
        match self {
            Policy::Accept => {
                tracing::warn!("NON-INTERACTIVE: signing without asking anyone: {request}");
                true
            }
            Policy::Refuse => {
                tracing::warn!("NON-INTERACTIVE: refused by policy: {request}");
                false
            }
        }
    }
}

/// Asks on the controlling terminal (`/dev/tty`), one request at a time; anything but `y` or
/// `yes` refuses, and so does a terminal that cannot be opened.
#[derive(Default)]
pub struct TerminalConfirmer {
    one_at_a_time: Mutex<()>,
}

impl Confirmer for TerminalConfirmer {
    fn confirm(&self, request: &Confirmation) -> bool {
        let _turn = self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
            tracing::warn!("no terminal to ask on: refused: {request}");
            return false;
        };
        let mut out = &tty;
        let asked = writeln!(
            out,
            "\nSignature request\n  from:   {}\n  method: {}\n  key:    {}\n  data:   {}\nSign? [y/N] ",
            request.origin, request.method, request.key, request.content
        );
        let mut answer = String::new();
        let read = std::io::BufReader::new(&tty).read_line(&mut answer);
        let yes = asked.is_ok() && read.is_ok() && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes");
        tracing::info!(origin = %request.origin, method = %request.method, confirmed = yes, "asked on the terminal");
        yes
    }
}
