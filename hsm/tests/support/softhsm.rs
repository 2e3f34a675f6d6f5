//! A fresh SoftHSM2 token per test, under its own `SOFTHSM2_CONF`.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, and the environment is process-wide,
//! so token tests run one at a time: [`fresh_token`] holds a global lock for the life of the
//! returned [`TestToken`]. Drop every `Pkcs11Module`, `Token` and `TokenKey` before the
//! `TestToken` (declare them after it), so the library is finalized before the next test sets
//! its own configuration.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use hsm::pkcs11::SecretPin;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const SO_PIN: &str = "87654321";

static SOFTHSM: Mutex<()> = Mutex::new(());

pub struct TestToken {
    pub label: String,
    pub pin: String,
    pub conf: PathBuf,
    pub dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl TestToken {
    pub fn secret_pin(&self) -> SecretPin {
        SecretPin::from(self.pin.clone())
    }

    /// Initialise another token in the same configuration (before the module is loaded).
    pub fn add_token(&self, label: &str) {
        init_token(&self.conf, label, &self.pin);
    }
}

fn init_token(conf: &Path, label: &str, pin: &str) {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args(["--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", pin])
        .output()
        .expect("softhsm2-util is installed by the setup script");
    assert!(out.status.success(), "softhsm2-util: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn fresh_token(label: &str) -> TestToken {
    let serial = SOFTHSM.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )
    .unwrap();
    // Edition 2021: set_var is safe; the lock above keeps other token tests from racing it.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin = "4711-0815".to_owned();
    init_token(&conf, label, &pin);
    TestToken { label: label.to_owned(), pin, conf, dir, _serial: serial }
}

/// Run `pkcs11-tool` against the SoftHSM module and return its standard output.
pub fn pkcs11_tool(token: &TestToken, args: &[&str]) -> String {
    let out = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &token.conf)
        .args(["--module", MODULE, "--token-label", &token.label])
        .args(args)
        .output()
        .expect("pkcs11-tool (OpenSC) is installed by the setup script");
    assert!(out.status.success(), "pkcs11-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `openssl` and fail the test with its error output if it fails.
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
