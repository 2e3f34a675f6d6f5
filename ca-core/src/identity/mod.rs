//! Who a certificate is about: IIN/BIN, the subject DN of the national profile, and reading
//! both back out of any certificate.

mod number;
mod read;
mod subject;

pub use number::{check_digit, Bin, IdNumberError, Iin};
pub use read::{format_dn, name_attribute, name_attributes, CertificateIdentity, KeyType, NameAttribute};
pub use subject::{
    check_organisation_name, check_person_names, validate_email, Organisation, Person, Subject, SubjectError,
    GIVEN_NAME, UB_NAME, UB_ORGANISATION,
};
