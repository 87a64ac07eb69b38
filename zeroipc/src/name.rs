//! Validation of segment and entry names, done before any system call or table access.

use crate::error::{Error, printable};

/// The longest segment name accepted, in bytes without the leading `/` (Linux `NAME_MAX`).
pub const MAX_SEGMENT_NAME_LEN: usize = 255;

/// The longest entry name accepted, in bytes (the table stores 32 bytes including the NUL).
pub const MAX_ENTRY_NAME_LEN: usize = 31;

/// Checks a segment name and returns it in canonical form, with exactly one leading `/`.
///
/// Accepted: `"sensors"` and `"/sensors"` (both mean `/dev/shm/sensors`). Rejected: the empty
/// name, `"/"`, names with another `/`, `"."` and `".."`, NUL or other control characters,
/// invisible formatting characters (bidirectional overrides such as U+202E, zero-width
/// characters, ...), and names longer than [`MAX_SEGMENT_NAME_LEN`] bytes.
pub(crate) fn segment_name(name: &str) -> Result<String, Error> {
    let bad = |reason| {
        Err(Error::InvalidSegmentName {
            name: printable(name),
            reason,
        })
    };
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return bad("the name is empty");
    }
    if bare.contains('/') {
        return bad("a segment name may not contain `/` after the leading one");
    }
    if bare == "." || bare == ".." {
        return bad("`.` and `..` are not segment names");
    }
    if bare.chars().any(char::is_control) {
        return bad("the name contains a NUL or control character");
    }
    if bare.chars().any(is_invisible_format) {
        return bad(
            "the name contains an invisible formatting character (a bidirectional override, \
             zero-width or similar), which would make it display as another name",
        );
    }
    if bare.len() > MAX_SEGMENT_NAME_LEN {
        return bad("the name is longer than 255 bytes");
    }
    Ok(format!("/{bare}"))
}

/// Characters of Unicode category Cf (format) and the other invisible code points that can make
/// a name display differently from what it is: bidirectional embeddings, overrides and isolates
/// (U+202A..U+202E, U+2066..U+2069, U+200E/F, U+061C), zero-width characters (U+200B..U+200D,
/// U+2060..U+2064, U+FEFF), the soft hyphen, the Mongolian vowel separator, interlinear
/// annotation marks, tag characters (U+E0000..U+E007F) and variation selectors.
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The `/dev/shm` path of a canonical segment name.
pub(crate) fn shm_path(canonical: &str) -> String {
    format!("/dev/shm{canonical}")
}

/// Checks an entry name: 1 to 31 bytes, no NUL.
pub(crate) fn entry_name(name: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidEntryName {
            name: printable(name),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.len() > MAX_ENTRY_NAME_LEN {
        return bad("entry names are limited to 31 bytes");
    }
    if name.contains('\0') {
        return bad("the name contains a NUL byte");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names() {
        assert_eq!(segment_name("sensors").unwrap(), "/sensors");
        assert_eq!(segment_name("/sensors").unwrap(), "/sensors");
        assert_eq!(segment_name("/a.b-c_d").unwrap(), "/a.b-c_d");
        for bad in [
            "",
            "/",
            "/a/b",
            "//a",
            "/..",
            "/.",
            "..",
            "/../../tmp/x",
            "a\0b",
            "a\nb",
            "invoice\u{202E}fdp.exe",
            "a\u{200B}b",
            "\u{2066}x\u{2069}",
            "\u{FEFF}sensors",
            "x\u{E0041}",
        ] {
            assert!(
                matches!(segment_name(bad), Err(Error::InvalidSegmentName { .. })),
                "{bad:?} accepted"
            );
        }
        let e = segment_name("evil\u{202E}cod").unwrap_err().to_string();
        assert!(e.contains("invisible") && e.contains("\\u{202e}"), "{e}");
        assert!(
            segment_name("capteurs-été").is_ok(),
            "visible non-ASCII is fine"
        );
        assert!(segment_name(&"x".repeat(255)).is_ok());
        assert!(segment_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn entry_names() {
        assert!(entry_name("temps").is_ok());
        assert!(entry_name(&"n".repeat(31)).is_ok());
        assert!(entry_name(&"n".repeat(32)).is_err());
        assert!(entry_name("").is_err());
        assert!(entry_name("a\0").is_err());
        // 31 bytes of two-byte characters is too long even though it is 16 characters.
        assert!(entry_name(&"é".repeat(16)).is_err());
    }
}
