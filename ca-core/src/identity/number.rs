//! IIN and BIN: the 12-digit identification numbers of individuals and legal entities.
//!
//! Both carry a check digit computed the same way: weights 1..11 over the first eleven digits,
//! sum mod 11; if that is 10, weights 3,4,5,6,7,8,9,10,11,1,2, sum mod 11; if it is still 10 the
//! number can never be valid.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid IIN or BIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not exactly twelve ASCII digits.
    #[error("invalid {kind} {value:?}: must be exactly 12 digits")]
    Format { kind: &'static str, value: String },
    /// The check digit does not match.
    #[error("invalid {kind} {value}: check digit is {found}, expected {expected}")]
    CheckDigit { kind: &'static str, value: String, found: u8, expected: u8 },
    /// The first eleven digits give a check value of 10 under both weightings.
    #[error("invalid {kind} {value}: no check digit exists for these digits")]
    NoCheckDigit { kind: &'static str, value: String },
    /// The IIN does not start with a birth date and a century/sex digit 1..6.
    #[error("invalid IIN {value}: {reason}")]
    Structure { value: String, reason: &'static str },
}

/// The check digit of the first eleven digits, or `None` when no digit can be valid.
pub fn check_digit(first_eleven: &[u8; 11]) -> Option<u8> {
    const FIRST: [u32; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const SECOND: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];
    let weighted = |weights: &[u32; 11]| -> u32 {
        first_eleven.iter().zip(weights).map(|(d, w)| u32::from(*d) * w).sum::<u32>() % 11
    };
    match weighted(&FIRST) {
        10 => match weighted(&SECOND) {
            10 => None,
            d => Some(d as u8),
        },
        d => Some(d as u8),
    }
}

fn parse_digits(kind: &'static str, value: &str) -> Result<[u8; 12], IdNumberError> {
    let bytes = value.as_bytes();
    if bytes.len() != 12 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(IdNumberError::Format { kind, value: value.chars().take(40).collect() });
    }
    let mut digits = [0u8; 12];
    for (d, b) in digits.iter_mut().zip(bytes) {
        *d = b - b'0';
    }
    let mut first = [0u8; 11];
    first.copy_from_slice(&digits[..11]);
    match check_digit(&first) {
        None => Err(IdNumberError::NoCheckDigit { kind, value: value.to_owned() }),
        Some(expected) if expected != digits[11] => {
            Err(IdNumberError::CheckDigit { kind, value: value.to_owned(), found: digits[11], expected })
        }
        Some(_) => Ok(digits),
    }
}

// `u8::is_multiple_of` needs Rust 1.87; the workspace declares rust-version 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn days_in_month(month: u8, year_in_century: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        // The century digit decides the full year, but within 1800..2099 the only century year
        // that is not a leap year and matters is 1900 (and 2100, out of range), so be lenient
        // for Feb 29 in year 00.
        2 if year_in_century % 4 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

macro_rules! id_number {
    ($name:ident, $kind:literal, $prefix:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 12]);

        impl $name {
            /// The prefix used in the subject DN (`SERIALNUMBER` / `OU`).
            pub const DN_PREFIX: &'static str = $prefix;

            /// The twelve digits as a string.
            pub fn as_string(&self) -> String {
                self.0.iter().map(|d| char::from(b'0' + d)).collect()
            }

            /// The value as written in the subject DN, e.g. `IIN880101300017`.
            pub fn dn_value(&self) -> String {
                format!("{}{}", Self::DN_PREFIX, self.as_string())
            }

            /// Read the number back from its DN form (`IIN…` / `BIN…`).
            pub fn from_dn_value(value: &str) -> Result<Self, IdNumberError> {
                match value.strip_prefix(Self::DN_PREFIX) {
                    Some(rest) => rest.parse(),
                    None => Err(IdNumberError::Format { kind: $kind, value: value.chars().take(40).collect() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.as_string())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", $kind, self.as_string())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.as_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_number!(
    Iin,
    "IIN",
    "IIN",
    "Individual identification number (ИИН): birth date, century/sex digit, serial, check digit."
);
id_number!(Bin, "BIN", "BIN", "Business identification number (БИН) of a legal entity.");

impl FromStr for Iin {
    type Err = IdNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = parse_digits("IIN", s)?;
        let month = digits[2] * 10 + digits[3];
        let day = digits[4] * 10 + digits[5];
        let year = digits[0] * 10 + digits[1];
        if !(1..=12).contains(&month) {
            return Err(IdNumberError::Structure { value: s.to_owned(), reason: "digits 3-4 are not a month" });
        }
        if day == 0 || day > days_in_month(month, year) {
            return Err(IdNumberError::Structure {
                value: s.to_owned(),
                reason: "digits 5-6 are not a day of that month",
            });
        }
        if !(1..=6).contains(&digits[6]) {
            return Err(IdNumberError::Structure {
                value: s.to_owned(),
                reason: "digit 7 (century and sex) must be 1..6",
            });
        }
        Ok(Self(digits))
    }
}

impl FromStr for Bin {
    type Err = IdNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digits("BIN", s).map(Self)
    }
}

impl Iin {
    /// Build a valid IIN from its first eleven digits by appending the check digit; `None` when
    /// these digits admit no check digit or do not form a valid IIN. Used by fixtures.
    pub fn with_check_digit(first_eleven: &str) -> Option<Self> {
        complete(first_eleven).and_then(|s| s.parse().ok())
    }
}

impl Bin {
    /// Build a valid BIN from its first eleven digits by appending the check digit.
    pub fn with_check_digit(first_eleven: &str) -> Option<Self> {
        complete(first_eleven).and_then(|s| s.parse().ok())
    }
}

fn complete(first_eleven: &str) -> Option<String> {
    let bytes = first_eleven.as_bytes();
    if bytes.len() != 11 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut first = [0u8; 11];
    for (d, b) in first.iter_mut().zip(bytes) {
        *d = b - b'0';
    }
    check_digit(&first).map(|c| format!("{first_eleven}{c}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_numbers_and_computes_check_digit() {
        // 880101300017? compute: the helper and the parser must agree.
        let iin = Iin::with_check_digit("88010130001").expect("valid IIN");
        assert_eq!(iin.as_string().len(), 12);
        assert_eq!(iin.as_string().parse::<Iin>().unwrap(), iin);
        assert_eq!(iin.dn_value(), format!("IIN{iin}"));
        assert_eq!(Iin::from_dn_value(&iin.dn_value()).unwrap(), iin);
    }

    #[test]
    fn known_check_digit_values() {
        // weights 1..11 over 9,1,0,5,2,3,4,5,6,7,8: 9+2+0+20+10+18+28+40+54+70+88 = 339, 339 mod 11 = 9
        assert_eq!(check_digit(&[9, 1, 0, 5, 2, 3, 4, 5, 6, 7, 8]), Some(9));
        // 1,2,3,4,5,6,7,8,9,0,1: first pass 296 mod 11 = 10, second pass 377 mod 11 = 3
        assert_eq!(check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]), Some(3));
    }

    #[test]
    fn rejects_wrong_check_digit_with_expected_value() {
        let good = Iin::with_check_digit("91052345678").unwrap().as_string();
        let last = good.as_bytes()[11] - b'0';
        let bad = format!("{}{}", &good[..11], (last + 1) % 10);
        let err = bad.parse::<Iin>().unwrap_err();
        assert!(matches!(err, IdNumberError::CheckDigit { expected, .. } if expected == last), "{err}");
        assert!(err.to_string().contains("check digit"));
    }

    #[test]
    fn rejects_bad_format_and_structure() {
        assert!(matches!("12345".parse::<Iin>(), Err(IdNumberError::Format { .. })));
        assert!(matches!("12345678901a".parse::<Bin>(), Err(IdNumberError::Format { .. })));
        assert!(matches!("١٢٣٤٥٦٧٨٩٠١٢".parse::<Bin>(), Err(IdNumberError::Format { .. })));
        // month 13
        let s = complete("88130130001").unwrap();
        assert!(matches!(s.parse::<Iin>(), Err(IdNumberError::Structure { .. })));
        // century digit 7
        let s = complete("88010170001").unwrap();
        assert!(matches!(s.parse::<Iin>(), Err(IdNumberError::Structure { .. })));
        // BIN has no date structure rule
        assert!(Bin::with_check_digit("12134001234").is_some());
        assert!(Iin::from_dn_value("BIN123").is_err());
    }

    #[test]
    fn every_eleven_digit_prefix_has_at_most_one_check_digit() {
        let mut none = 0;
        for n in 0..20_000u64 {
            let s = format!("{:011}", n * 4_999_999 % 100_000_000_000);
            match complete(&s) {
                Some(full) => assert!(parse_digits("BIN", &full).is_ok()),
                None => none += 1,
            }
        }
        assert!(none > 0, "some prefixes admit no check digit");
    }
}
