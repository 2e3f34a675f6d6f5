//! The HTTP gateway transport: `POST` of `{"id", "to", "from", "text"}` as JSON with
//! `Authorization: Bearer <token>`. A 2xx answer is acceptance (its JSON `id`, if any, is
//! kept as the gateway's reference); anything else, or no answer within the timeout, is a
//! failure to be retried. The `id` is the outbox's stable message id: a repeat after a crash
//! carries the same one, for the gateway to drop.

use std::time::Duration;

use zeroize::Zeroizing;

use super::{OutgoingSms, SmsTransport};

pub struct HttpGateway {
    url: String,
    token: Zeroizing<String>,
    from: String,
    agent: ureq::Agent,
}

impl HttpGateway {
    pub fn new(url: &str, token: Zeroizing<String>, from: &str, timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        Self { url: url.to_owned(), token, from: from.to_owned(), agent }
    }
}

impl SmsTransport for HttpGateway {
    fn send(&self, sms: &OutgoingSms<'_>) -> Result<Option<String>, String> {
        let body = serde_json::json!({ "id": sms.message_id, "to": sms.to, "from": self.from, "text": sms.text });
        let auth = Zeroizing::new(format!("Bearer {}", self.token.as_str()));
        match self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .set("Authorization", &auth)
            .send_string(&body.to_string())
        {
            Ok(answer) => {
                let text = answer.into_string().unwrap_or_default();
                let reference = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(|s| s.chars().take(128).collect()));
                Ok(reference)
            }
            Err(ureq::Error::Status(status, answer)) => {
                let text: String = answer.into_string().unwrap_or_default().chars().take(200).collect();
                Err(format!("the gateway answered {status}: {text}"))
            }
            Err(e) => Err(format!("the gateway is not reachable: {e}")),
        }
    }
}
