//! Helpers shared by the `ca` command's end-to-end tests: running the binary on a CA directory,
//! the real openssl, and SoftHSM2 tokens under their own configuration.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PASS: &str = "test passphrase of the CA";
pub const P12_PASSWORD: &str = "p12 password";
pub const IIN: &str = "880101300010";
pub const BIN: &str = "121340012348";
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Runs `ca --dir DIR …` with a fixed environment (CA passphrase, PKCS#12 password, extras).
pub struct CaRunner {
    pub dir: PathBuf,
    env: Vec<(String, String)>,
}

impl CaRunner {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            env: vec![
                ("CA_PASSPHRASE".into(), PASS.into()),
                ("CA_P12_PASSWORD".into(), P12_PASSWORD.into()),
                ("CA_APPLICANT_P12_PASSWORD".into(), P12_PASSWORD.into()),
            ],
        }
    }

    /// Set (or override) an environment variable for every run.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.as_ref().to_string_lossy().into_owned()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ca"));
        c.arg("--dir").arg(&self.dir).args(args).env_remove("CA_DIR").stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ca")
    }

    /// Run and require success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ca {args:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run with `--json` and parse the output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("JSON output")
    }

    /// `ca serve` on a free loopback port, once it accepts connections; kill the child when done.
    pub fn serve(&self) -> (std::process::Child, u16) {
        self.serve_with_stderr(Stdio::inherit())
    }

    /// [`serve`](Self::serve), its stderr (the log) going to `stderr`.
    pub fn serve_with_stderr(&self, stderr: Stdio) -> (std::process::Child, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server =
            self.command(&["serve", "--listen", &format!("127.0.0.1:{port}")]).stderr(stderr).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.try_wait() {
                panic!("ca serve stopped: {status}");
            }
            assert!(std::time::Instant::now() < deadline, "ca serve did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        (server, port)
    }

    /// Root and issuing certificates in one PEM file, for `openssl verify -CAfile`.
    pub fn chain_bundle(&self, out: &Path) -> PathBuf {
        let mut bundle = std::fs::read_to_string(self.dir.join("certs/root.pem")).unwrap();
        bundle.push_str(&std::fs::read_to_string(self.dir.join("certs/nca.pem")).unwrap());
        std::fs::write(out, bundle).unwrap();
        out.to_owned()
    }

    /// `openssl ocsp` for `cert` (issued by the CA `nca`) against the server on `port`, the
    /// answer verified with `bundle`; `extra` options are appended. Whether openssl succeeded,
    /// and all it printed.
    pub fn openssl_ocsp(&self, port: u16, cert: &Path, bundle: &Path, extra: &[&str]) -> (bool, String) {
        let issuer = self.dir.join("certs/nca.pem");
        let url = format!("http://127.0.0.1:{port}/ocsp");
        let mut args = vec![
            "ocsp",
            "-issuer",
            issuer.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-url",
            &url,
            "-CAfile",
            bundle.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        openssl(&args)
    }
}

pub fn openssl_output(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().expect("openssl must be installed (scripts/setup.sh)")
}

/// Success, and stdout + stderr.
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = openssl_output(args);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A key and a CSR made by openssl (`newkey` e.g. `["-newkey", "rsa:2048"]`).
pub fn openssl_csr(dir: &Path, name: &str, newkey: &[&str]) -> PathBuf {
    let csr = dir.join(format!("{name}.csr"));
    let key = dir.join(format!("{name}.key"));
    let mut args = vec!["req", "-new", "-nodes", "-subj", "/CN=x"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-keyout", key.to_str().unwrap(), "-out", csr.to_str().unwrap()]);
    let (made, text) = openssl(&args);
    assert!(made, "{text}");
    csr
}

/// A SoftHSM2 configuration of its own, with tokens initialised in it.
pub struct SoftHsm {
    pub tmp: tempfile::TempDir,
    pub conf: PathBuf,
}

impl SoftHsm {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = tmp.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = tmp.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
        )
        .unwrap();
        Self { tmp, conf }
    }

    pub fn init_token(&self, label: &str, pin: &str) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--init-token", "--free", "--label", label, "--so-pin", "87654321", "--pin", pin])
            .output()
            .expect("softhsm2-util is installed by scripts/setup.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// `pkcs11-tool` on one of this configuration's tokens.
    pub fn tool(&self, token: &str, pin: &str, args: &[&str]) -> Output {
        Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--module", MODULE, "--token-label", token, "--pin", pin])
            .args(args)
            .output()
            .expect("pkcs11-tool is installed by scripts/setup.sh")
    }
}

/// A registry CSV fixture (`fixtures/data/registry.csv`).
pub fn registry_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data/registry.csv")
}

