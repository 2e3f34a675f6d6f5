//! Delivering notices over SMTP with `lettre`, when configured (`--smtp-url` / `CA_SMTP_URL`);
//! the maildir is the default. The password comes from `CA_SMTP_PASSWORD`, never the URL on the
//! command line. Each message carries a Message-ID derived from its outbox id, so a re-delivery
//! after a crash is recognisable as the same message.

use ca_core::ra::outbox::Transport;
use ca_core::ra::store::OutboxMessage;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport as _};

use crate::failure::Failure;

pub struct Smtp {
    transport: SmtpTransport,
    from: Mailbox,
    host: String,
}

impl Smtp {
    /// `url`: `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS) or
    /// `smtps://host:465`; `user@` in the URL with the password in `CA_SMTP_PASSWORD`.
    pub fn new(url: &str, from: &str) -> Result<Self, Failure> {
        let parsed: url_lite::Parts = url_lite::parse(url).map_err(Failure::Input)?;
        let mut builder = SmtpTransport::from_url(url).map_err(|e| Failure::Input(format!("SMTP URL {url:?}: {e}")))?;
        if let (Some(user), Ok(password)) = (parsed.user, std::env::var("CA_SMTP_PASSWORD")) {
            builder = builder.credentials(Credentials::new(user, password));
        }
        let from: Mailbox = from.parse().map_err(|e| Failure::Input(format!("From address {from:?}: {e}")))?;
        Ok(Self { transport: builder.build(), from, host: parsed.host })
    }
}

impl Transport for Smtp {
    fn deliver(&self, m: &OutboxMessage) -> Result<(), String> {
        let to: Mailbox = m.to.parse().map_err(|e| format!("recipient {:?}: {e}", m.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<outbox-{}.{}@nca>", m.id, m.created_at.unix_timestamp())))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| format!("building message {}: {e}", m.id))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| format!("SMTP {}: {e}", self.host))
    }
}

/// Just enough URL reading to find the user and host for messages (lettre parses the rest).
mod url_lite {
    pub struct Parts {
        pub user: Option<String>,
        pub host: String,
    }

    pub fn parse(url: &str) -> Result<Parts, String> {
        let rest = url
            .strip_prefix("smtp://")
            .or_else(|| url.strip_prefix("smtps://"))
            .ok_or_else(|| format!("SMTP URL {url:?} must start with smtp:// or smtps://"))?;
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => {
                if user.contains(':') {
                    return Err("put the SMTP password in CA_SMTP_PASSWORD, not in the URL".into());
                }
                (Some(user.to_owned()), host.to_owned())
            }
            None => (None, authority.to_owned()),
        };
        Ok(Parts { user, host })
    }
}
