//! Passphrases and passwords: from an environment variable, a file, or a terminal prompt —
//! never from argv, never logged, zeroized when dropped.

use std::io::IsTerminal;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::failure::Failure;

/// Where a secret comes from.
#[derive(Clone, Debug)]
pub struct SecretSource {
    /// What the secret is, for prompts and errors ("CA key passphrase").
    pub what: &'static str,
    /// Environment variable to read.
    pub env: String,
    /// File whose first line is the secret.
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// Read the secret. With `confirm`, a prompt asks twice (used when creating keys).
    pub fn read(&self, confirm: bool) -> Result<Zeroizing<String>, Failure> {
        if let Some(path) = &self.file {
            let content =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    Failure::Input(format!("cannot read the {} from {}: {e}", self.what, path.display()))
                })?);
            let line = content.lines().next().unwrap_or("");
            return non_empty(self.what, Zeroizing::new(line.to_owned()));
        }
        if let Ok(value) = std::env::var(&self.env) {
            return non_empty(self.what, Zeroizing::new(value));
        }
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Input(format!(
                "no {}: set {} or pass a file with the matching --…-file option (it is never taken from the command line)",
                self.what, self.env
            )));
        }
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("{}: ", self.what)).map_err(|e| Failure::Input(e.to_string()))?,
        );
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password(format!("{} (again): ", self.what))
                    .map_err(|e| Failure::Input(e.to_string()))?,
            );
            if *first != *again {
                return Err(Failure::Input(format!("the two {}s differ", self.what)));
            }
        }
        non_empty(self.what, first)
    }
}

fn non_empty(what: &str, s: Zeroizing<String>) -> Result<Zeroizing<String>, Failure> {
    if s.is_empty() {
        return Err(Failure::Input(format!("the {what} is empty")));
    }
    Ok(s)
}

/// New key passphrases must have some strength.
pub fn check_new_passphrase(what: &str, s: &str) -> Result<(), Failure> {
    if s.chars().count() < 12 {
        return Err(Failure::Input(format!("the {what} must be at least 12 characters long")));
    }
    Ok(())
}
