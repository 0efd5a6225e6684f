//! Citizen ID numbers (公民身份号码, GB 11643): the check of an 18-character number, and the
//! normalisation that links departmental registers to the roster.
//!
//! An 18-character number is a 6-digit region code, an 8-digit birth date, a 3-digit sequence
//! (odd for men) and an ISO 7064 MOD 11-2 check character (a digit or `X`). First-generation
//! numbers (1984–2004) have 15 digits: a 6-digit birth date `YYMMDD` and no check character;
//! their 18-character form inserts `19` before the year and appends the check character.
//!
//! Spreadsheets damage ID numbers: a cell stored as a number keeps 15 significant digits, so an
//! 18-digit number becomes `1.10105E+17` or `110105194912310000`, its last digits and any `X`
//! lost. [`link_id_number`] reports such a value as [`IdNumberProblem::StoredAsNumber`]; it never
//! guesses the lost digits.

use std::fmt;

/// What is wrong with a citizen ID number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdNumberProblem {
    /// Not 18 characters (after removing spaces and converting full-width digits); for
    /// [`link_id_number`], neither 18 nor 15.
    Length(usize),
    /// A character other than a digit (or a final `X`).
    Character,
    /// Characters 7–14 are not a valid date.
    BirthDate,
    /// The check character is wrong.
    CheckDigit {
        /// The character found.
        found: char,
        /// The character the first 17 give.
        expected: char,
    },
    /// The value was stored as a number by a spreadsheet (`1.10105E+17`, or 18 digits ending in
    /// zeros that fail the check): its last digits are lost and cannot be recovered.
    StoredAsNumber,
}

impl IdNumberProblem {
    /// A short, stable name for reports: `length`, `character`, `birth_date`, `check_digit`,
    /// `stored_as_number`.
    ///
    /// # Examples
    /// ```
    /// use shequ::privacy::IdNumberProblem;
    /// assert_eq!(IdNumberProblem::StoredAsNumber.kind(), "stored_as_number");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            IdNumberProblem::Length(_) => "length",
            IdNumberProblem::Character => "character",
            IdNumberProblem::BirthDate => "birth_date",
            IdNumberProblem::CheckDigit { .. } => "check_digit",
            IdNumberProblem::StoredAsNumber => "stored_as_number",
        }
    }
}

impl fmt::Display for IdNumberProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdNumberProblem::Length(n) => write!(f, "has {n} characters, not 18"),
            IdNumberProblem::Character => {
                f.write_str("has a character other than 0-9 or a final X")
            }
            IdNumberProblem::BirthDate => f.write_str("characters 7-14 are not a valid birth date"),
            IdNumberProblem::CheckDigit { found, expected } => {
                write!(
                    f,
                    "check character is {found}, the first 17 give {expected}"
                )
            }
            IdNumberProblem::StoredAsNumber => f.write_str(
                "was stored as a number by a spreadsheet: its last digits are lost (unrecoverable)",
            ),
        }
    }
}

/// A checked citizen ID number's normalised form and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdNumber {
    /// The 18 characters, ASCII, with an upper-case `X`.
    pub normalized: String,
    /// The birth date it encodes.
    pub birth: chrono::NaiveDate,
    /// Whether the sequence digit (the 17th character) is odd: male.
    pub male: bool,
}

/// The GB 11643 check character of the first 17 digits (ISO 7064 MOD 11-2).
///
/// # Examples
/// ```
/// // The standard's example number 11010519491231002X.
/// assert_eq!(shequ::privacy::id_check_char("11010519491231002"), Some('X'));
/// assert_eq!(shequ::privacy::id_check_char("1101051949123100"), None);
/// ```
///
/// # Panics
/// Never: 17 ASCII digits are checked before they are used.
pub fn id_check_char(first17: &str) -> Option<char> {
    let b = first17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(check_of(b.try_into().expect("17 bytes")))
}

