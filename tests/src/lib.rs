//! Helpers for the interoperability tests in `tests/tests/`: running the real `openssl` and
//! `xmlsec1`. The setup script installs them; a missing binary fails the tests rather than
//! skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `openssl` with `args`; panics if the binary cannot be started.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().expect("openssl must be installed (scripts/setup.sh)")
}

/// Run `openssl` and require success; returns stdout as text.
pub fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `xmlsec1` with `args`; panics if the binary cannot be started (scripts/setup.sh
/// installs it).
pub fn xmlsec1(args: &[&str]) -> Output {
    Command::new("xmlsec1").args(args).output().expect("xmlsec1 must be installed (scripts/setup.sh)")
}

/// Write DER as a PEM file with `label`.
pub fn write_pem(dir: &Path, name: &str, label: &str, der: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let pem = der::pem::encode_string(label, der::pem::LineEnding::LF, der).expect("PEM");
    std::fs::write(&path, pem).expect("write PEM");
    path
}

/// Make a key and a CSR with openssl; `newkey` is e.g. `rsa:2048` or `ec` with
/// `-pkeyopt ec_paramgen_curve:P-256`. Returns the CSR's PEM bytes.
pub fn openssl_csr(dir: &Path, name: &str, key_args: &[&str]) -> Vec<u8> {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let mut args = vec!["req", "-new", "-nodes", "-subj", "/CN=ignored by the CA"];
    args.extend_from_slice(key_args);
    let key_s = key.to_str().expect("utf-8 path").to_owned();
    let csr_s = csr.to_str().expect("utf-8 path").to_owned();
    args.extend_from_slice(&["-keyout", &key_s, "-out", &csr_s]);
    openssl_ok(&args);
    std::fs::read(&csr).expect("read CSR")
}

/// SoftHSM2's module, installed by the setup script.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 configuration of its own in `dir` (token files under `dir/tokens`), with tokens
/// `labels` initialised with user PIN `pin`. Returns the configuration file for `SOFTHSM2_CONF`.
pub fn softhsm_tokens(dir: &Path, labels: &[&str], pin: &str) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token directory");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )
    .expect("write softhsm2.conf");
    for label in labels {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label, "--so-pin", "87654321", "--pin", pin])
            .output()
            .expect("softhsm2-util is installed by scripts/setup.sh");
        assert!(out.status.success(), "softhsm2-util: {}", String::from_utf8_lossy(&out.stderr));
    }
    conf
}

/// Start `ca-server` with `services` on a free loopback port. The server runs until the returned
/// runtime is dropped.
pub fn serve(services: std::sync::Arc<ca_server::Services>) -> (u16, tokio::runtime::Runtime) {
    serve_on(services, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// [`serve`] with `workers` async worker threads.
pub fn serve_on(services: std::sync::Arc<ca_server::Services>, workers: usize) -> (u16, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("loopback port");
    let port = listener.local_addr().expect("bound address").port();
    runtime.spawn(ca_server::serve(listener, services));
    (port, runtime)
}

/// What `wrk` measured.
pub struct WrkRun {
    pub requests_per_second: f64,
    /// The 99th percentile latency as wrk prints it (`4.01ms`).
    pub p99: String,
    /// Everything wrk printed.
    pub text: String,
}

/// Run `wrk -t1 -c8 --latency` for `seconds` against `url` with `extra` options (e.g. `-s
/// script.lua`); warns on stderr when wrk saw non-2xx answers.
pub fn wrk(url: &str, seconds: f64, extra: &[&str]) -> WrkRun {
    let duration = format!("-d{}s", seconds.ceil() as u64);
    let mut args = vec!["-t1", "-c8", &duration, "--latency"];
    args.extend(extra);
    args.push(url);
    let out = Command::new("wrk").args(&args).output().expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let requests_per_second = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = text.lines().find_map(|l| l.trim().strip_prefix("99%")).map(str::trim).unwrap_or("?").to_owned();
    if text.contains("Non-2xx") {
        eprintln!("wrk saw errors:\n{text}");
    }
    WrkRun { requests_per_second, p99, text }
}

/// Operations per second of `op` run on `threads` threads for `seconds` (the baseline loops
/// of the benchmarks). `op` gets the thread's iteration count.
pub fn rate_on_threads(threads: usize, seconds: f64, op: impl Fn(usize) + Sync) -> f64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let start = std::time::Instant::now();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while std::time::Instant::now() < deadline {
                        op(n);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("benchmark thread")).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// A raw HTTP/1.1 exchange with a server on the loopback: the answer's status and body.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _, body) = http_with_head(port, method, path, headers, body);
    (status, body)
}

/// [`http`], with the response head (status line and headers) as text.
pub fn http_with_head(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the test server");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send the request head");
    let _ = s.write_all(body); // the server may refuse an oversized body before reading it
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let start = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..start]).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head, buf[start..].to_vec())
}

