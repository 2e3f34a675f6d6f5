//! Running the real `openssl` (installed by scripts/setup.sh; a missing binary fails the test,
//! it never skips) and a throw-away `openssl ca` for `-gencrl`. Shared by the interop tests and
//! the benchmark.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use time::OffsetDateTime;

pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().expect("openssl must be installed (scripts/setup.sh)")
}

/// Run openssl, require success, return stdout and stderr together (some results, like
/// `verify OK`, go to stderr).
pub fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn write_pem(dir: &Path, name: &str, label: &str, der: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let pem = der::pem::encode_string(label, der::pem::LineEnding::LF, der).expect("PEM");
    std::fs::write(&path, pem).expect("write PEM");
    path
}

fn utc_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year repr:last_two][month][day][hour][minute][second]Z");
    t.format(&f).expect("format")
}

fn generalized_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    t.format(&f).expect("format")
}

/// The revocation field of an `index.txt` line, e.g. `250601120000Z,keyCompromise`, or with
/// openssl's `keyTime` form that adds an invalidity date.
pub fn revocation_field(
    revoked_at: OffsetDateTime,
    reason: Option<&str>,
    invalidity: Option<OffsetDateTime>,
) -> String {
    match (reason, invalidity) {
        (_, Some(inv)) => format!("{},keyTime,{}", utc_time(revoked_at), generalized_time(inv)),
        (Some(r), None) => format!("{},{r}", utc_time(revoked_at)),
        (None, None) => utc_time(revoked_at),
    }
}

/// An `openssl ca` directory with its own key and self-signed CA certificate.
pub struct OpensslCa {
    pub dir: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl OpensslCa {
    /// `key_args` e.g. `["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]`.
    pub fn new(dir: &Path, key_args: &[&str]) -> Self {
        let certificate = dir.join("ossl-ca.pem");
        let key = dir.join("ossl-ca.key");
        let mut args = vec!["req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=OpenSSL Test CA/C=KZ"];
        args.extend_from_slice(key_args);
        args.extend_from_slice(&["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        args.extend_from_slice(&["-keyout", path_str(&key), "-out", path_str(&certificate)]);
        openssl_ok(&args);
        Self { dir: dir.to_owned(), certificate, key }
    }

    /// Write `index.txt` with one `R` line per `(serial hex, revocation field)`.
    pub fn write_index(&self, revoked: impl IntoIterator<Item = (String, String)>) {
        let file = std::fs::File::create(self.dir.join("index.txt")).expect("index.txt");
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        for (i, (serial, revocation)) in revoked.into_iter().enumerate() {
            writeln!(w, "R\t491231235959Z\t{revocation}\t{}\tunknown\t/CN=cert {i}", serial.to_uppercase())
                .expect("write index");
        }
        w.flush().expect("flush index");
    }

    /// The command line of `openssl ca -gencrl` writing `out` (PEM); run it with [`openssl_ok`]
    /// or time it.
    pub fn gencrl_args(&self, out: &Path) -> Vec<String> {
        let dir = path_str(&self.dir);
        std::fs::write(self.dir.join("crlnumber"), "1000\n").expect("crlnumber");
        let config = format!(
            "[ ca ]\ndefault_ca = CA_default\n\
             [ CA_default ]\ndatabase = {dir}/index.txt\ncrlnumber = {dir}/crlnumber\n\
             certificate = {}\nprivate_key = {}\ndefault_md = sha256\ndefault_crl_days = 1\n\
             unique_subject = no\ncrl_extensions = crl_ext\n\
             [ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n",
            path_str(&self.certificate),
            path_str(&self.key),
        );
        let config_path = self.dir.join("ca.cnf");
        std::fs::write(&config_path, config).expect("ca.cnf");
        ["ca", "-gencrl", "-batch", "-config", path_str(&config_path), "-out", path_str(out)]
            .map(str::to_owned)
            .to_vec()
    }
}
