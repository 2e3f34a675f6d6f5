//! The national signing client's JSON protocol. A request is one text frame
//! `{"module":"kz.gov.pki.knca.commonUtils","method":M,"args":[…]}`; the answer is one frame
//! `{"code":"200","responseObject":…}`, or `{"code":"500","message":…}` with one of the
//! messages below (the code is a string, as the national client sends it).

use std::sync::Arc;

use base64::Engine;
use ca_core::clock::Clock;
use ca_core::identity::KeyType;
use serde_json::{json, Value};

use crate::confirm::{describe, Confirmation, Confirmer};
use crate::keys::KeyEntry;

/// The module every request names.
pub const MODULE: &str = "kz.gov.pki.knca.commonUtils";
/// The code of every refusal (a success is `"200"`).
pub const ERROR_CODE: &str = "500";
/// The person refused the signature (or nobody could be asked): nothing was signed.
pub const CANCELED: &str = "action.canceled";
/// No key of that storage and key type.
pub const NO_KEY: &str = "storage.empty";
/// The storage is not one `getActiveTokens` lists.
pub const UNKNOWN_STORAGE: &str = "storage.unknown";
/// Another module than [`MODULE`], or a method this signer does not offer.
pub const UNKNOWN_METHOD: &str = "module.method.not.found";
/// Arguments of the wrong number or type, data that is not base64 or XML that cannot be signed.
pub const BAD_ARGUMENTS: &str = "args.invalid";
/// The key store or token failed to sign.
pub const SIGNING_FAILED: &str = "signing.failed";
/// The version announced right after the connection opens.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The first frame of every connection.
pub fn greeting() -> String {
    json!({ "result": { "version": VERSION } }).to_string()
}

fn ok(value: Value) -> Value {
    json!({ "code": "200", "responseObject": value })
}

fn refusal(message: &str) -> Value {
    json!({ "code": ERROR_CODE, "message": message })
}

/// Keys, the confirmer and the clock: everything requests are answered from.
pub struct Service {
    keys: Vec<KeyEntry>,
    confirmer: Arc<dyn Confirmer>,
    clock: Arc<dyn Clock>,
}

impl Service {
    pub fn new(keys: Vec<KeyEntry>, confirmer: Arc<dyn Confirmer>, clock: Arc<dyn Clock>) -> Self {
        Self { keys, confirmer, clock }
    }

    /// The storages with keys, in the order configured.
    pub fn storages(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for key in &self.keys {
            if !out.contains(&key.storage) {
                out.push(key.storage.clone());
            }
        }
        out
    }

    /// Answer one request frame from a page of `origin`. Signing may block (a card): call it
    /// off the async executor.
    pub fn handle(&self, origin: &str, frame: &str) -> String {
        self.answer(origin, frame).unwrap_or_else(refusal).to_string()
    }