/// The IIN of the first registry person whose CSV fields match `pick`.
pub fn iin_where(pick: impl Fn(&[&str]) -> bool) -> String {
    let text = std::fs::read_to_string(registry_csv()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("person,"))
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| pick(f))
        .map(|f| f[1].to_owned())
        .expect("such a person in the fixture")
}

/// A person the registry serves without refusal (alive, no exclusion, capable, not listed).
pub fn eligible(f: &[&str]) -> bool {
    f[5] == "1" && f[6] == "0" && f[7] == "1" && f[8] == "0"
}

fn openssl_ok(args: &[&str]) {
    let (ok, text) = openssl(args);
    assert!(ok, "openssl {args:?}: {text}");
}

/// An operator's key store: a certificate with the CA-operator role; key and certificate as PEM.
pub struct Operator {
    pub key: PathBuf,
    pub cert: PathBuf,
    pub serial: String,
    pub p12: PathBuf,
}

pub fn operator(ca: &CaRunner, work: &Path, profile: &str, iin: &str, name: &str) -> Operator {
    staff(ca, work, profile, iin, name, "ca-operator")
}

/// [`operator`] with another staff role (`state-corporation-operator` …).
pub fn staff(ca: &CaRunner, work: &Path, profile: &str, iin: &str, name: &str, role: &str) -> Operator {
    let r = ca.json(&[
        "issue",
        "--profile",
        profile,
        "--iin",
        iin,
        "--surname",
        "Оператор",
        "--given-name",
        name,
        "--role",
        role,
        "--generate-key",
        "--key-algorithm",
        "p256",
        "--p12-dir",
        work.to_str().unwrap(),
    ]);
    let p12 = r["pkcs12"].as_str().unwrap();
    let key = work.join(format!("{name}.key"));
    let cert = work.join(format!("{name}.pem"));
    let pass = format!("pass:{P12_PASSWORD}");
    openssl_ok(&["pkcs12", "-in", p12, "-passin", &pass, "-nodes", "-nocerts", "-out", key.to_str().unwrap()]);
    openssl_ok(&["pkcs12", "-in", p12, "-passin", &pass, "-clcerts", "-nokeys", "-out", cert.to_str().unwrap()]);
    Operator { key, cert, serial: r["serial"].as_str().unwrap().to_owned(), p12: PathBuf::from(p12) }
}

pub fn sign_statement(ca: &CaRunner, work: &Path, number: &str, key: &Path, cert: &Path) -> PathBuf {
    sign_statement_with(ca, work, number, key, cert, &[])
}

/// [`sign_statement`] with more `openssl cms -sign` options (`-noattr`, `-md sha384` …).
pub fn sign_statement_with(
    ca: &CaRunner,
    work: &Path,
    number: &str,
    key: &Path,
    cert: &Path,
    options: &[&str],
) -> PathBuf {
    let statement = ca.run(&["application", "statement", "--action", "operator-confirm", "--number", number]);
    assert!(statement.status.success());
    let input = work.join("statement.json");
    std::fs::write(&input, &statement.stdout).unwrap();
    let sig = work.join(format!("{number}.cms"));
    cms_sign(&input, key, cert, &sig, options);
    sig
}

/// `openssl cms -sign` of the bytes in `input` (attached, DER) into `out`, with more options.
pub fn cms_sign(input: &Path, key: &Path, cert: &Path, out: &Path, options: &[&str]) {
    openssl_ok(
        &[
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-in",
            input.to_str().unwrap(),
            "-signer",
            cert.to_str().unwrap(),
            "-inkey",
            key.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            out.to_str().unwrap(),
        ]
        .into_iter()
        .chain(options.iter().copied())
        .collect::<Vec<_>>(),
    );
}

/// `ca issue` of a test individual (IIN, surname ТЕСТОВ, name ТЕСТ) with `extra` arguments
/// (`--csr F`, or `--generate-key --key-algorithm p256` …).
pub fn issue_individual<'a>(profile: &'a str, iin: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["issue", "--profile", profile, "--iin", iin, "--surname", "ТЕСТОВ", "--given-name", "ТЕСТ"];
    args.extend_from_slice(extra);
    args
}

/// One HTTP/1.1 request to the server on `port`: (status, body).
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}\
         Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let start = text.find("\r\n\r\n").map(|p| p + 4).unwrap_or(text.len());
    (status, text[start..].to_owned())
}

/// `ca serve`, stopped when dropped — also when an assertion fails, so that no server outlives
/// the test holding its output pipe.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