/// The check character of 17 ASCII digits.
fn check_of(first17: &[u8; 17]) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let s: u32 = first17
        .iter()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    C[(s % 11) as usize]
}

/// Checks a citizen ID number (GB 11643): 18 characters, 17 digits and a check character
/// (a digit or `X`), a valid birth date in characters 7–14, the right check character.
/// Spaces, full-width digits and a lower-case `x` are accepted and normalised. A 15-digit
/// first-generation number is reported as [`IdNumberProblem::Length`]: a roster is expected to
/// hold the current form ([`link_id_number`] upgrades it).
///
/// # Errors
/// The [`IdNumberProblem`]. Report it with [`mask_identifier`](super::mask_identifier), never
/// with the number.
///
/// # Examples
/// ```
/// use shequ::privacy::{check_id_number, IdNumberProblem};
/// let id = check_id_number("11010519491231002x").unwrap();
/// assert_eq!(id.normalized, "11010519491231002X");
/// assert_eq!(id.birth.to_string(), "1949-12-31");
/// assert!(!id.male);
/// assert_eq!(check_id_number("１１０１０５１９４９１２３１００２Ｘ").unwrap().normalized, "11010519491231002X");
/// assert!(matches!(check_id_number("110105194912310021"), Err(IdNumberProblem::CheckDigit { .. })));
/// assert!(matches!(check_id_number("110105194913310028"), Err(IdNumberProblem::BirthDate)));
/// assert_eq!(check_id_number("12345"), Err(IdNumberProblem::Length(5)));
/// ```
///
/// # Panics
/// Never: a number that passes the character check is ASCII.
pub fn check_id_number(raw: &str) -> std::result::Result<IdNumber, IdNumberProblem> {
    let (digits, birth) = parse_id_number(raw)?;
    Ok(IdNumber {
        normalized: String::from_utf8(digits.to_vec()).expect("ASCII"),
        birth,
        male: (digits[16] - b'0') % 2 == 1,
    })
}

/// Whether a valid ID number's holder is male, without allocating (for hot loops).
pub(crate) fn id_number_is_male(raw: &str) -> std::result::Result<bool, IdNumberProblem> {
    parse_id_number(raw).map(|(d, _)| (d[16] - b'0') % 2 == 1)
}

/// The birth date of a valid ID number, without allocating.
pub(crate) fn id_number_birth(raw: &str) -> Option<chrono::NaiveDate> {
    parse_id_number(raw).ok().map(|(_, b)| b)
}

/// A valid citizen ID number packed into 64 bits: the first 17 digits as an integer times 11,
/// plus the check value (`X` is 10). Two numbers are the same person's exactly when their keys
/// are equal; the key is the linkage key of registers and roster, and never leaves the library
/// in plain form.
///
/// # Examples
/// ```
/// use shequ::privacy::link_id_number;
/// let a = link_id_number("11010519491231002X").unwrap();
/// assert_eq!(a.id.to_string(), "11010519491231002X");
/// assert_eq!(a.id.birth().to_string(), "1949-12-31");
/// assert!(!a.id.male());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CitizenId(u64);

impl CitizenId {
    fn pack(d: &[u8; 18]) -> CitizenId {
        let first: u64 = d[..17]
            .iter()
            .fold(0, |acc, b| acc * 10 + u64::from(b - b'0'));
        let check = if d[17] == b'X' {
            10
        } else {
            u64::from(d[17] - b'0')
        };
        CitizenId(first * 11 + check)
    }

    /// The 18 characters.
    pub fn digits(self) -> [u8; 18] {
        let mut d = [0u8; 18];
        let check = (self.0 % 11) as u8;
        d[17] = if check == 10 { b'X' } else { b'0' + check };
        let mut rest = self.0 / 11;
        for slot in d[..17].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        d
    }

    /// The packed value (for sorting and hashing; not an identifier to publish).
    pub fn key(self) -> u64 {
        self.0
    }

