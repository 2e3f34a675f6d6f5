//! Name constraints (RFC 5280 §4.2.1.10, §6.1.3(b)(c), §6.1.4(g)) for every name form.
//!
//! Instead of computing the intersection of permitted subtrees name form by name form, the
//! state keeps every certificate's permitted set: a name must fall inside each of them (for
//! the sets that constrain its form), which is the same as falling inside the intersection.

use der::Encode;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::NameConstraints;
use x509_cert::name::Name;

use super::cert::PkixCert;
use super::name::{email_addresses, name_within};

/// A name of the subject to check against the constraints.
#[derive(Debug)]
enum SubjectName<'a> {
    General(&'a GeneralName),
    /// An emailAddress attribute of the subject DN, checked as an rfc822Name.
    Email(String),
    Directory(&'a Name),
}

/// Which name form a constraint or name belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Other,
    Rfc822,
    Dns,
    Directory,
    EdiParty,
    Uri,
    Ip,
    Registered,
}

fn form(name: &GeneralName) -> Form {
    match name {
        GeneralName::OtherName(_) => Form::Other,
        GeneralName::Rfc822Name(_) => Form::Rfc822,
        GeneralName::DnsName(_) => Form::Dns,
        GeneralName::DirectoryName(_) => Form::Directory,
        GeneralName::EdiPartyName(_) => Form::EdiParty,
        GeneralName::UniformResourceIdentifier(_) => Form::Uri,
        GeneralName::IpAddress(_) => Form::Ip,
        GeneralName::RegisteredId(_) => Form::Registered,
    }
}

impl SubjectName<'_> {
    fn form(&self) -> Form {
        match self {
            SubjectName::General(g) => form(g),
            SubjectName::Email(_) => Form::Rfc822,
            SubjectName::Directory(_) => Form::Directory,
        }
    }
}

/// The name constraints accumulated along a path.
#[derive(Debug, Default)]
pub struct NameConstraintState {
    permitted: Vec<Vec<GeneralSubtree>>,
    excluded: Vec<GeneralSubtree>,
}

impl NameConstraintState {
    /// §6.1.4(g): add a CA certificate's constraints.
    pub fn add(&mut self, nc: &NameConstraints) -> Result<(), String> {
        for subtree in nc.permitted_subtrees.iter().flatten().chain(nc.excluded_subtrees.iter().flatten()) {
            // §4.2.1.10: minimum MUST be zero and maximum MUST be absent.
            if subtree.minimum != 0 || subtree.maximum.is_some() {
                return Err("a name constraint with minimum or maximum, which RFC 5280 forbids".into());
            }
        }
        if let Some(permitted) = &nc.permitted_subtrees {
            self.permitted.push(permitted.clone());
        }
        self.excluded.extend(nc.excluded_subtrees.iter().flatten().cloned());
        Ok(())
    }

    /// §6.1.3(b)(c): the subject DN, its emailAddress attributes and every subjectAltName of
    /// `cert` must be within the permitted and outside the excluded subtrees.
    pub fn check(&self, cert: &PkixCert) -> Result<(), String> {
        if self.permitted.is_empty() && self.excluded.is_empty() {
            return Ok(());
        }
        let mut names = Vec::new();
        if !cert.subject().0.is_empty() {
            names.push(SubjectName::Directory(cert.subject()));
        }
        // §4.2.1.10 requires this when there is no subjectAltName; checking them always is
        // the stricter reading (an address in the DN is still a name the CA vouched for).
        names.extend(email_addresses(cert.subject()).into_iter().map(SubjectName::Email));
        names.extend(cert.ext.subject_alt_name.iter().flatten().map(SubjectName::General));
        for name in &names {
            let f = name.form();
            for set in &self.permitted {
                let of_form: Vec<&GeneralSubtree> = set.iter().filter(|s| form(&s.base) == f).collect();
                if !of_form.is_empty() && !of_form.iter().any(|s| within(name, &s.base).unwrap_or(false)) {
                    return Err(format!("{} is not within the permitted subtrees", describe(name)));
                }
            }
            for s in self.excluded.iter().filter(|s| form(&s.base) == f) {
                // A form this engine cannot compare is refused rather than assumed outside.
                if within(name, &s.base).unwrap_or(true) {
                    return Err(format!("{} is within an excluded subtree", describe(name)));
                }
            }
        }
        Ok(())
    }
}

fn describe(name: &SubjectName<'_>) -> String {
    match name {
        SubjectName::Directory(n) => format!("directoryName {}", crate::identity::format_dn(n)),
        SubjectName::Email(e) => format!("emailAddress {e}"),
        SubjectName::General(GeneralName::Rfc822Name(s)) => format!("rfc822Name {}", s.as_str()),
        SubjectName::General(GeneralName::DnsName(s)) => format!("dNSName {}", s.as_str()),
        SubjectName::General(GeneralName::UniformResourceIdentifier(s)) => format!("URI {}", s.as_str()),
        SubjectName::General(GeneralName::DirectoryName(n)) => {
            format!("directoryName {}", crate::identity::format_dn(n))
        }
        SubjectName::General(GeneralName::IpAddress(ip)) => format!("iPAddress {}", hex::encode(ip.as_bytes())),
        SubjectName::General(g) => format!("{:?} name", form(g)),
    }
}

