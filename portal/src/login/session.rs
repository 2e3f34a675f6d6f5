//! Sessions: an opaque 32-byte random token handed out once (base64url), stored only as its
//! SHA-256; it ends at its expiry, after the idle timeout, at logout, or when the password is
//! recovered. An account that must change its password gets a session that can do nothing
//! else until it has.

use base64::Engine;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::account::AccountState;
use crate::error::PortalError;
use crate::store::{Account, NewSession, SessionInfo, SessionLookup};
use crate::{Client, Portal};

/// A session just opened: the token is shown this once.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionGrant {
    pub token: String,
    pub session_id: i64,
    pub login: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub must_change_password: bool,
}

/// What a valid token stands for.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub session: SessionInfo,
    pub account: Account,
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Portal {
    /// Open a session for `account` after a successful login by `method`.
    pub fn open_session(&self, account: &Account, method: &str, client: &Client) -> Result<SessionGrant, PortalError> {
        self.open_session_using(account, method, client, None)
    }

    /// [`open_session`](Self::open_session), using `challenge` up in the same transaction
    /// (a replayed challenge opens nothing).
    pub fn open_session_using(
        &self,
        account: &Account,
        method: &str,
        client: &Client,
        challenge: Option<super::challenge::ValidChallenge>,
    ) -> Result<SessionGrant, PortalError> {
        let mut raw = [0u8; 32];
        OsRng.try_fill_bytes(&mut raw).map_err(|e| PortalError::internal(format!("random: {e}")))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = self.clock.now();
        let expires_at = now + self.policy.session();
        let session = NewSession {
            token_hash: token_hash(&token),
            account_id: account.id,
            method: method.to_owned(),
            created_at: now,
            expires_at,
            client_address: client.address.clone(),
            user_agent: client.user_agent.as_ref().map(|ua| ua.chars().take(512).collect()),
        };
        let session_id = match challenge {
            None => self.store.create_session(&session)?,
            Some(c) => {
                self.store.open_session_using(&c.id, c.keep_until, &session)?.ok_or_else(super::challenge::replayed)?
            }
        };
        self.metrics.login(method, "success");
        Ok(SessionGrant {
            token,
            session_id,
            login: account.login.clone(),
            expires_at,
            must_change_password: account.state == AccountState::MustChangePassword,
        })
    }

    /// The session of a bearer token. With `allow_must_change` false, an account that must
    /// change its password is refused (it may only change it or log out).
    pub fn authenticate(&self, token: &str, allow_must_change: bool) -> Result<Authenticated, PortalError> {
        let unauthenticated = || PortalError::unauthenticated("session-invalid", "no valid session: log in again");
        let session = match self.store.touch_session(&token_hash(token), self.clock.now(), self.policy.idle())? {
            SessionLookup::Active(s) => s,
            SessionLookup::Expired => {
                return Err(PortalError::unauthenticated("session-expired", "the session has expired: log in again"))
            }
            SessionLookup::Unknown => return Err(unauthenticated()),
        };
        let account = self.store.account_by_id(session.account_id)?.ok_or_else(unauthenticated)?;
        match account.state {
            AccountState::Blocked => Err(PortalError::refused("account-blocked", "the account is blocked")),
            AccountState::MustChangePassword if !allow_must_change => Err(PortalError::refused(
                "password-change-required",
                "Необходимо сменить пароль: задайте новый пароль, чтобы продолжить работу на Портале",
            )),
            _ => Ok(Authenticated { session, account }),
        }
    }

    pub fn logout(&self, auth: &Authenticated) -> Result<(), PortalError> {
        self.store.end_session(auth.account.id, auth.session.id, self.clock.now())?;
        Ok(())
    }

    /// End one of the account's own sessions by id; `false` if there was none open.
    pub fn end_session(&self, auth: &Authenticated, id: i64) -> Result<bool, PortalError> {
        Ok(self.store.end_session(auth.account.id, id, self.clock.now())?)
    }

    pub fn sessions(&self, auth: &Authenticated) -> Result<Vec<SessionInfo>, PortalError> {
        Ok(self.store.sessions_of(auth.account.id, self.clock.now(), self.policy.idle())?)
    }
}
