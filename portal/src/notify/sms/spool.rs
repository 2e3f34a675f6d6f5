//! The spool transport (development and tests): one JSON file per message, named by its
//! message id and written atomically (mode 0600: it holds the code). A repeated delivery of
//! the same message replaces its own file, so the spool holds each message once.

use std::path::{Path, PathBuf};

use ca_core::fs::{write_atomically, AtomicWrite, Existing};

use super::{OutgoingSms, SmsTransport};

/// A spooled message as written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpooledSms {
    pub id: String,
    pub to: String,
    pub text: String,
}

pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }

    /// Every message in `dir`, by id.
    pub fn read(dir: &Path) -> std::io::Result<Vec<SpooledSms>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "json") {
                let text = std::fs::read(&path)?;
                out.push(
                    serde_json::from_slice(&text)
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?,
                );
            }
        }
        out.sort_by(|a: &SpooledSms, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

impl SmsTransport for Spool {
    fn send(&self, sms: &OutgoingSms<'_>) -> Result<Option<String>, String> {
        if !sms.message_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("a message id must be letters, digits and dashes".into());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let file = SpooledSms { id: sms.message_id.into(), to: sms.to.into(), text: sms.text.into() };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        let path = self.dir.join(format!("{}.json", sms.message_id));
        write_atomically(&path, &json, AtomicWrite { existing: Existing::Replace, mode: Some(0o600) })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(None)
    }
}
