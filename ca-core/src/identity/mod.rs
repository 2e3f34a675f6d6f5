//! Who a certificate is about: IIN/BIN, the subject DN of the national profile, and reading
//! both back out of any certificate.

mod number;
mod read;
mod subject;

pub use number::{check_digit, Bin, IdNumberError, Iin};
pub use read::{format_dn, name_attribute, CertificateIdentity, KeyType};
pub use subject::{validate_email, Organisation, Person, Subject, SubjectError, GIVEN_NAME};
