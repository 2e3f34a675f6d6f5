//! The pages' texts in Russian (the default, as in the documents) and Kazakh, one catalog per
//! area so areas are edited apart: each is a struct of `&'static str` with one static value per
//! language, so a text missing in one language is a compile error. The messages the documents
//! give (document 002: registration, login, lockout) come from [`crate::messages`] word for
//! word and are shown as the portal's operations return them; the catalogs hold the rest of a
//! page (titles, labels, buttons, hints).

pub mod account;
pub mod cabinet;
pub mod common;
pub mod documents;

use http_common::pages::Lang;

/// The catalog of `lang` among `ru` and `kk`.
pub fn pick<T>(lang: Lang, ru: &'static T, kk: &'static T) -> &'static T {
    match lang {
        Lang::Ru => ru,
        Lang::Kk => kk,
    }
}
