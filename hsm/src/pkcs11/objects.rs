//! Objects on a token: listing them, writing certificates, re-keying and deleting by CKA_ID.
//!
//! Keys, public keys and certificates that belong together share one CKA_ID, the subject key
//! identifier (SHA-1 of the subjectPublicKey bits, as `ca_core::profile::key_identifier`
//! computes it), which is also how other PKCS#11 software pairs them.

use std::os::raw::c_ulong;

use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::{Decode, Encode};
use x509_cert::Certificate;

use super::error::{ck, TokenError};
use super::token::Token;

/// CKA_CERTIFICATE_CATEGORY, which cryptoki has no variant for.
const CKA_CERTIFICATE_CATEGORY: c_ulong = 0x87;

/// What kind of object it is (CKA_CLASS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenObjectClass {
    /// CKO_PRIVATE_KEY.
    PrivateKey,
    /// CKO_PUBLIC_KEY.
    PublicKey,
    /// CKO_CERTIFICATE.
    Certificate,
    /// CKO_DATA.
    Data,
    /// Anything else, with its CKO_ value.
    Other(u64),
}

/// CKA_KEY_TYPE of a key object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenKeyType {
    /// CKK_RSA.
    Rsa,
    /// CKK_EC.
    Ec,
    /// Anything else, with its CKK_ value.
    Other(u64),
}

/// The protection attributes of a private key. `None` where the token does not report one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrivateKeyFlags {
    /// CKA_EXTRACTABLE: the key may be wrapped out of the token.
    pub extractable: Option<bool>,
    /// CKA_NEVER_EXTRACTABLE: the key has never been extractable.
    pub never_extractable: Option<bool>,
    /// CKA_SENSITIVE: the key value cannot be read in the clear.
    pub sensitive: Option<bool>,
    /// CKA_ALWAYS_SENSITIVE: the key has always been sensitive.
    pub always_sensitive: Option<bool>,
    /// CKA_LOCAL: the key was generated on the token.
    pub local: Option<bool>,
    /// CKA_SIGN.
    pub sign: Option<bool>,
    /// CKA_DECRYPT.
    pub decrypt: Option<bool>,
    /// CKA_UNWRAP.
    pub unwrap: Option<bool>,
}

/// One object on the token, as far as we describe it. Private objects are only listed while
/// the user is logged in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenObject {
    /// CKA_CLASS.
    pub class: TokenObjectClass,
    /// CKA_LABEL (lossy UTF-8).
    pub label: String,
    /// CKA_ID.
    #[serde(serialize_with = "hex_bytes")]
    pub id: Vec<u8>,
    /// CKA_KEY_TYPE, for keys.
    pub key_type: Option<TokenKeyType>,
    /// Protection attributes, for private keys.
    pub private_key: Option<PrivateKeyFlags>,
    /// CKA_VALUE, for certificates: the DER certificate.
    #[serde(skip)]
    pub certificate_der: Option<Vec<u8>>,
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

impl TokenObject {
    /// CKA_ID in lower-case hex, as `pkcs11-tool` prints it.
    pub fn id_hex(&self) -> String {
        hex::encode(&self.id)
    }
}

/// CKA_CERTIFICATE_CATEGORY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateCategory {
    /// 0: not specified.
    Unspecified,
    /// 1: the token user's own certificate.
    TokenUser,
    /// 2: a certification authority's certificate.
    Authority,
    /// 3: another entity's certificate.
    OtherEntity,
}

impl CertificateCategory {
    fn value(self) -> c_ulong {
        match self {
            Self::Unspecified => 0,
            Self::TokenUser => 1,
            Self::Authority => 2,
            Self::OtherEntity => 3,
        }
    }
}

fn class_of(class: ObjectClass) -> TokenObjectClass {
    match class {
        ObjectClass::PRIVATE_KEY => TokenObjectClass::PrivateKey,
        ObjectClass::PUBLIC_KEY => TokenObjectClass::PublicKey,
        ObjectClass::CERTIFICATE => TokenObjectClass::Certificate,
        ObjectClass::DATA => TokenObjectClass::Data,
        // CK_ULONG is 32 bits on some platforms, so widen; never narrows.
        other => TokenObjectClass::Other(cryptoki_class_value(other) as u64),
    }
}

fn cryptoki_class_value(class: ObjectClass) -> c_ulong {
    // `ObjectClass` converts into CK_OBJECT_CLASS, which is a C `unsigned long`.
    class.into()
}

fn cryptoki_key_type_value(key_type: KeyType) -> c_ulong {
    key_type.into()
}

fn key_type_of(key_type: KeyType) -> TokenKeyType {
    match key_type {
        KeyType::RSA => TokenKeyType::Rsa,
        KeyType::EC => TokenKeyType::Ec,
        other => TokenKeyType::Other(cryptoki_key_type_value(other) as u64),
    }
}

