//! The `#[repr(...)]` attributes of the input, as a typed model with spans.

use proc_macro2::Span;
use syn::{Attribute, LitInt};

/// Every repr hint found, with where it was written.
#[derive(Default)]
pub(crate) struct Repr {
    pub(crate) c: Option<Span>,
    pub(crate) transparent: Option<Span>,
    pub(crate) rust: Option<Span>,
    pub(crate) packed: Option<Span>,
    pub(crate) align: Option<(u64, Span)>,
    /// `u8`, `i32`, ... (only meaningful on enums).
    pub(crate) int: Option<Span>,
}

impl Repr {
    /// Collects the repr hints of `attrs`; malformed ones are reported into `errors`.
    pub(crate) fn from_attrs(attrs: &[Attribute], errors: &mut Vec<syn::Error>) -> Self {
        let mut repr = Self::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
            let result = attr.parse_nested_meta(|meta| {
                let span = meta
                    .path
                    .get_ident()
                    .map_or_else(Span::call_site, syn::Ident::span);
                let Some(ident) = meta.path.get_ident().map(ToString::to_string) else {
                    return Err(meta.error("unrecognised repr hint"));
                };
                match ident.as_str() {
                    "C" => repr.c = Some(span),
                    "transparent" => repr.transparent = Some(span),
                    "Rust" => repr.rust = Some(span),
                    "packed" => {
                        if meta.input.peek(syn::token::Paren) {
                            let content;
                            syn::parenthesized!(content in meta.input);
                            content.parse::<LitInt>()?;
                        }
                        repr.packed = Some(span);
                    }
                    "align" => {
                        let content;
                        syn::parenthesized!(content in meta.input);
                        let lit: LitInt = content.parse()?;
                        repr.align = Some((lit.base10_parse()?, lit.span()));
                    }
                    "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32"
                    | "i64" | "i128" | "isize" => repr.int = Some(span),
                    _ => return Err(meta.error("unrecognised repr hint")),
                }
                Ok(())
            });
            if let Err(e) = result {
                errors.push(e);
            }
        }
        repr
    }
}
