//! Where relying parties find a CA's CRLs, OCSP responder, certificates and policy statement.
//! Every URL written into a certificate comes from here, never from code.

/// Publication URLs of one CA deployment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicationUrls {
    /// Base URL under which CRLs are published: `<crl_base>/<ca>.crl`, `<crl_base>/<ca>_d.crl`.
    pub crl_base: String,
    /// The OCSP responder's URL.
    pub ocsp: String,
    /// Base URL of CA certificates for AIA caIssuers: `<ca_issuers_base>/<ca>.cer`.
    pub ca_issuers_base: String,
    /// The certification practice statement, used in the CPS qualifier and the user notice.
    pub cps: String,
}

impl PublicationUrls {
    /// URLs laid out the way `ca-server` serves them under one base URL.
    pub fn under(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            crl_base: format!("{base}/crl"),
            ocsp: format!("{base}/ocsp"),
            ca_issuers_base: format!("{base}/ca"),
            cps: format!("{base}/cps"),
        }
    }

    /// The full CRL of `ca`.
    pub fn crl(&self, ca: &str) -> String {
        format!("{}/{ca}.crl", self.crl_base.trim_end_matches('/'))
    }

    /// The delta CRL of `ca`, announced through FreshestCRL.
    pub fn delta_crl(&self, ca: &str) -> String {
        format!("{}/{ca}_d.crl", self.crl_base.trim_end_matches('/'))
    }

    /// The full CRL of partition `partition` of `ca`.
    pub fn partition_crl(&self, ca: &str, partition: u32) -> String {
        format!("{}/{ca}_p{partition}.crl", self.crl_base.trim_end_matches('/'))
    }

    /// The delta CRL of partition `partition` of `ca`.
    pub fn partition_delta_crl(&self, ca: &str, partition: u32) -> String {
        format!("{}/{ca}_p{partition}_d.crl", self.crl_base.trim_end_matches('/'))
    }

    /// The full CRL of `ca`, or of its partition.
    pub fn crl_for(&self, ca: &str, partition: Option<u32>) -> String {
        partition.map_or_else(|| self.crl(ca), |p| self.partition_crl(ca, p))
    }

    /// The delta CRL of `ca`, or of its partition.
    pub fn delta_crl_for(&self, ca: &str, partition: Option<u32>) -> String {
        partition.map_or_else(|| self.delta_crl(ca), |p| self.partition_delta_crl(ca, p))
    }

    /// The certificate of `ca` (DER), for AIA caIssuers.
    pub fn ca_certificate(&self, ca: &str) -> String {
        format!("{}/{ca}.cer", self.ca_issuers_base.trim_end_matches('/'))
    }

    /// Every URL must be an ASCII http(s) URL without spaces, to fit an IA5String.
    pub fn validate(&self) -> Result<(), String> {
        for (what, url) in [
            ("crl_base", &self.crl_base),
            ("ocsp", &self.ocsp),
            ("ca_issuers_base", &self.ca_issuers_base),
            ("cps", &self.cps),
        ] {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.is_ascii()
                && !url.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control());
            if !ok {
                return Err(format!("{what} = {url:?} is not an ASCII http(s) URL"));
            }
        }
        Ok(())
    }
}