    /// The birth date (characters 7–14).
    ///
    /// # Panics
    /// Never: a `CitizenId` is made only from a number whose birth date was checked.
    pub fn birth(self) -> chrono::NaiveDate {
        let d = self.digits();
        let num = |r: std::ops::Range<usize>| {
            d[r].iter()
                .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
        };
        chrono::NaiveDate::from_ymd_opt(num(6..10) as i32, num(10..12), num(12..14))
            .expect("checked birth date")
    }

    /// Whether the sequence digit (the 17th character) is odd: male.
    pub fn male(self) -> bool {
        (self.digits()[16] - b'0') % 2 == 1
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        f.write_str(std::str::from_utf8(&d).expect("ASCII"))
    }
}

/// A number normalised for linkage ([`link_id_number`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkId {
    /// The 18-character number.
    pub id: CitizenId,
    /// It was a 15-digit first-generation number, upgraded.
    pub upgraded: bool,
}

/// Normalises a citizen ID number for linkage: spaces, full-width digits and a lower-case `x`
/// as in [`check_id_number`]; a 15-digit first-generation number (`YYMMDD` birth date, no check
/// character) upgraded to 18 (insert `19`, append the MOD 11-2 check); a 15-digit number a
/// spreadsheet stored as a number (`110105491231002.0`) read as its digits, which a spreadsheet
/// keeps exactly. A value stored as a number with more digits than a spreadsheet keeps
/// (`1.10105E+17`, `110105194912310000` failing its check) is
/// [`StoredAsNumber`](IdNumberProblem::StoredAsNumber): never repaired by guessing.
///
/// # Errors
/// The [`IdNumberProblem`].
///
/// # Examples
/// ```
/// use shequ::privacy::{link_id_number, IdNumberProblem};
/// // GB 11643's example, and its first-generation form.
/// let old = link_id_number("110105491231002").unwrap();
/// assert!(old.upgraded);
/// assert_eq!(old.id, link_id_number("11010519491231002X").unwrap().id);
/// assert_eq!(link_id_number(" １１０１０５ １９４９１２３１００２ｘ ").unwrap().id.to_string(), "11010519491231002X");
/// assert_eq!(link_id_number("1.10105E+17"), Err(IdNumberProblem::StoredAsNumber));
/// assert_eq!(link_id_number("110105194912310000"), Err(IdNumberProblem::StoredAsNumber));
/// assert_eq!(link_id_number("110105491231002.0").unwrap().id.to_string(), "11010519491231002X");
/// ```
///
/// # Panics
/// Never: the buffer slices are of fixed length.
pub fn link_id_number(raw: &str) -> std::result::Result<LinkId, IdNumberProblem> {
    let raw = raw.trim();
    if looks_like_float(raw) {
        return match raw.strip_suffix(".0") {
            Some(int) if int.len() == 15 && int.bytes().all(|b| b.is_ascii_digit()) => {
                link_id_number(int)
            }
            _ => Err(IdNumberProblem::StoredAsNumber),
        };
    }
    let (d, n, other) = normalise_chars(raw);
    if n == 15 && !other && d[..15].iter().all(u8::is_ascii_digit) {
        let mut full = [0u8; 18];
        full[..6].copy_from_slice(&d[..6]);
        full[6..8].copy_from_slice(b"19");
        full[8..17].copy_from_slice(&d[6..15]);
        full[17] = check_of(full[..17].try_into().expect("17 bytes")) as u8;
        check_digits(&full)?;
        return Ok(LinkId {
            id: CitizenId::pack(&full),
            upgraded: true,
        });
    }
    match check_normalised(d, n, other) {
        Ok(d) => Ok(LinkId {
            id: CitizenId::pack(&d),
            upgraded: false,
        }),
        Err(IdNumberProblem::CheckDigit { .. }) if d[15..17] == *b"00" && d[17] == b'0' => {
            Err(IdNumberProblem::StoredAsNumber)
        }
        Err(e) => Err(e),
    }
}

