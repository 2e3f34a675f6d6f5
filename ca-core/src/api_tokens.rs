//! The bearer tokens of the systems allowed to call `/api/v1/cms/sign`, kept in
//! `<ca dir>/system/api-tokens` as the SHA-256 of each token (the token itself is shown once
//! and never stored). One token a line:
//!
//! ```text
//! <SHA-256 hex> <created, RFC 3339> <revoked, RFC 3339, or -> <label…>
//! ```
//!
//! A token's id is the first 12 hex digits of its SHA-256: enough to name it in `ca system
//! token revoke`, useless to an attacker (the file holds the whole digest anyway). Revoking
//! keeps the line with its revocation time, so the list still shows who had access and until
//! when. Files written before labels had their own column (a bare digest under a `# label
//! (added …)` comment) are read too.
//!
//! Adding appends; revoking rewrites the file atomically. The two may run at the same time
//! from different commands: a rewrite re-reads the file before it renames its copy over it,
//! and an append checks afterwards that it wrote to the file now at the path, or appends again.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Hex digits of the digest that name a token.
pub const ID_LEN: usize = 12;

/// One token of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// SHA-256 of the token.
    pub digest: [u8; 32],
    /// Who it is for.
    pub label: String,
    /// `None` for entries written before creation times were kept.
    pub created: Option<OffsetDateTime>,
    pub revoked: Option<OffsetDateTime>,
}

/// The token list cannot be read, parsed or changed.
#[derive(Debug, thiserror::Error)]
pub enum TokenListError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("no token with id {0}")]
    UnknownId(String),
    #[error("{0} names more than one token: give more of its digits")]
    Ambiguous(String),
    #[error("token {id} was already revoked at {at}; nothing was changed")]
    AlreadyRevoked { id: String, at: String },
    #[error("a label must be one line")]
    BadLabel,
    #[error("{path} changed while it was being rewritten; run the command again")]
    Contended { path: PathBuf },
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

impl ApiToken {
    /// A new, unrevoked entry for the token `secret`.
    pub fn new(secret: &[u8], label: impl Into<String>, created: OffsetDateTime) -> Result<Self, TokenListError> {
        let label = label.into();
        if label.contains(['\n', '\r']) {
            return Err(TokenListError::BadLabel);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret).as_ref());
        Ok(Self { digest, label, created: Some(created), revoked: None })
    }

    pub fn id(&self) -> String {
        hex::encode(self.digest)[..ID_LEN].to_owned()
    }

    pub fn is_active(&self) -> bool {
        self.revoked.is_none()
    }

    /// The line of the file (without the newline).
    pub fn line(&self) -> String {
        let created = self.created.map_or_else(|| "-".to_owned(), rfc3339);
        let revoked = self.revoked.map_or_else(|| "-".to_owned(), rfc3339);
        format!("{} {created} {revoked} {}", hex::encode(self.digest), self.label).trim_end().to_owned()
    }
}

fn time_field(field: &str, line: usize, what: &str) -> Result<Option<OffsetDateTime>, TokenListError> {
    if field == "-" {
        return Ok(None);
    }
    OffsetDateTime::parse(field, &Rfc3339)
        .map(Some)
        .map_err(|e| TokenListError::Line { line, message: format!("{what} time {field:?}: {e}") })
}

/// The label of an old-style entry: the comment above it, `# label (added TIME)`.
fn legacy_label(comment: Option<&str>) -> (String, Option<OffsetDateTime>) {
    let Some(text) = comment else { return (String::new(), None) };
    if let Some((label, rest)) = text.rsplit_once(" (added ") {
        if let Some(Ok(t)) = rest.strip_suffix(')').map(|t| OffsetDateTime::parse(t, &Rfc3339)) {
            return (label.to_owned(), Some(t));
        }
    }
    (text.to_owned(), None)
}

