//! The one rule for names in the Python and C bindings that `zeroipc-codegen` writes.
//!
//! A type or field name must be usable in a NumPy dtype, a Python module and a C11/C++ header at
//! once. `#[derive(ShmLayout)]` applies this rule at compile time (to the Rust name, or to its
//! `#[shm(rename = "...")]`) and `zeroipc-codegen` applies it to schema files, both through
//! [`binding_name_problem`], so the two cannot disagree.
//!
//! ```
//! use zeroipc_names::binding_name_problem;
//!
//! assert_eq!(binding_name_problem("temperature"), None);
//! assert!(binding_name_problem("lambda").is_some());
//! ```
//!
//! The crate has no dependencies, so that the proc-macro crate can use it.

/// Keywords of Python 3, C (C11 and C23) and C++ (C++20, with the alternative tokens), and the
/// names the generated header includes: none may name a generated type or field, since the
/// bindings would not compile or import.
pub const KEYWORDS: &[&str] = &[
    // Python 3
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    // C11 and C23
    "auto",
    "case",
    "char",
    "const",
    "default",
    "do",
    "double",
    "enum",
    "extern",
    "float",
    "goto",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_Bool",
    "_Complex",
    "_Generic",
    "_Imaginary",
    "_Noreturn",
    "_Static_assert",
    "_Thread_local",
    "typeof",
    "typeof_unqual",
    // C++20, with the alternative tokens
    "alignas",
    "alignof",
    "and_eq",
    "asm",
    "bitand",
    "bitor",
    "bool",
    "catch",
    "char8_t",
    "char16_t",
    "char32_t",
    "co_await",
    "co_return",
    "co_yield",
    "compl",
    "concept",
    "const_cast",
    "consteval",
    "constexpr",
    "constinit",
    "decltype",
    "delete",
    "dynamic_cast",
    "explicit",
    "export",
    "false",
    "friend",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not_eq",
    "nullptr",
    "operator",
    "or_eq",
    "private",
    "protected",
    "public",
    "reinterpret_cast",
    "requires",
    "static_assert",
    "static_cast",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "typeid",
    "typename",
    "using",
    "virtual",
    "wchar_t",
    "xor",
    "xor_eq",
    // names the generated header includes (stddef.h, stdint.h, string.h)
    "NULL",
    "offsetof",
    "size_t",
    "ptrdiff_t",
    "max_align_t",
    "SIZE_MAX",
    "PTRDIFF_MIN",
    "PTRDIFF_MAX",
    "WCHAR_MIN",
    "WCHAR_MAX",
    "WINT_MIN",
    "WINT_MAX",
    "SIG_ATOMIC_MIN",
    "SIG_ATOMIC_MAX",
    "memchr",
    "memcmp",
    "memcpy",
    "memmove",
    "memset",
    "strcat",
    "strchr",
    "strcmp",
    "strcoll",
    "strcpy",
    "strcspn",
    "strerror",
    "strlen",
    "strncat",
    "strncmp",
    "strncpy",
    "strpbrk",
    "strrchr",
    "strspn",
    "strstr",
    "strtok",
    "strxfrm",
];

/// Why `name` cannot name a type or field in generated Python and C, if it cannot.
///
/// A name must be an ASCII identifier (letters, digits and `_`, not starting with a digit), not
/// in [`KEYWORDS`], without `__`, not starting with `_` and a capital letter (both reserved in C
/// and C++), not starting with `zeroipc_` (any case; the generated files use that prefix), and
/// not a `<stdint.h>` type or macro name (`int8_t`, `UINT32_MAX`, ...).
///
/// The text names the rule, in lower case with the name in backticks, so that callers can prefix
/// the subject and append the fix:
///
/// ```
/// assert_eq!(
///     zeroipc_names::binding_name_problem("a__b").as_deref(),
///     Some("`a__b` contains `__`, which C and C++ reserve"),
/// );
/// ```
#[must_use]
pub fn binding_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let valid = match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {
            chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        }
        _ => false,
    };
    if !valid {
        return Some(format!(
            "`{name}` is not a valid identifier in both Python and C (ASCII letters, digits and `_`, \
             not starting with a digit)"
        ));
    }
    if KEYWORDS.contains(&name) {
        return Some(format!(
            "`{name}` is a keyword of Python, C or C++, or a name the generated C header includes"
        ));
    }
    if name.contains("__") {
        return Some(format!("`{name}` contains `__`, which C and C++ reserve"));
    }
    if name.starts_with('_') && name.chars().nth(1).is_some_and(|c| c.is_ascii_uppercase()) {
        return Some(format!(
            "`{name}` starts with `_` and a capital letter, which C and C++ reserve"
        ));
    }
    if name.to_ascii_lowercase().starts_with("zeroipc_") {
        return Some(format!(
            "`{name}` starts with `zeroipc_`, which the generated files use for their own names"
        ));
    }
    let stdint_type = (name.starts_with("int") || name.starts_with("uint")) && name.ends_with("_t");
    let stdint_macro = (name.starts_with("INT") || name.starts_with("UINT"))
        && (name.ends_with("_MAX") || name.ends_with("_MIN") || name.ends_with("_C"));
    if stdint_type || stdint_macro {
        return Some(format!("`{name}` is a type or macro name of `<stdint.h>`"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{KEYWORDS, binding_name_problem};

    #[test]
    fn every_keyword_is_refused() {
        for k in KEYWORDS {
            let problem = binding_name_problem(k);
            assert!(problem.is_some(), "{k} accepted");
        }
    }

    #[test]
    fn reserved_and_invalid_names_are_refused() {
        for bad in [
            "",
            "1x",
            "a-b",
            "é",
            "xor",
            "lambda",
            "NULL",
            "size_t",
            "uint32_t",
            "int_least8_t",
            "INT8_MAX",
            "UINT64_C",
            "_Pragma",
            "a__b",
            "__x",
            "zeroipc_x",
            "ZeroIPC_x",
        ] {
            assert!(binding_name_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for good in [
            "_pad",
            "x",
            "Sample3",
            "int_value",
            "UINT",
            "_a",
            "time_ms",
            "zeroipc",
        ] {
            assert_eq!(binding_name_problem(good), None, "{good:?}");
        }
    }

    #[test]
    fn each_rule_says_which_it_is() {
        let says = |name: &str, text: &str| {
            let problem = binding_name_problem(name).unwrap_or_default();
            assert!(problem.contains(text), "{name}: {problem}");
        };
        says("9lives", "not a valid identifier");
        says("class", "keyword");
        says("a__b", "`__`");
        says("_Foo", "capital letter");
        says("zeroipc_len", "`zeroipc_`");
        says("uint8_t", "<stdint.h>");
    }

    #[test]
    fn keywords_are_listed_once() {
        for (i, k) in KEYWORDS.iter().enumerate() {
            assert!(!KEYWORDS[..i].contains(k), "{k} listed twice");
        }
    }
}