/// Read one object's description. Attributes the object lacks are left out, not errors.
fn describe(session: &Session, handle: ObjectHandle) -> Result<TokenObject, TokenError> {
    use AttributeType as T;
    let attributes = session
        .get_attributes(handle, &[T::Class, T::Label, T::Id, T::KeyType])
        .map_err(ck("reading object attributes"))?;
    let mut object = TokenObject {
        class: TokenObjectClass::Data,
        label: String::new(),
        id: Vec::new(),
        key_type: None,
        private_key: None,
        certificate_der: None,
    };
    for attribute in attributes {
        match attribute {
            Attribute::Class(class) => object.class = class_of(class),
            Attribute::Label(label) => object.label = String::from_utf8_lossy(&label).into_owned(),
            Attribute::Id(id) => object.id = id,
            Attribute::KeyType(key_type) => object.key_type = Some(key_type_of(key_type)),
            _ => {}
        }
    }
    match object.class {
        TokenObjectClass::PrivateKey => {
            let mut flags = PrivateKeyFlags::default();
            let wanted = [
                T::Extractable,
                T::NeverExtractable,
                T::Sensitive,
                T::AlwaysSensitive,
                T::Local,
                T::Sign,
                T::Decrypt,
                T::Unwrap,
            ];
            for attribute in session.get_attributes(handle, &wanted).map_err(ck("reading key attributes"))? {
                match attribute {
                    Attribute::Extractable(v) => flags.extractable = Some(v),
                    Attribute::NeverExtractable(v) => flags.never_extractable = Some(v),
                    Attribute::Sensitive(v) => flags.sensitive = Some(v),
                    Attribute::AlwaysSensitive(v) => flags.always_sensitive = Some(v),
                    Attribute::Local(v) => flags.local = Some(v),
                    Attribute::Sign(v) => flags.sign = Some(v),
                    Attribute::Decrypt(v) => flags.decrypt = Some(v),
                    Attribute::Unwrap(v) => flags.unwrap = Some(v),
                    _ => {}
                }
            }
            object.private_key = Some(flags);
        }
        TokenObjectClass::Certificate => {
            let value = session.get_attributes(handle, &[T::Value]).map_err(ck("reading a certificate"))?;
            object.certificate_der = value.into_iter().find_map(|a| match a {
                Attribute::Value(der) => Some(der),
                _ => None,
            });
        }
        TokenObjectClass::PublicKey | TokenObjectClass::Data | TokenObjectClass::Other(_) => {}
    }
    Ok(object)
}

impl Token {
    /// Every object the session can see.
    pub fn list_objects(&self) -> Result<Vec<TokenObject>, TokenError> {
        self.with_anchor(|session| {
            let handles = session.find_objects(&[]).map_err(ck("listing objects"))?;
            handles.into_iter().map(|handle| describe(session, handle)).collect()
        })
    }

    /// Write an X.509 certificate as a token object with CKA_ID = the SKI of its public key,
    /// and return that ID. Writing the same certificate twice leaves one object, so a re-run of
    /// an interrupted personalization is harmless.
    pub fn write_certificate(
        &self,
        der: &[u8],
        label: &str,
        category: CertificateCategory,
    ) -> Result<Vec<u8>, TokenError> {
        let certificate = Certificate::from_der(der).map_err(|e| TokenError::malformed("certificate", e))?;
        let tbs = &certificate.tbs_certificate;
        let id = ca_core::profile::key_identifier(&tbs.subject_public_key_info);
        let encode = |what: &str, r: der::Result<Vec<u8>>| r.map_err(|e| TokenError::malformed(what, e));
        let subject = encode("certificate subject", tbs.subject.to_der())?;
        let issuer = encode("certificate issuer", tbs.issuer.to_der())?;
        let serial = encode("certificate serial number", tbs.serial_number.to_der())?;
        let template = vec![
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Modifiable(false),
            Attribute::Value(der.to_vec()),
            Attribute::Subject(subject),
            Attribute::Issuer(issuer),
            Attribute::SerialNumber(serial),
            Attribute::Id(id.clone()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_CERTIFICATE_CATEGORY),
                category.value().to_ne_bytes().to_vec(),
            )),
        ];
        self.with_anchor(|session| {
            let existing = session
                .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Value(der.to_vec())])
                .map_err(ck("looking for the certificate"))?;
            if existing.is_empty() {
                session.create_object(&template).map_err(ck("writing a certificate"))?;
            }
            Ok(id)
        })
    }

    /// Delete every object with CKA_ID `id` (key pair and certificate) and return how many were
    /// deleted. Used to clean up after a failed personalization.
    pub fn delete_objects_by_id(&self, id: &[u8]) -> Result<usize, TokenError> {
        self.with_anchor(|session| {
            let handles = session.find_objects(&[Attribute::Id(id.to_vec())]).map_err(ck("finding objects"))?;
            for handle in &handles {
                session.destroy_object(*handle).map_err(ck("deleting an object"))?;
            }
            Ok(handles.len())
        })
    }

    /// Set CKA_ID `new` on every object that has CKA_ID `old`, and return how many changed.
    pub fn replace_id(&self, old: &[u8], new: &[u8]) -> Result<usize, TokenError> {
        self.with_anchor(|session| {
            let handles = session.find_objects(&[Attribute::Id(old.to_vec())]).map_err(ck("finding objects"))?;
            for handle in &handles {
                session.update_attributes(*handle, &[Attribute::Id(new.to_vec())]).map_err(ck("setting CKA_ID"))?;
            }
            Ok(handles.len())
        })
    }
}
