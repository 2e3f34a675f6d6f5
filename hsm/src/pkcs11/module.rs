//! Loading a PKCS#11 module and describing its slots and tokens.
//!
//! `C_Initialize` and `C_Finalize` act on the whole process, so one module file is loaded once
//! per process: [`Pkcs11Module::load`] hands out clones of the same context while any is alive,
//! and the last one to go finalizes the library.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::{Slot, TokenInfo};

use super::error::{ck, PinTries, TokenError};

/// The modules loaded in this process, by canonical path.
fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<ModuleInner>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<ModuleInner>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

pub(crate) struct ModuleInner {
    pub(crate) ctx: Pkcs11,
    path: PathBuf,
    /// False when someone else in the process had already initialized the library: then it is
    /// theirs to finalize.
    finalize_on_drop: AtomicBool,
}

impl Drop for ModuleInner {
    fn drop(&mut self) {
        let mut modules = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A newer load of the same file may have found the library still initialized; it takes
        // over the duty to finalize.
        if let Some(successor) = modules.get(&self.path).and_then(Weak::upgrade) {
            successor.finalize_on_drop.fetch_or(self.finalize_on_drop.load(Ordering::SeqCst), Ordering::SeqCst);
            return;
        }
        modules.remove(&self.path);
        if self.finalize_on_drop.load(Ordering::SeqCst) {
            // Nothing useful can be done about a failing C_Finalize while dropping.
            let _ = self.ctx.clone().finalize();
        }
    }
}

/// A loaded and initialized PKCS#11 module (a `.so`/`.dll` from a card or HSM vendor, or
/// SoftHSM). Cheap to clone.
#[derive(Clone)]
pub struct Pkcs11Module {
    pub(crate) inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for Pkcs11Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Module").field("path", &self.inner.path).finish()
    }
}

/// What a module says about itself (`C_GetInfo`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModuleInfo {
    /// The library's manufacturer.
    pub manufacturer: String,
    /// The library's description.
    pub description: String,
    /// The library's version, `major.minor`.
    pub library_version: String,
    /// The PKCS#11 version it implements, `major.minor`.
    pub cryptoki_version: String,
}

/// One slot (a reader, an HSM partition) and the token in it, if any.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SlotDescription {
    /// The module's slot identifier; only meaningful for this module in this process.
    pub slot_id: u64,
    /// The slot's description (often the reader's name).
    pub description: String,
    /// The slot's manufacturer.
    pub manufacturer: String,
    /// The token in the slot; `None` when the slot is empty.
    pub token: Option<TokenDescription>,
}

/// The state of the user PIN as the token's flags report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinState {
    /// No flag set: the PIN is usable and no wrong PIN is on record.
    Ok,
    /// CKF_USER_PIN_COUNT_LOW.
    CountLow,
    /// CKF_USER_PIN_FINAL_TRY.
    FinalTry,
    /// CKF_USER_PIN_LOCKED.
    Locked,
    /// CKF_USER_PIN_INITIALIZED is not set: the token has no user PIN yet.
    NotInitialized,
}

/// What a token says about itself (`C_GetTokenInfo`). Memory figures are `None` where the
/// token does not report them, which many do not.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenDescription {
    /// The token label (trailing blanks removed).
    pub label: String,
    /// The token serial number.
    pub serial: String,
    /// The token manufacturer.
    pub manufacturer: String,
    /// The token model.
    pub model: String,
    /// CKF_TOKEN_INITIALIZED.
    pub initialized: bool,
    /// CKF_LOGIN_REQUIRED.
    pub login_required: bool,
    /// CKF_WRITE_PROTECTED.
    pub write_protected: bool,
    /// The user PIN's state.
    pub pin: PinState,
    /// Free public memory in bytes.
    pub free_public_memory: Option<usize>,
    /// Total public memory in bytes.
    pub total_public_memory: Option<usize>,
    /// Free private memory in bytes.
    pub free_private_memory: Option<usize>,
    /// Total private memory in bytes.
    pub total_private_memory: Option<usize>,
}

impl TokenDescription {
    pub(crate) fn from_info(info: &TokenInfo) -> Self {
        let pin = if !info.user_pin_initialized() {
            PinState::NotInitialized
        } else if info.user_pin_locked() {
            PinState::Locked
        } else if info.user_pin_final_try() {
            PinState::FinalTry
        } else if info.user_pin_count_low() {
            PinState::CountLow
        } else {
            PinState::Ok
        };
        Self {
            label: info.label().trim_end().to_owned(),
            serial: info.serial_number().trim_end().to_owned(),
            manufacturer: info.manufacturer_id().trim_end().to_owned(),
            model: info.model().trim_end().to_owned(),
            initialized: info.token_initialized(),
            login_required: info.login_required(),
            write_protected: info.write_protected(),
            pin,
            free_public_memory: info.free_public_memory(),
            total_public_memory: info.total_public_memory(),
            free_private_memory: info.free_private_memory(),
            total_private_memory: info.total_private_memory(),
        }
    }