/// [`http`] over a connection kept alive (HTTP/1.1 persistent connections, as a browser keeps
/// them): one connection per thread and port, opened on first use and again when the server
/// closed it. The answer must carry a Content-Length (what axum sends for the JSON answers).
pub fn http_keep_alive(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    thread_local! {
        static CONNECTIONS: RefCell<HashMap<u16, BufReader<std::net::TcpStream>>> = RefCell::new(HashMap::new());
    }
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let request = [head.as_bytes(), body].concat();
    let exchange = |connection: &mut BufReader<std::net::TcpStream>| -> std::io::Result<(u16, bool, Vec<u8>)> {
        connection.get_mut().write_all(&request)?;
        let (mut status, mut length, mut close) = (0u16, None, false);
        let mut line = String::new();
        loop {
            line.clear();
            if connection.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if l.starts_with("HTTP/") {
                status = l.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if let Some((name, value)) = l.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse::<usize>().ok(),
                    "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut answer = vec![0; length.expect("an answer with a Content-Length")];
        connection.read_exact(&mut answer)?;
        Ok((status, close, answer))
    };
    let connect =
        || BufReader::new(std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the test server"));
    CONNECTIONS.with(|c| {
        let mut connections = c.borrow_mut();
        let kept = connections.remove(&port);
        let fresh = kept.is_none();
        let mut connection = kept.unwrap_or_else(connect);
        let (status, close, answer) = match exchange(&mut connection) {
            Ok(answer) => answer,
            // A kept connection the server has closed since fails at once: again on a new one.
            Err(_) if !fresh => {
                connection = connect();
                exchange(&mut connection).expect("HTTP exchange with the test server")
            }
            Err(e) => panic!("HTTP exchange with the test server: {e}"),
        };
        if !close {
            connections.insert(port, connection);
        }
        (status, answer)
    })
}

/// A wrk script that posts `bodies` (JSON) in turn and stops a thread at the first answer that
/// is not a valid verification (so errors show as a collapsed rate, not as fast failures).
pub fn wrk_post_script(bodies: &[String]) -> String {
    let list: Vec<String> = bodies.iter().map(|b| format!("[[{b}]]")).collect();
    format!(
        "local bodies = {{ {} }}\nlocal i = 0\nwrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n\
         response = function(status, headers, body)\n  if not string.find(body, '\"valid\":true', 1, true) then\n    \
         wrk.thread:stop()\n  end\nend\n",
        list.join(", ")
    )
}

/// Services that verify for a CA: its `root` the only trust anchor, its `issuing` CA, status
/// from the store `dir/ca.db` (revocation required), `clock` the server's time; no system key
/// and no OCSP responder. What the API tests and benchmarks start.
pub fn verifying_services(
    dir: &Path,
    root: &[u8],
    issuing: &[u8],
    clock: std::sync::Arc<dyn ca_core::clock::Clock>,
) -> ca_server::Services {
    let store = std::sync::Arc::new(ca_core::store::SqliteStore::open(&dir.join("ca.db")).expect("the CA's store"));
    let mut services = ca_server::Services::new(
        None,
        Some(store.clone() as std::sync::Arc<dyn ca_core::store::Store>),
        "nca",
        dir.join("crl"),
        dir.join("certs"),
    );
    let verifier = ca_server::Verifier::new(
        &[root.to_vec()],
        &[issuing.to_vec()],
        vec![issuing.to_vec(), root.to_vec()],
        clock.clone(),
    )
    .expect("verifier");
    services.verifier = Some(std::sync::Arc::new(verifier));
    services.nonces = Some(store);
    services.clock = clock;
    services
}
