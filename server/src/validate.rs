//! Input rules shared by every resource: names, usernames, display text, emails.
//! Names are ASCII on purpose: no look-alike Unicode can impersonate another tenant.

use crate::error::ApiError;

/// Resource names: 1–63 of `a-z 0-9 -`, starting with a letter, not ending with `-`.
pub fn name(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = (1..=63).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && !value.ends_with('-')
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("{field} must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'"),
        ))
    }
}

/// Usernames: 1–64 of letters, digits and `. _ - @`, starting with a letter or digit.
pub fn username(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&value.len())
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            field,
            format!("{field} must be 1 to 64 characters of letters, digits and '.', '_', '-', '@', starting with a letter or digit"),
        ))
    }
}

/// Free text shown to people (display names, descriptions): at most `max`
/// characters, no control characters and no invisible or bidirectional ones,
/// which could make one text render as another.
/// The longest description any object takes.
pub const DESCRIPTION_MAX: usize = 1024;

/// An optional `description` (display text of at most [`DESCRIPTION_MAX`] characters).
pub fn description(value: Option<&str>) -> Result<(), ApiError> {
    value.map_or(Ok(()), |d| display_text("description", d, DESCRIPTION_MAX))
}

/// The common rename-or-describe patch: an optional `name` ([`name`]) and an
/// optional `description` ([`description`]).
pub fn rename(name_value: Option<&str>, description_value: Option<&str>) -> Result<(), ApiError> {
    if let Some(n) = name_value {
        name("name", n)?;
    }
    description(description_value)
}

pub fn display_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::bad_field(field, format!("{field} must be at most {max} characters")));
    }
    let bad = value.chars().any(|c| c.is_control() || invisible(c));
    if bad {
        return Err(ApiError::bad_field(
            field,
            format!("{field} must not contain control, invisible (zero-width, format) or bidirectional characters"),
        ));
    }
    Ok(())
}

/// Characters that render as nothing, or reorder the text around them: the
/// Unicode format characters (soft hyphen, zero-width spaces and joiners, bidi
/// marks, embeddings, overrides and isolates, invisible operators, the byte-order
/// mark, interlinear annotations, musical formatting, tags) and the blank fillers.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

/// A plausible email address: `local@domain`, ASCII, at most 254 characters.
pub fn email(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = value.len() <= 254
        && value.is_ascii()
        && !value.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        && matches!(value.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_field(field, format!("{field} must be an email address like ops@example.com")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "acme", "acme-2", "a0"] {
            assert!(name("name", good).is_ok(), "{good}");
        }
        for bad in
            ["", "Acme", "-a", "a-", "1abc", "acme corp", "аcme", "a_b", &"a".repeat(64), "x'; drop table tenants; --"]
        {
            assert!(name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts() {
        assert!(display_text("d", "Acme Corp. — Zürich", 128).is_ok());
        assert!(display_text("d", "evil\u{202E}gnp.exe", 128).is_err());
        assert!(display_text("d", "a\nb", 128).is_err());
        for invisible in ["a\u{00AD}b", "a\u{061C}b", "a\u{2060}b", "a\u{200D}b", "a\u{E0041}b", "\u{3164}"] {
            assert!(display_text("d", invisible, 128).is_err(), "{invisible:?}");
        }
        assert!(display_text("d", "日本語 · Ελληνικά · עברית", 128).is_ok());
        assert!(email("email", "ops@example.com").is_ok());
        assert!(email("email", "ops@localhost").is_err());
        assert!(email("email", "a b@example.com").is_err());
    }
}
