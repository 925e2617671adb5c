//! ISO 3166-1 alpha-2 country codes and the allowlist of them.

use std::fmt;
use std::str::FromStr;

/// Codes that GeoIP data has used for things that are not countries.
const PSEUDO_CODES: [&str; 8] = ["EU", "AP", "A1", "A2", "O1", "T1", "XX", "ZZ"];

/// Maximum number of entries accepted in one country list, before duplicates are removed.
/// There are fewer than 260 alpha-2 codes, so a longer list is a mistake.
pub const MAX_COUNTRY_ENTRIES: usize = 1_000;

/// An ISO 3166-1 alpha-2 country code, validated and stored upper-case.
///
/// `dk` parses as `DK`. `UK` is rejected with a hint to `GB`. The user-assigned `XK` (Kosovo) is
/// accepted because GeoIP data emits it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The code as two upper-case ASCII letters.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = CountryCodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| Err(CountryCodeError::new(text, reason));

        let bytes = text.as_bytes();
        let [first, second] = bytes else {
            return fail(CodeReason::NotTwoLetters);
        };
        let upper = [first.to_ascii_uppercase(), second.to_ascii_uppercase()];
        // Pseudo-codes come first because some of them (`A1`, `O1`) contain a digit.
        if PSEUDO_CODES.iter().any(|code| code.as_bytes() == upper) {
            return fail(CodeReason::PseudoCode);
        }
        if !first.is_ascii_alphabetic() || !second.is_ascii_alphabetic() {
            return fail(CodeReason::NotTwoLetters);
        }
        if &upper == b"UK" {
            return fail(CodeReason::UseGb);
        }
        if celes::Country::from_alpha2(text).is_err() {
            return fail(CodeReason::Unknown);
        }
        Ok(Self(upper))
    }
}

impl TryFrom<String> for CountryCode {
    type Error = CountryCodeError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<CountryCode> for String {
    fn from(code: CountryCode) -> Self {
        code.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeReason {
    NotTwoLetters,
    UseGb,
    PseudoCode,
    Unknown,
}

/// A string that is not an ISO 3166-1 alpha-2 country code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryCodeError {
    value: String,
    reason: CodeReason,
}

impl CountryCodeError {
    fn new(value: &str, reason: CodeReason) -> Self {
        // Quote at most a short prefix of the input, because it may come from a request body.
        let value = match value.char_indices().nth(16) {
            Some((cut, _)) => format!("{}...", &value[..cut]),
            None => value.to_owned(),
        };
        Self { value, reason }
    }
}

impl std::error::Error for CountryCodeError {}

impl fmt::Display for CountryCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = &self.value;
        match self.reason {
            CodeReason::NotTwoLetters => write!(
                f,
                "invalid country code `{value}`: expected two ASCII letters (ISO 3166-1 alpha-2)"
            ),
            CodeReason::UseGb => write!(
                f,
                "invalid country code `{value}`: the ISO 3166-1 code of the United Kingdom is `GB`"
            ),
            CodeReason::PseudoCode => write!(
                f,
                "invalid country code `{value}`: a GeoIP pseudo-code, not a country"
            ),
            CodeReason::Unknown => write!(
                f,
                "invalid country code `{value}`: not an ISO 3166-1 alpha-2 code"
            ),
        }
    }
}

/// A non-empty set of countries, sorted and without duplicates.
///
/// Serialises as a list of upper-case codes in alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct CountryAllowlist {
    codes: Vec<CountryCode>,
}

impl CountryAllowlist {
    /// Parses a list of codes, upper-casing them and dropping duplicates.
    ///
    /// # Errors
    ///
    /// Returns an error when the list is empty, has more than [`MAX_COUNTRY_ENTRIES`] entries, or
    /// an entry is not a valid code.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, CountryAllowlistError> {
        if entries.len() > MAX_COUNTRY_ENTRIES {
            return Err(CountryAllowlistError(ListErrorKind::TooMany {
                count: entries.len(),
            }));
        }
        let codes = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                entry
                    .as_ref()
                    .parse::<CountryCode>()
                    .map_err(|source| CountryAllowlistError(ListErrorKind::Entry { index, source }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_codes(codes)
    }

    /// Builds the set from codes that are already validated.
    ///
    /// # Errors
    ///
    /// Returns an error when `codes` is empty.
    pub fn from_codes(mut codes: Vec<CountryCode>) -> Result<Self, CountryAllowlistError> {
        if codes.is_empty() {
            return Err(CountryAllowlistError(ListErrorKind::Empty));
        }
        codes.sort_unstable();
        codes.dedup();
        Ok(Self { codes })
    }

    /// Returns whether `code` is in the set.
    pub fn contains(&self, code: CountryCode) -> bool {
        self.codes.binary_search(&code).is_ok()
    }

    /// The codes in alphabetical order.
    pub fn codes(&self) -> &[CountryCode] {
        &self.codes
    }
}

impl TryFrom<Vec<String>> for CountryAllowlist {
    type Error = CountryAllowlistError;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(&entries)
    }
}

impl From<CountryAllowlist> for Vec<String> {
    fn from(list: CountryAllowlist) -> Self {
        list.codes.iter().map(ToString::to_string).collect()
    }
}

/// A country list that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryAllowlistError(ListErrorKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum ListErrorKind {
    Empty,
    TooMany {
        count: usize,
    },
    Entry {
        index: usize,
        source: CountryCodeError,
    },
}

impl std::error::Error for CountryAllowlistError {}

impl fmt::Display for CountryAllowlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ListErrorKind::Empty => write!(
                f,
                "the country list is empty, give at least one country code or turn the axis off"
            ),
            ListErrorKind::TooMany { count } => write!(
                f,
                "the country list has `{count}` entries, more than the maximum of {MAX_COUNTRY_ENTRIES}"
            ),
            ListErrorKind::Entry { index, source } => {
                write!(f, "country list entry {index}: {source}")
            }
        }
    }
}
