//! An open token: the login and a small pool of sessions.
//!
//! PKCS#11 keeps the login state per token and application, not per session: once the user is
//! logged in on one session, every session the application opens on that token is logged in
//! too, until the last one closes. So a [`Token`] keeps one *anchor* session open for its whole
//! life (it carries the login and serves key generation and object management) and opens
//! further sessions on demand for signing, up to a limit. A `cryptoki::Session` may move
//! between threads but not be shared, so each signature checks one session out of the pool and
//! puts it back; several threads sign at once on different sessions.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Limit, Slot};
use cryptoki::types::AuthPin;

use super::error::{ck, TokenError};
use super::module::{PinState, Pkcs11Module, TokenDescription, TokenSelector};
use super::SecretPin;

/// Signing sessions a token opens at most unless told otherwise (and unless the token allows
/// fewer).
pub const DEFAULT_MAX_SESSIONS: usize = 4;

struct PoolState {
    idle: Vec<Session>,
    /// Signing sessions in existence: idle plus checked out.
    open: usize,
    max: usize,
}

pub(crate) struct TokenInner {
    // Field order matters: sessions close before the module reference goes, so the library is
    // never finalized under an open session.
    anchor: Mutex<Session>,
    pool: Mutex<PoolState>,
    returned: Condvar,
    pub(crate) slot: Slot,
    opened_as: TokenDescription,
    module: Pkcs11Module,
}

/// An open token (a smart card, SIM, HSM partition or SoftHSM token). Cheap to clone; clones
/// share the login and the session pool. `Send + Sync`.
#[derive(Clone)]
pub struct Token {
    pub(crate) inner: Arc<TokenInner>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.inner.opened_as.label)
            .field("serial", &self.inner.opened_as.serial)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a session cannot leave PKCS#11 state half-changed in our structures.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pkcs11Module {
    /// Open the token `selector` names with a read-write session. Nothing is logged in yet; see
    /// [`Token::login`].
    pub fn open_token(&self, selector: &TokenSelector) -> Result<Token, TokenError> {
        let (slot, description) = self.find_slot(selector)?;
        let info = self.inner.ctx.get_token_info(slot).map_err(ck("reading token information"))?;
        let token_limit = |limit| match limit {
            Limit::Max(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Limit::Unavailable | Limit::Infinite => usize::MAX,
        };
        // One session of the token's allowance stays with the anchor.
        let allowed = token_limit(info.max_session_count()).min(token_limit(info.max_rw_session_count()));
        let max = DEFAULT_MAX_SESSIONS.min(allowed.saturating_sub(1)).max(1);
        let anchor = self.inner.ctx.open_rw_session(slot).map_err(ck("opening a session"))?;
        Ok(Token {
            inner: Arc::new(TokenInner {
                anchor: Mutex::new(anchor),
                pool: Mutex::new(PoolState { idle: Vec::new(), open: 0, max }),
                returned: Condvar::new(),
                slot,
                opened_as: description,
                module: self.clone(),
            }),
        })
    }
}

impl Token {
    /// The token as it was described when opened.
    pub fn opened_as(&self) -> &TokenDescription {
        &self.inner.opened_as
    }

    /// The token's current description (free memory and PIN flags change).
    pub fn description(&self) -> Result<TokenDescription, TokenError> {
        self.inner.module.token_description(self.inner.slot)
    }

    /// The module the token belongs to.
    pub fn module(&self) -> &Pkcs11Module {
        &self.inner.module
    }

    /// Change how many signing sessions may be open at once (at least one).
    pub fn set_max_sessions(&self, max: usize) {
        lock(&self.inner.pool).max = max.max(1);
        self.inner.returned.notify_all();
    }

    /// Log in as the user with `pin`. The PIN is copied once into a buffer that is zeroized
    /// when the call returns; it appears in no error. After a wrong PIN the error carries the
    /// token's retry-counter flags; a locked PIN is reported without trying.
    pub fn login(&self, pin: &SecretPin) -> Result<(), TokenError> {
        if self.description()?.pin == PinState::Locked {
            return Err(TokenError::PinLocked);
        }
        let result = {
            let auth = AuthPin::from(pin.expose());
            lock(&self.inner.anchor).login(UserType::User, Some(&auth))
        };
        match result {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(err) => match TokenError::from_cryptoki("login", err) {
                TokenError::WrongPin { .. } => {
                    let now = self.description()?;
                    if now.pin == PinState::Locked {
                        Err(TokenError::PinLocked)
                    } else {
                        Err(TokenError::WrongPin { tries: now.pin_tries() })
                    }
                }
                other => Err(other),
            },
        }
    }

    /// Log out. Every session of this application on the token loses the login.
    pub fn logout(&self) -> Result<(), TokenError> {
        match lock(&self.inner.anchor).logout() {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => Ok(()),
            Err(err) => Err(TokenError::from_cryptoki("logout", err)),
        }
    }

    /// Whether the user is logged in.
    pub fn is_logged_in(&self) -> Result<bool, TokenError> {
        let info = lock(&self.inner.anchor).get_session_info().map_err(ck("reading session state"))?;
        Ok(matches!(info.session_state(), SessionState::RoUser | SessionState::RwUser))
    }

    /// Run `f` on the anchor session (key generation, object management). Calls are serialised.
    pub(crate) fn with_anchor<R>(&self, f: impl FnOnce(&Session) -> Result<R, TokenError>) -> Result<R, TokenError> {
        f(&lock(&self.inner.anchor))
    }

    /// Run `f` on a signing session from the pool, opening one if none is idle and the limit
    /// allows, waiting otherwise. A session that died (token removed) is dropped, not returned.
    pub(crate) fn with_session<R>(&self, f: impl FnOnce(&Session) -> Result<R, TokenError>) -> Result<R, TokenError> {
        let mut checked_out = CheckedOut { token: &self.inner, session: Some(self.checkout()?), dead: false };
        let session = checked_out.session.as_ref().ok_or(TokenError::TokenRemoved("signing"))?;
        let result = f(session);
        if let Err(err) = &result {
            checked_out.dead = err.session_is_dead();
        }
        result
    }

    fn checkout(&self) -> Result<Session, TokenError> {
        let inner = &self.inner;
        let mut pool = lock(&inner.pool);
        loop {
            if let Some(session) = pool.idle.pop() {
                return Ok(session);
            }
            if pool.open < pool.max {
                pool.open += 1;
                drop(pool);
                return match inner.module.inner.ctx.open_rw_session(inner.slot) {
                    Ok(session) => Ok(session),
                    Err(err) => {
                        lock(&inner.pool).open -= 1;
                        inner.returned.notify_one();
                        Err(TokenError::from_cryptoki("opening a signing session", err))
                    }
                };
            }
            pool = inner.returned.wait(pool).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// A session on loan from the pool; goes back on drop, also when `f` panics.
struct CheckedOut<'a> {
    token: &'a TokenInner,
    session: Option<Session>,
    dead: bool,
}

impl Drop for CheckedOut<'_> {
    fn drop(&mut self) {
        let mut pool = lock(&self.token.pool);
        match self.session.take() {
            Some(session) if !self.dead && pool.open <= pool.max => pool.idle.push(session),
            _ => pool.open = pool.open.saturating_sub(1),
        }
        drop(pool);
        self.token.returned.notify_one();
    }
}
