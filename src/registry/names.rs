//! Names compared across lists: the same person is spelled differently from one department's
//! spreadsheet to the next (spaces, full-width characters, a traditional character, the
//! middle dot of a minority or foreign name written four ways).

/// A name's comparison key: whitespace removed, full-width ASCII made half-width, ASCII
/// letters lower-cased, the middle-dot variants (`·`, `•`, `・`, `‧`, `.`) made one, traditional
/// characters made simplified (by [`fast2s`]). `None` for a blank name.
///
/// # Examples
/// ```
/// use shequ::registry::name_key;
/// assert_eq!(name_key(" 张 三 "), name_key("张三"));
/// assert_eq!(name_key("陳小明"), name_key("陈小明"));
/// assert_eq!(name_key("阿依古丽•买买提"), name_key("阿依古丽·买买提"));
/// assert_ne!(name_key("张三"), name_key("张山"));
/// assert_eq!(name_key("  "), None);
/// ```
pub fn name_key(name: &str) -> Option<String> {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        let c = match c {
            c if c.is_whitespace() => continue,
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        let c = match c {
            '•' | '・' | '‧' | '.' | '\u{FF65}' => '·',
            c => c.to_ascii_lowercase(),
        };
        s.push(c);
    }
    if s.is_empty() {
        return None;
    }
    Some(if s.is_ascii() { s } else { fast2s::convert(&s) })
}
