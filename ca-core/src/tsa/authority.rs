//! The authority itself: its certificate, its key and its clock.

use std::sync::Arc;

use ::cms::content_info::ContentInfo;
use const_oid::AssociatedOid;
use der::asn1::{GeneralizedTime, Int};
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;
use x509_tsp::{Accuracy, TspVersion, TstInfo};

use super::request::{self, AcceptedRequest, Rejection};
use super::{FailureInfo, PkiStatus, PkiStatusInfo, TimeStampResp, TsaSettings};
use crate::clock::Clock;
use crate::cms::{self, Encapsulated, ID_CT_TST_INFO, ID_KP_TIME_STAMPING};
use crate::serial::SerialNumber;
use crate::signer::Signer;

/// What became of a request, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Granted,
    Rejected(FailureInfo),
}

/// The authority cannot be set up with this certificate and key.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("the TSA certificate does not decode: {0}")]
    Certificate(String),
    #[error("the TSA key does not match the TSA certificate")]
    KeyMismatch,
    #[error("the TSA certificate is not a time-stamping certificate: {0}")]
    NotTimeStamping(&'static str),
}

/// A time-stamping authority: one certificate (id-kp-timeStamping, critical) and its key.
pub struct TimeStampAuthority {
    certificate: Certificate,
    certificate_der: Vec<u8>,
    signer: Arc<dyn Signer>,
    pub(super) clock: Arc<dyn Clock>,
    settings: TsaSettings,
}

impl TimeStampAuthority {
    /// Refuses a key that is not the certificate's and a certificate RFC 3161 2.3 does not
    /// allow to stamp: its extendedKeyUsage must be critical and hold id-kp-timeStamping only.
    pub fn new(
        certificate_der: &[u8],
        signer: Arc<dyn Signer>,
        clock: Arc<dyn Clock>,
        settings: TsaSettings,
    ) -> Result<Self, TsaError> {
        let certificate = Certificate::from_der(certificate_der).map_err(|e| TsaError::Certificate(e.to_string()))?;
        if certificate.tbs_certificate.subject_public_key_info != *signer.public_key() {
            return Err(TsaError::KeyMismatch);
        }
        let eku = certificate
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == ExtendedKeyUsage::OID)
            .ok_or(TsaError::NotTimeStamping("no extendedKeyUsage"))?;
        if !eku.critical {
            return Err(TsaError::NotTimeStamping("extendedKeyUsage is not critical"));
        }
        let purposes = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
            .map_err(|e| TsaError::Certificate(format!("extendedKeyUsage: {e}")))?;
        if purposes.0 != [ID_KP_TIME_STAMPING] {
            return Err(TsaError::NotTimeStamping("extendedKeyUsage is not id-kp-timeStamping alone"));
        }
        Ok(Self { certificate, certificate_der: certificate_der.to_vec(), signer, clock, settings })
    }

    /// The TSA certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn settings(&self) -> &TsaSettings {
        &self.settings
    }

    /// Answer the DER `request`: always a DER `TimeStampResp`.
    pub fn respond(&self, request: &[u8]) -> (Vec<u8>, Outcome) {
        let result = request::check(request, &self.settings).and_then(|accepted| self.stamp(&accepted));
        match result {
            Ok(token) => {
                let response = TimeStampResp {
                    status: PkiStatusInfo { status: PkiStatus::Granted, status_string: None, fail_info: None },
                    time_stamp_token: Some(token),
                };
                match response.to_der() {
                    Ok(der) => (der, Outcome::Granted),
                    Err(e) => {
                        tracing::error!(error = %e, "time-stamp response does not encode");
                        let failure = Rejection::new(FailureInfo::SystemFailure, "the response could not be encoded");
                        (rejection(&failure), Outcome::Rejected(FailureInfo::SystemFailure))
                    }
                }
            }
            Err(refused) => (rejection(&refused), Outcome::Rejected(refused.fail)),
        }
    }

    /// The token (ContentInfo) for an accepted request.
    fn stamp(&self, request: &AcceptedRequest) -> Result<ContentInfo, Rejection> {
        let now = self.clock.now();
        let validity = &self.certificate.tbs_certificate.validity;
        let (not_before, not_after) = (validity.not_before.to_unix_duration(), validity.not_after.to_unix_duration());
        let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        if unix < not_before.as_secs() || unix > not_after.as_secs() {
            tracing::error!("the TSA certificate is not valid now: renew it (ca tsa renew)");
            return Err(Rejection::new(FailureInfo::SystemFailure, "the TSA certificate is not valid now"));
        }
        let failure = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "{what}");
            Rejection::new(FailureInfo::SystemFailure, format!("{what}; try again later"))
        };
        let info = self.tst_info(request, now).map_err(|e| failure("the TSTInfo could not be made", &e))?;
        let content = info.to_der().map_err(|e| failure("the TSTInfo could not be encoded", &e))?;
        let token = cms::sign_encapsulated(
            &Encapsulated {
                content_type: ID_CT_TST_INFO,
                content: &content,
                detached: false,
                signing_time: None,
                include_certificates: request.cert_req,
            },
            self.signer.as_ref(),
            &self.certificate_der,
            &[],
        )
        .map_err(|e| failure("the time-stamping key could not sign", &e))?;
        ContentInfo::from_der(&token).map_err(|e| failure("the token does not decode", &e))
    }

    fn tst_info(&self, request: &AcceptedRequest, now: OffsetDateTime) -> der::Result<TstInfo> {
        let secs = u64::try_from(now.unix_timestamp()).map_err(|_| der::ErrorKind::DateTime)?;
        let millis = self.settings.accuracy_millis;
        let accuracy = Accuracy {
            seconds: (millis >= 1000).then_some(u64::from(millis / 1000)),
            millis: (millis % 1000 != 0).then_some((millis % 1000) as i16),
            micros: None,
        };
        Ok(TstInfo {
            version: TspVersion::V1,
            policy: request.policy,
            message_imprint: request.message_imprint.clone(),
            serial_number: Int::new(SerialNumber::random().as_bytes())?,
            gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))?,
            accuracy: Some(accuracy),
            ordering: false,
            nonce: request.nonce.clone(),
            tsa: self
                .settings
                .tsa_name
                .then(|| GeneralName::DirectoryName(self.certificate.tbs_certificate.subject.clone())),
            extensions: None,
        })
    }
}

/// A DER `TimeStampResp` with status rejection, the failInfo and the reason as statusString.
pub fn rejection(refused: &Rejection) -> Vec<u8> {
    TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string: Some(vec![refused.text.clone()]),
            fail_info: Some(refused.fail.to_bit_string()),
        },
        time_stamp_token: None,
    }
    .to_der()
    .unwrap_or_default()
}
