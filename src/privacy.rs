//! Privacy helpers. Personal identifiers never leave the library in plain form.

/// Masks an identifier for logs and reports: the first two and last two characters are kept,
/// the rest replaced by `*`; identifiers of four characters or fewer are fully masked.
///
/// # Examples
/// ```
/// assert_eq!(shequ::privacy::mask_identifier("500103195603121234"), "50**************34");
/// assert_eq!(shequ::privacy::mask_identifier("P12"), "***");
/// ```
pub fn mask_identifier(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let n = chars.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let mut s = String::with_capacity(id.len());
    s.extend(&chars[..2]);
    s.extend(std::iter::repeat_n('*', n - 4));
    s.extend(&chars[n - 2..]);
    s
}