/// Whether `name` lies within the subtree `base` (same form); `None` when the form cannot be
/// compared (x400Address, ediPartyName: compared by encoding is the best an engine can do,
/// and a mismatch there is only "not provably within").
fn within(name: &SubjectName<'_>, base: &GeneralName) -> Option<bool> {
    match (name, base) {
        (SubjectName::Directory(n), GeneralName::DirectoryName(b)) => Some(name_within(n, b)),
        (SubjectName::General(GeneralName::DirectoryName(n)), GeneralName::DirectoryName(b)) => Some(name_within(n, b)),
        (SubjectName::Email(e), GeneralName::Rfc822Name(b)) => Some(mailbox_within(e, b.as_str())),
        (SubjectName::General(GeneralName::Rfc822Name(n)), GeneralName::Rfc822Name(b)) => {
            Some(mailbox_within(n.as_str(), b.as_str()))
        }
        (SubjectName::General(GeneralName::DnsName(n)), GeneralName::DnsName(b)) => {
            Some(dns_within(n.as_str(), b.as_str()))
        }
        (
            SubjectName::General(GeneralName::UniformResourceIdentifier(n)),
            GeneralName::UniformResourceIdentifier(b),
        ) => uri_host(n.as_str()).map(|host| host_within(&host, b.as_str())),
        (SubjectName::General(GeneralName::IpAddress(n)), GeneralName::IpAddress(b)) => {
            Some(ip_within(n.as_bytes(), b.as_bytes()))
        }
        (SubjectName::General(GeneralName::RegisteredId(n)), GeneralName::RegisteredId(b)) => Some(n == b),
        (SubjectName::General(GeneralName::OtherName(n)), GeneralName::OtherName(b)) => {
            (n.type_id == b.type_id && n.to_der().ok() == b.to_der().ok()).then_some(true)
        }
        _ => None,
    }
}

/// rfc822Name constraint forms: a mailbox (exact), a host (all mailboxes at it), or a domain
/// with a leading period (mailboxes at any host under it).
fn mailbox_within(mailbox: &str, constraint: &str) -> bool {
    let Some((local, host)) = mailbox.rsplit_once('@') else {
        return false;
    };
    match constraint.rsplit_once('@') {
        Some((c_local, c_host)) => local == c_local && host.eq_ignore_ascii_case(c_host),
        None if constraint.starts_with('.') => ends_with_ignore_case(host, constraint),
        None => host.eq_ignore_ascii_case(constraint),
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.is_char_boundary(s.len() - suffix.len())
        && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// dNSName: the constraint's name with zero or more labels added on the left.
fn dns_within(name: &str, constraint: &str) -> bool {
    let constraint = constraint.trim_start_matches('.');
    if constraint.is_empty() {
        return true;
    }
    name.eq_ignore_ascii_case(constraint) || ends_with_ignore_case(name, &format!(".{constraint}"))
}

/// URI constraints name a host: exact, or with a leading period any host under the domain.
fn host_within(host: &str, constraint: &str) -> bool {
    if constraint.starts_with('.') {
        ends_with_ignore_case(host, constraint)
    } else {
        host.eq_ignore_ascii_case(constraint)
    }
}

/// The host of a URI (RFC 3986 authority without userinfo and port); `None` when there is no
/// authority, which §4.2.1.10 says fails a URI constraint.
fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host =
        if let Some(v6) = host_port.strip_prefix('[') { v6.split(']').next()? } else { host_port.split(':').next()? };
    (!host.is_empty()).then(|| host.to_owned())
}

/// iPAddress constraints are an address followed by a mask of the same length.
fn ip_within(address: &[u8], constraint: &[u8]) -> bool {
    let n = address.len();
    if constraint.len() != 2 * n {
        return false;
    }
    let (net, mask) = constraint.split_at(n);
    address.iter().zip(net).zip(mask).all(|((a, b), m)| a & m == b & m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_rfc822_constraints() {
        assert!(mailbox_within("a@example.com", "example.com"));
        assert!(!mailbox_within("a@x.example.com", "example.com"));
        assert!(mailbox_within("a@x.example.com", ".example.com"));
        assert!(!mailbox_within("a@example.com", ".example.com"));
        assert!(mailbox_within("a@EXAMPLE.com", "a@example.com"));
        assert!(!mailbox_within("b@example.com", "a@example.com"));
    }

    #[test]
    fn dns_uri_and_ip() {
        assert!(dns_within("www.example.com", "example.com"));
        assert!(!dns_within("wwwexample.com", "example.com"));
        assert_eq!(uri_host("http://user@Host.example.com:80/x").as_deref(), Some("Host.example.com"));
        assert_eq!(uri_host("urn:isbn:123"), None);
        assert!(ip_within(&[10, 1, 2, 3], &[10, 0, 0, 0, 255, 0, 0, 0]));
        assert!(!ip_within(&[11, 1, 2, 3], &[10, 0, 0, 0, 255, 0, 0, 0]));
    }
}
