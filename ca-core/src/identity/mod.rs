//! Who a certificate is about.

mod number;

pub use number::{check_digit, Bin, IdNumberError, Iin};