    pub(crate) fn pin_tries(&self) -> PinTries {
        match self.pin {
            PinState::FinalTry => PinTries::FinalTry,
            PinState::CountLow => PinTries::FewLeft,
            PinState::Ok | PinState::Locked | PinState::NotInitialized => PinTries::NotReported,
        }
    }
}

/// How to pick a token among the present ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token label, compared without trailing blanks.
    Label(String),
    /// The token serial number, compared without trailing blanks.
    Serial(String),
}

impl TokenSelector {
    fn matches(&self, token: &TokenDescription) -> bool {
        match self {
            Self::Label(label) => token.label == label.trim_end(),
            Self::Serial(serial) => token.serial == serial.trim_end(),
        }
    }
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Label(label) => write!(f, "with label {label:?}"),
            Self::Serial(serial) => write!(f, "with serial number {serial:?}"),
        }
    }
}

impl Pkcs11Module {
    /// Load and initialize the module at `path`, or return the instance this process already
    /// has. A missing file and a file that is not a PKCS#11 library are told apart.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TokenError> {
        let given = path.as_ref();
        if !given.is_file() {
            return Err(TokenError::ModuleNotFound(given.to_path_buf()));
        }
        let canonical = given.canonicalize().map_err(|_| TokenError::ModuleNotFound(given.to_path_buf()))?;
        let mut modules = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(inner) = modules.get(&canonical).and_then(Weak::upgrade) {
            return Ok(Self { inner });
        }
        let not_a_module = |reason: String| TokenError::NotAModule { path: given.to_path_buf(), reason };
        let ctx = Pkcs11::new(&canonical).map_err(|err| match err {
            CkError::LibraryLoading(e) => not_a_module(format!("cannot load library: {e}")),
            other => not_a_module(other.to_string()),
        })?;
        let finalize_on_drop = match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => true,
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
            Err(err) => return Err(not_a_module(format!("C_Initialize failed: {err}"))),
        };
        let inner = Arc::new(ModuleInner { ctx, path: canonical.clone(), finalize_on_drop: finalize_on_drop.into() });
        modules.insert(canonical, Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// The canonical path the module was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The library's own description.
    pub fn info(&self) -> Result<ModuleInfo, TokenError> {
        let info = self.inner.ctx.get_library_info().map_err(ck("reading module information"))?;
        let version = |v: cryptoki::types::Version| format!("{}.{}", v.major(), v.minor());
        Ok(ModuleInfo {
            manufacturer: info.manufacturer_id().trim_end().to_owned(),
            description: info.library_description().trim_end().to_owned(),
            library_version: version(info.library_version()),
            cryptoki_version: version(info.cryptoki_version()),
        })
    }

    /// Every slot and the token in it. Empty slots are listed with `token: None`.
    pub fn slots(&self) -> Result<Vec<SlotDescription>, TokenError> {
        let ctx = &self.inner.ctx;
        let mut slots = Vec::new();
        for slot in ctx.get_all_slots().map_err(ck("listing slots"))? {
            let info = ctx.get_slot_info(slot).map_err(ck("reading slot information"))?;
            let token = if info.token_present() {
                // A token pulled out between the two calls is reported as absent, not as an error.
                ctx.get_token_info(slot).ok().map(|t| TokenDescription::from_info(&t))
            } else {
                None
            };
            slots.push(SlotDescription {
                slot_id: slot.id(),
                description: info.slot_description().trim_end().to_owned(),
                manufacturer: info.manufacturer_id().trim_end().to_owned(),
                token,
            });
        }
        Ok(slots)
    }

    /// The tokens that are present, without the empty slots.
    pub fn tokens(&self) -> Result<Vec<TokenDescription>, TokenError> {
        Ok(self.slots()?.into_iter().filter_map(|s| s.token).collect())
    }

    /// The slot holding the token `selector` names, and the token's description.
    pub(crate) fn find_slot(&self, selector: &TokenSelector) -> Result<(Slot, TokenDescription), TokenError> {
        let ctx = &self.inner.ctx;
        let mut found = Vec::new();
        for slot in ctx.get_slots_with_token().map_err(ck("listing slots"))? {
            let Ok(info) = ctx.get_token_info(slot) else { continue };
            let description = TokenDescription::from_info(&info);
            if description.initialized && selector.matches(&description) {
                found.push((slot, description));
            }
        }
        match found.len() {
            0 => Err(TokenError::TokenAbsent(selector.to_string())),
            1 => Ok(found.remove(0)),
            n => Err(TokenError::Unsupported(format!("{n} tokens {selector}; select the token by its serial number"))),
        }
    }

    /// The current description of the token in `slot`.
    pub(crate) fn token_description(&self, slot: Slot) -> Result<TokenDescription, TokenError> {
        let info = self.inner.ctx.get_token_info(slot).map_err(ck("reading token information"))?;
        Ok(TokenDescription::from_info(&info))
    }
}