/// A number printed in a float's form: digits with a decimal point or an exponent
/// (`1.10105E+17`, `110105194912310000.0`).
fn looks_like_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    (exp.is_some() || mantissa.contains('.'))
        && exp_ok
        && !int.is_empty()
        && digits(int)
        && digits(frac)
}

/// Normalises into a stack buffer: spaces dropped, full-width digits and any `x` converted.
/// Returns the first 18 characters, the count, and whether another character was seen.
fn normalise_chars(raw: &str) -> ([u8; 18], usize, bool) {
    let mut d = [0u8; 18];
    let mut n = 0usize;
    let mut other = false;
    for ch in raw.chars() {
        let b = match ch {
            ' ' | '\u{3000}' | '\t' => continue,
            '0'..='9' => ch as u8,
            '０'..='９' => b'0' + (ch as u32 - '０' as u32) as u8,
            'x' | 'X' | 'Ｘ' | 'ｘ' => b'X',
            _ => {
                other = true;
                b'?'
            }
        };
        if n < 18 {
            d[n] = b;
        }
        n += 1;
    }
    (d, n, other)
}

/// Normalises and checks; no allocation.
fn parse_id_number(
    raw: &str,
) -> std::result::Result<([u8; 18], chrono::NaiveDate), IdNumberProblem> {
    let (d, n, other) = normalise_chars(raw);
    let d = check_normalised(d, n, other)?;
    let birth = check_digits(&d)?;
    Ok((d, birth))
}

/// The length and character checks, then [`check_digits`].
fn check_normalised(
    d: [u8; 18],
    n: usize,
    other: bool,
) -> std::result::Result<[u8; 18], IdNumberProblem> {
    if n != 18 {
        return Err(IdNumberProblem::Length(n));
    }
    if other || !d[..17].iter().all(u8::is_ascii_digit) {
        return Err(IdNumberProblem::Character);
    }
    check_digits(&d)?;
    Ok(d)
}

/// The birth-date and check-character checks of 17 digits and a check character.
fn check_digits(d: &[u8; 18]) -> std::result::Result<chrono::NaiveDate, IdNumberProblem> {
    let num = |r: std::ops::Range<usize>| {
        d[r].iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let birth = chrono::NaiveDate::from_ymd_opt(num(6..10) as i32, num(10..12), num(12..14))
        .ok_or(IdNumberProblem::BirthDate)?;
    let expected = check_of(d[..17].try_into().expect("17 bytes"));
    let found = char::from(d[17]);
    if found != expected {
        return Err(IdNumberProblem::CheckDigit { found, expected });
    }
    Ok(birth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standards_examples_check() {
        // GB 11643-1999's two worked examples.
        assert_eq!(check_of(b"11010519491231002"), 'X');
        assert_eq!(check_of(b"44052418800101001"), '4');
        assert!(check_id_number("440524188001010014").is_ok());
    }

    #[test]
    fn packing_round_trips() {
        for s in [
            "11010519491231002X",
            "440524188001010014",
            "500103200102182095",
        ] {
            let id = link_id_number(s).unwrap().id;
            assert_eq!(id.to_string(), s);
            assert_eq!(Some(id.birth()), id_number_birth(s));
        }
    }

    #[test]
    fn damaged_values_are_not_repaired() {
        for s in ["1.10105194912310E+17", "1.1e17", "110105194912310000.0"] {
            assert_eq!(
                link_id_number(s),
                Err(IdNumberProblem::StoredAsNumber),
                "{s}"
            );
        }
        // A 15-digit value with a bad date is still a bad date, not a number.
        assert_eq!(
            link_id_number("110105491331002"),
            Err(IdNumberProblem::BirthDate)
        );
        assert_eq!(
            link_id_number("1101054912310"),
            Err(IdNumberProblem::Length(13))
        );
        assert_eq!(
            link_id_number("11010519491231002Y"),
            Err(IdNumberProblem::Character)
        );
    }
}
