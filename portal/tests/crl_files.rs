//! The CRL directories the portal reads revocation from: a CRL published there is used at the
//! next verification, however little about the file looks changed. The portal looks at the
//! directory and the files (`stat`) on every verification, lists the directory again only when
//! its time changed, and reads a file again when it is another file (a rename, as CRLs are
//! published) or its time or size changed.

mod common;

use std::fs::{File, FileTimes};
use std::time::{Duration, SystemTime};

use common::TestPortal;

const PASSWORD: &str = "Степной7Ветер";

fn set_modified(path: &std::path::Path, at: SystemTime) {
    File::open(path).unwrap().set_times(FileTimes::new().set_modified(at)).unwrap();
}

/// The worst case for a cache keyed by time and size: the CRL is replaced by a rename with a
/// CRL of the same size, the file's and the directory's times set back to what they were.
/// Only the file's identity (inode) tells them apart; the revocation must be seen.
#[test]
fn a_crl_replaced_by_one_of_the_same_size_and_time_is_read_again() {
    let t = TestPortal::start();
    let holder = t.register_person(41, PASSWORD);
    let other = t.register_person(42, PASSWORD);
    let nca = t.crl_dir.join("nca.crl");
    // Old enough that no later change can share their time (past the racy window).
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::write(&nca, t.crl(&t.ca.issuing, &[&other.cert.serial])).unwrap();
    set_modified(&nca, long_ago);
    set_modified(&t.crl_dir, long_ago);
    assert_eq!(t.login_eds(&holder).0, 200, "the CRL lists another certificate");
    assert_eq!(t.login_eds(&holder).0, 200, "and again, from what the portal remembers");

    // The same length: ECDSA signatures vary by a byte or two, so make CRLs until one fits.
    let size = std::fs::metadata(&nca).unwrap().len();
    let revoking = (0..64)
        .map(|_| t.crl(&t.ca.issuing, &[&holder.cert.serial]))
        .find(|crl| crl.len() as u64 == size)
        .expect("a CRL of the same size within 64 tries");
    let staged = t.dir.path().join("nca.crl.new");
    std::fs::write(&staged, &revoking).unwrap();
    set_modified(&staged, long_ago);
    std::fs::rename(&staged, &nca).unwrap();
    set_modified(&t.crl_dir, long_ago);
    let meta = std::fs::metadata(&nca).unwrap();
    assert_eq!((meta.len(), meta.modified().unwrap()), (size, long_ago), "only the inode differs");

    let (status, body) = t.login_eds(&holder);
    assert_eq!(status, 401, "the revoking CRL is used: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("revoked"), "{body}");
}

/// A CRL written in place (same file) after the portal looked is read again, even when its
/// size and time did not change, while its time is recent: a later write may share it (file
/// times come from a coarse clock). A time ahead of the clock stays recent, which keeps the
/// test independent of how long a login takes on a loaded machine.
#[test]
fn a_crl_rewritten_in_place_with_a_recent_time_is_read_again() {
    let t = TestPortal::start();
    let holder = t.register_person(43, PASSWORD);
    let other = t.register_person(44, PASSWORD);
    let nca = t.crl_dir.join("nca.crl");
    let now = SystemTime::now() + Duration::from_secs(300);
    std::fs::write(&nca, t.crl(&t.ca.issuing, &[&other.cert.serial])).unwrap();
    set_modified(&nca, now);
    assert_eq!(t.login_eds(&holder).0, 200, "the CRL lists another certificate");

    let size = std::fs::metadata(&nca).unwrap().len();
    let revoking = (0..64)
        .map(|_| t.crl(&t.ca.issuing, &[&holder.cert.serial]))
        .find(|crl| crl.len() as u64 == size)
        .expect("a CRL of the same size within 64 tries");
    std::fs::write(&nca, &revoking).unwrap();
    set_modified(&nca, now);
    let (status, body) = t.login_eds(&holder);
    assert_eq!(status, 401, "the rewritten CRL is used: {body}");
}