/// Each entry with the number (from 0) of the line it is on.
fn parse_lines(text: &str) -> Result<Vec<(usize, ApiToken)>, TokenListError> {
    let mut out = Vec::new();
    let mut comment: Option<&str> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            comment = None;
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            comment = Some(c.trim());
            continue;
        }
        let mut fields = line.splitn(4, char::is_whitespace);
        let hex_digest = fields.next().unwrap_or_default();
        let bytes =
            hex::decode(hex_digest).map_err(|e| TokenListError::Line { line: i + 1, message: e.to_string() })?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TokenListError::Line { line: i + 1, message: "a SHA-256 is 64 hex digits".into() })?;
        let token = match fields.next() {
            None => {
                let (label, created) = legacy_label(comment);
                ApiToken { digest, label, created, revoked: None }
            }
            Some(created) => {
                let created = time_field(created, i + 1, "creation")?;
                let revoked = fields.next().ok_or_else(|| TokenListError::Line {
                    line: i + 1,
                    message: "expected: digest created revoked|- label".into(),
                })?;
                let revoked = time_field(revoked, i + 1, "revocation")?;
                let label = fields.next().unwrap_or_default().trim().to_owned();
                ApiToken { digest, label, created, revoked }
            }
        };
        comment = None;
        out.push((i, token));
    }
    Ok(out)
}

/// Every entry of a token list, revoked ones included.
pub fn parse(text: &str) -> Result<Vec<ApiToken>, TokenListError> {
    Ok(parse_lines(text)?.into_iter().map(|(_, t)| t).collect())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenListError + '_ {
    move |source| TokenListError::Io { path: path.to_owned(), source }
}

/// The list at `path`; none when the file does not exist.
pub fn read(path: &Path) -> Result<Vec<ApiToken>, TokenListError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(path)(e)),
    }
}

const HEADER: &str = "# Bearer tokens for /api/v1/cms/sign: SHA-256, created, revoked (or -), label.\n";

/// Append `token` to the list at `path` (created with mode 0600 if new).
pub fn add(path: &Path, token: &ApiToken) -> Result<(), TokenListError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // A revocation may rename a new copy over the file while we append to the old one: append
    // again until the file we wrote to is the one at the path.
    for _ in 0..8 {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io(path))?;
        let mut text = String::new();
        if file.metadata().map_err(io(path))?.len() == 0 {
            text.push_str(HEADER);
        }
        text.push_str(&token.line());
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        if same_file(&file, path)? {
            return Ok(());
        }
    }
    Err(TokenListError::Contended { path: path.to_owned() })
}

#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> Result<bool, TokenListError> {
    use std::os::unix::fs::MetadataExt as _;
    let ours = file.metadata().map_err(io(path))?;
    let now = std::fs::metadata(path).map_err(io(path))?;
    Ok(ours.ino() == now.ino() && ours.dev() == now.dev())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::File, _: &Path) -> Result<bool, TokenListError> {
    Ok(true)
}

