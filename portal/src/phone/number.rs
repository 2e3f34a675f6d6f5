//! Kazakhstan mobile numbers, normalised to E.164 (`+77xxxxxxxxx`) by libphonenumber's
//! metadata (the `phonenumber` crate), not by a hand-written pattern: the usual spellings
//! (`8 701 …`, `+7 (701) …`, spaces, dashes, dots, brackets) are accepted, a number that is not
//! a valid Kazakhstan mobile number is refused with what is wrong with it.

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, Type};

/// The longest input looked at (a number with generous punctuation).
const MAX_INPUT: usize = 32;

/// A Kazakhstan mobile number in E.164.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber(String);

/// Why a text is not a Kazakhstan mobile number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("Номер телефона введен неверно")]
    Malformed,
    #[error("Номер телефона не является номером сотовой связи Республики Казахстан")]
    Foreign,
    #[error("Номер телефона не является номером сотовой связи")]
    NotMobile,
}

impl PhoneNumberError {
    /// The machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed => "invalid-phone",
            Self::Foreign => "foreign-phone",
            Self::NotMobile => "not-mobile-phone",
        }
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneNumberError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        // Only what people write in a number; libphonenumber would otherwise read letters
        // as keypad digits and skip other noise.
        if text.is_empty()
            || text.len() > MAX_INPUT
            || !text.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '+' | '.'))
        {
            return Err(PhoneNumberError::Malformed);
        }
        let parsed = phonenumber::parse(Some(Id::KZ), text).map_err(|_| PhoneNumberError::Malformed)?;
        if parsed.extension().is_some() {
            return Err(PhoneNumberError::Malformed);
        }
        if parsed.code().value() != 7 {
            return Err(PhoneNumberError::Foreign);
        }
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneNumberError::Malformed);
        }
        // +7 is shared with Russia: the region the metadata assigns decides.
        if parsed.country().id() != Some(Id::KZ) {
            return Err(PhoneNumberError::Foreign);
        }
        match parsed.number_type(&DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            _ => return Err(PhoneNumberError::NotMobile),
        }
        Ok(Self(parsed.format().mode(Mode::E164).to_string()))
    }
}

impl PhoneNumber {
    /// The E.164 form, `+77011234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown to people: `+7 701 123 45 67`.
    pub fn display(&self) -> String {
        let d = &self.0[2..];
        format!("+7 {} {} {} {}", &d[..3], &d[3..6], &d[6..8], &d[8..])
    }

    /// The number with all but the last four digits hidden, for notices and logs.
    pub fn masked(&self) -> String {
        format!("+7 7** *** {} {}", &self.0[8..10], &self.0[10..])
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_spellings_normalise_to_e164() {
        for text in [
            "+77011234567",
            "87011234567",
            "8 701 123 45 67",
            "8 (701) 123-45-67",
            "+7 (701) 123-45-67",
            "+7-701-123-45-67",
            " 8.701.123.45.67 ",
        ] {
            let n: PhoneNumber = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(n.as_str(), "+77011234567", "{text:?}");
        }
        let n: PhoneNumber = "+7 747 000 00 01".parse().unwrap();
        assert_eq!((n.display().as_str(), n.masked().as_str()), ("+7 747 000 00 01", "+7 7** *** 00 01"));
        assert!("+7 777 765 43 21".parse::<PhoneNumber>().is_ok());
    }

    #[test]
    fn foreign_landline_and_malformed_numbers_are_refused() {
        let err = |t: &str| t.parse::<PhoneNumber>().unwrap_err();
        assert_eq!(err("+7 916 123 45 67"), PhoneNumberError::Foreign, "a Russian mobile");
        assert_eq!(err("+49 170 1234567"), PhoneNumberError::Foreign);
        assert_eq!(err("+998 90 123 45 67"), PhoneNumberError::Foreign);
        assert_eq!(err("+7 727 250 00 00"), PhoneNumberError::NotMobile, "an Almaty landline");
        for bad in ["", "abc", "+7 701 123 45", "+7 701 123 45 678", "8 800 CALL NOW", "+7701123456;7", "1", "+"] {
            assert!(bad.parse::<PhoneNumber>().is_err(), "{bad:?}");
        }
        assert_eq!(err(&"7".repeat(40)), PhoneNumberError::Malformed);
        assert_eq!(err("+77011234567 ext 5"), PhoneNumberError::Malformed);
    }
}
