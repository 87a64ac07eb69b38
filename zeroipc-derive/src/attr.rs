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

/// The span to blame for a name: the `rename` literal if there is one.
pub(crate) fn name_span(rename: Option<&LitStr>, fallback: Span) -> Span {
    rename.map_or(fallback, LitStr::span)
}