/// Mark the token whose id starts with `id` (at least 8 hex digits) revoked at `at`; the
/// entry as it is now.
pub fn revoke(path: &Path, id: &str, at: OffsetDateTime) -> Result<ApiToken, TokenListError> {
    let wanted = id.trim().to_ascii_lowercase();
    if wanted.len() < 8 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenListError::UnknownId(id.to_owned()));
    }
    for _ in 0..8 {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TokenListError::UnknownId(id.into())),
            Err(e) => return Err(io(path)(e)),
        };
        let entries = parse_lines(&text)?;
        let mut matching = entries.iter().filter(|(_, t)| hex::encode(t.digest).starts_with(&wanted));
        let (line, token) = match (matching.next(), matching.next()) {
            (None, _) => return Err(TokenListError::UnknownId(id.to_owned())),
            (Some(_), Some(_)) => return Err(TokenListError::Ambiguous(id.to_owned())),
            (Some((line, token)), None) => (*line, token.clone()),
        };
        if let Some(at) = token.revoked {
            return Err(TokenListError::AlreadyRevoked { id: token.id(), at: rfc3339(at) });
        }
        let revoked = ApiToken { revoked: Some(at), ..token };
        let replacement = revoked.line();
        let mut new_text = String::with_capacity(text.len() + 32);
        for (i, raw) in text.lines().enumerate() {
            new_text.push_str(if i == line { &replacement } else { raw });
            new_text.push('\n');
        }
        // Rename only over what we read: an append in between is kept by reading again.
        if std::fs::read_to_string(path).map_err(io(path))? != text {
            continue;
        }
        crate::fs::write_atomically(path, new_text.as_bytes(), crate::fs::AtomicWrite::PRIVATE).map_err(io(path))?;
        return Ok(revoked);
    }
    Err(TokenListError::Contended { path: path.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn entries_round_trip_and_old_files_are_read() {
        let t = ApiToken::new(b"secret", "counter workstation 7", at("2026-01-02T03:04:05Z")).unwrap();
        assert_eq!(parse(&t.line()).unwrap(), vec![t.clone()]);
        assert_eq!(t.id().len(), ID_LEN);
        let old = format!("# portal (added 2025-12-01T00:00:00Z)\n{}\n\n{}\n", "ab".repeat(32), "cd".repeat(32));
        let parsed = parse(&old).unwrap();
        assert_eq!(parsed[0].label, "portal");
        assert_eq!(parsed[0].created, Some(at("2025-12-01T00:00:00Z")));
        assert_eq!((parsed[1].label.as_str(), parsed[1].created), ("", None));
        assert!(parsed.iter().all(ApiToken::is_active));
        assert!(ApiToken::new(b"x", "two\nlines", at("2026-01-01T00:00:00Z")).is_err());
        assert!(matches!(parse("abc"), Err(TokenListError::Line { line: 1, .. })));
        let bad_time = format!("{} yesterday - x", "ab".repeat(32));
        assert!(matches!(parse(&bad_time), Err(TokenListError::Line { line: 1, .. })));
    }

    #[test]
    fn revoking_keeps_the_entry_and_every_other_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("system/api-tokens");
        let created = at("2026-01-02T03:04:05Z");
        let a = ApiToken::new(b"token a", "portal", created).unwrap();
        let b = ApiToken::new(b"token b", "counter 7", created).unwrap();
        let legacy = "# old one (added 2025-01-01T00:00:00Z)\n".to_owned() + &"ef".repeat(32) + "\n";
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &legacy).unwrap();
        add(&path, &a).unwrap();
        add(&path, &b).unwrap();
        assert_eq!(read(&path).unwrap().len(), 3);

        let revoked = revoke(&path, &a.id(), at("2026-02-01T00:00:00Z")).unwrap();
        assert_eq!(revoked.revoked, Some(at("2026-02-01T00:00:00Z")));
        let now = read(&path).unwrap();
        assert_eq!(now.iter().filter(|t| t.is_active()).count(), 2);
        assert_eq!(now[1].label, "portal");
        assert!(!now[1].is_active());
        assert!(matches!(
            revoke(&path, &a.id(), at("2026-03-01T00:00:00Z")),
            Err(TokenListError::AlreadyRevoked { .. })
        ));
        assert!(matches!(revoke(&path, "00000000", at("2026-03-01T00:00:00Z")), Err(TokenListError::UnknownId(_))));
        assert!(matches!(revoke(&path, "ef", at("2026-03-01T00:00:00Z")), Err(TokenListError::UnknownId(_))));
        // The old-style entry can be revoked by its id too; its label survives the rewrite.
        let old = revoke(&path, &"ef".repeat(6), at("2026-03-01T00:00:00Z")).unwrap();
        assert_eq!(old.label, "old one");
        assert_eq!(read(&path).unwrap().iter().filter(|t| t.is_active()).count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary files");
    }
}
