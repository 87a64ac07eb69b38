//! `#[shm(...)]` attributes on the type and its fields, and `///` doc comments.

use proc_macro2::Span;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Meta};

/// The `#[shm(...)]` settings of one item.
#[derive(Default)]
pub(crate) struct ShmAttrs {
    /// `rename = "..."`: the name used in generated Python and C.
    pub(crate) rename: Option<LitStr>,
}

impl ShmAttrs {
    /// Parses every `#[shm(...)]` attribute; unknown keys and repeated keys are reported.
    pub(crate) fn from_attrs(attrs: &[Attribute], errors: &mut Vec<syn::Error>) -> Self {
        let mut out = Self::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("shm")) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let lit: LitStr = meta.value()?.parse()?;
                    if out.rename.is_some() {
                        errors.push(syn::Error::new(
                            lit.span(),
                            "duplicate `#[shm(rename)]`; give one name only",
                        ));
                    } else {
                        out.rename = Some(lit);
                    }
                    Ok(())
                } else {
                    let key = meta
                        .path
                        .get_ident()
                        .map_or_else(|| "?".to_owned(), ToString::to_string);
                    Err(meta.error(format!(
                        "unknown `shm` attribute `{key}`; the only one is `rename = \"...\"`"
                    )))
                }
            });
            if let Err(e) = result {
                errors.push(e);
            }
        }
        out
    }
}

/// The text of the `///` doc comments in `attrs`, one line per comment, trimmed.
pub(crate) fn doc_comment(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// Keywords (and reserved words) of Python 3, C11 and C++17: none may name a generated type or
/// field, since the bindings would not compile or import.
const KEYWORDS: &[&str] = &[
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

/// Why `name` cannot be used in generated Python and C, if it cannot.
pub(crate) fn name_problem(name: &str) -> Option<String> {
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

/// The span to blame for a name: the `rename` literal if there is one.
pub(crate) fn name_span(rename: Option<&LitStr>, fallback: Span) -> Span {
    rename.map_or(fallback, LitStr::span)
}