    fn answer(&self, origin: &str, frame: &str) -> Result<Value, &'static str> {
        let request: Value = serde_json::from_str(frame).map_err(|_| BAD_ARGUMENTS)?;
        if request["module"] != MODULE {
            return Err(UNKNOWN_METHOD);
        }
        let args = match &request["args"] {
            Value::Array(args) => args.as_slice(),
            Value::Null => &[],
            _ => return Err(BAD_ARGUMENTS),
        };
        let text = |i: usize| args.get(i).and_then(Value::as_str).ok_or(BAD_ARGUMENTS);
        match request["method"].as_str().unwrap_or_default() {
            "getActiveTokens" => Ok(ok(json!(self.storages()))),
            "getKeyInfo" => {
                let storage = self.storage(text(0)?)?;
                let key = self.keys.iter().find(|k| k.storage == storage).ok_or(NO_KEY)?;
                Ok(ok(key.info()))
            }
            "createCAdESFromBase64" => {
                let key = self.key(text(0)?, text(1)?)?;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(ca_core::cms::without_whitespace(text(2)?).as_bytes())
                    .map_err(|_| BAD_ARGUMENTS)?;
                let attached = args.get(3).and_then(Value::as_bool).ok_or(BAD_ARGUMENTS)?;
                self.ask(origin, "createCAdESFromBase64", key, &data)?;
                let cms = ca_core::cms::sign(
                    &data,
                    !attached,
                    key.signer.as_ref(),
                    &key.certificate,
                    &key.chain,
                    self.clock.now(),
                )
                .map_err(|e| {
                    tracing::warn!("CMS signing failed: {e}");
                    SIGNING_FAILED
                })?;
                Ok(ok(json!(base64::engine::general_purpose::STANDARD.encode(cms))))
            }
            "signXml" => {
                let key = self.key(text(0)?, text(1)?)?;
                let xml = text(2)?;
                // The whole document is signed (URI=""): element XPaths are not supported.
                for i in [3, 4] {
                    if args.get(i).and_then(Value::as_str).is_some_and(|p| !p.is_empty()) {
                        return Err(BAD_ARGUMENTS);
                    }
                }
                self.ask(origin, "signXml", key, xml.as_bytes())?;
                let signed = ca_core::xml::sign(
                    xml.as_bytes(),
                    key.signer.as_ref(),
                    &key.certificate,
                    &key.chain,
                    &Default::default(),
                )
                .map_err(|e| match e {
                    ca_core::xml::XmlError::Signer(e) => {
                        tracing::warn!("XML signing failed: {e}");
                        SIGNING_FAILED
                    }
                    _ => BAD_ARGUMENTS,
                })?;
                Ok(ok(json!(String::from_utf8_lossy(&signed))))
            }
            _ => Err(UNKNOWN_METHOD),
        }
    }

    fn storage<'a>(&self, name: &'a str) -> Result<&'a str, &'static str> {
        match self.keys.iter().any(|k| k.storage == name) {
            true => Ok(name),
            false => Err(UNKNOWN_STORAGE),
        }
    }

    /// The key of `storage` of the type the request names (`AUTHENTICATION` or `SIGNATURE`).
    fn key(&self, storage: &str, key_type: &str) -> Result<&KeyEntry, &'static str> {
        let storage = self.storage(storage)?;
        let wanted = match key_type {
            "AUTHENTICATION" | "AUTH" => KeyType::Auth,
            "SIGNATURE" | "SIGN" => KeyType::Sign,
            _ => return Err(BAD_ARGUMENTS),
        };
        self.keys.iter().find(|k| k.storage == storage && k.key_type == wanted).ok_or(NO_KEY)
    }

    fn ask(&self, origin: &str, method: &str, key: &KeyEntry, data: &[u8]) -> Result<(), &'static str> {
        let info = key.info();
        let request = Confirmation {
            origin: origin.to_string(),
            method: method.to_string(),
            key: format!(
                "{} key of {} (serial {})",
                info["keyType"].as_str().unwrap_or_default(),
                info["subjectDn"].as_str().unwrap_or_default(),
                info["serialNumber"].as_str().unwrap_or_default()
            ),
            content: describe(data),
        };
        match self.confirmer.confirm(&request) {
            true => Ok(()),
            false => Err(CANCELED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confirm::Policy;

    fn service() -> Service {
        Service::new(Vec::new(), Arc::new(Policy::Refuse), Arc::new(ca_core::clock::SystemClock))
    }

    fn answer(frame: &str) -> Value {
        serde_json::from_str(&service().handle("https://portal.test", frame)).unwrap()
    }

    #[test]
    fn malformed_and_unknown_requests_get_the_protocols_refusals() {
        let refused = |message: &str| json!({ "code": "500", "message": message });
        assert_eq!(answer("not json"), refused(BAD_ARGUMENTS));
        assert_eq!(answer(r#"{"module":"other","method":"getActiveTokens","args":[]}"#), refused(UNKNOWN_METHOD));
        assert_eq!(
            answer(&json!({ "module": MODULE, "method": "getKeyInfo", "args": "x" }).to_string()),
            refused(BAD_ARGUMENTS)
        );
        assert_eq!(
            answer(&json!({ "module": MODULE, "method": "getKeyInfo", "args": [] }).to_string()),
            refused(BAD_ARGUMENTS)
        );
        assert_eq!(
            answer(&json!({ "module": MODULE, "method": "getKeyInfo", "args": ["PKCS12"] }).to_string()),
            refused(UNKNOWN_STORAGE)
        );
        let tokens = answer(&json!({ "module": MODULE, "method": "getActiveTokens" }).to_string());
        assert_eq!(tokens, json!({ "code": "200", "responseObject": [] }));
        let greeting: Value = serde_json::from_str(&greeting()).unwrap();
        assert_eq!(greeting["result"]["version"], VERSION);
    }
}
