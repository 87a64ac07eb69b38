//! One check per rule. Every check runs; all problems are collected so that the user sees them
//! together.

use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, Type, TypePath};

use crate::ast::{Input, Shape};
use zeroipc_names::binding_name_problem;

use crate::attr::name_span;

/// Runs every rule on `input`, pushing one error per problem.
pub(crate) fn check(input: &Input<'_>, errors: &mut Vec<syn::Error>) {
    shape(input, errors);
    generics(input, errors);
    repr(input, errors);
    names(input, errors);
    for field in &input.fields {
        field_type(field.ty, errors);
    }
}

fn err(errors: &mut Vec<syn::Error>, span: proc_macro2::Span, msg: impl std::fmt::Display) {
    errors.push(syn::Error::new(span, msg));
}

fn shape(input: &Input<'_>, errors: &mut Vec<syn::Error>) {
    match input.shape {
        Shape::Struct => {}
        Shape::Empty(span) => err(
            errors,
            span,
            "`ShmLayout` cannot be derived for a struct without fields: a zero-sized type has no \
             bytes to share; add a field",
        ),
        Shape::Enum(span) => err(
            errors,
            span,
            "`ShmLayout` cannot be derived for enums: not every bit pattern is a valid variant; \
             use a `#[repr(C)]` struct with an integer tag field such as `kind: u32`",
        ),
        Shape::Union(span) => err(
            errors,
            span,
            "`ShmLayout` cannot be derived for unions: other languages cannot know which field is \
             live; use a struct, or a byte array `[u8; N]`",
        ),
    }
}

fn generics(input: &Input<'_>, errors: &mut Vec<syn::Error>) {
    if input.is_generic() {
        err(
            errors,
            input.input.generics.span(),
            "`ShmLayout` cannot be derived for generic types yet: a descriptor needs concrete \
             field types; define a struct with concrete types instead",
        );
    }
}

fn repr(input: &Input<'_>, errors: &mut Vec<syn::Error>) {
    let r = &input.repr;
    if let Some(span) = r.packed {
        err(
            errors,
            span,
            "`#[repr(packed)]` cannot be shared: packed fields are misaligned, which atomics cannot \
             use and C and NumPy lay out differently; remove `packed` and add explicit `_pad` fields",
        );
    }
    if let Some((align, span)) = r.align {
        if align > 8 {
            err(
                errors,
                span,
                format!(
                    "`#[repr(align({align}))]` is over the limit: structures in a segment are only \
                     8-byte aligned; use at most `align(8)`"
                ),
            );
        }
    }
    if r.c.is_none() && r.transparent.is_none() && matches!(input.shape, Shape::Struct) {
        let span = r.rust.unwrap_or_else(|| input.ident.span());
        err(
            errors,
            span,
            "`ShmLayout` requires `#[repr(C)]` so that field order and offsets match C and NumPy; \
             add `#[repr(C)]` to the struct",
        );
    }
}

fn names(input: &Input<'_>, errors: &mut Vec<syn::Error>) {
    if let Some(problem) = binding_name_problem(&input.shm_name()) {
        let span = name_span(input.attrs.rename.as_ref(), input.ident.span());
        err(
            errors,
            span,
            format!("{problem}; choose another with `#[shm(rename = \"...\")]`"),
        );
    }
    let mut seen: Vec<String> = Vec::new();
    for field in &input.fields {
        let name = field.shm_name();
        let span = name_span(field.attrs.rename.as_ref(), field.span);
        if let Some(problem) = binding_name_problem(&name) {
            err(
                errors,
                span,
                format!("field {problem}; choose another with `#[shm(rename = \"...\")]`"),
            );
        } else if seen.contains(&name) {
            err(
                errors,
                span,
                format!("two fields would be named `{name}` in the bindings"),
            );
        } else if name == input.shm_name() {
            err(
                errors,
                span,
                format!(
                    "field `{name}` has the name of its struct, which C++ rejects; rename it with \
                     `#[shm(rename = \"...\")]`"
                ),
            );
        }
        seen.push(name);
    }
}

/// Rejects field types that can be recognised as unshareable from their syntax. Everything else
/// is checked by the compiler through the `ShmLayout` bound.
fn field_type(ty: &Type, errors: &mut Vec<syn::Error>) {
    let span = ty.span();
    match ty {
        Type::Reference(_) => err(
            errors,
            span,
            "references cannot be shared: an address means nothing in another process; store an \
             index or an offset (`u64`) instead",
        ),
        Type::Ptr(_) => err(
            errors,
            span,
            "raw pointers cannot be shared: an address means nothing in another process; store an \
             index or an offset (`u64`) instead",
        ),
        Type::FnPtr(_) => err(
            errors,
            span,
            "function pointers cannot be shared: code addresses differ between processes; store \
             an integer that selects the function instead",
        ),
        Type::Tuple(t) if t.elems.is_empty() => err(
            errors,
            span,
            "`()` is zero-sized and cannot be shared: it has no bytes; remove the field",
        ),
        Type::Tuple(_) => err(
            errors,
            span,
            "tuples cannot be shared: their layout is not guaranteed; use a `#[repr(C)]` struct \
             with `#[derive(ShmLayout)]` or an array",
        ),
        Type::Slice(_) => err(
            errors,
            span,
            "slices cannot be shared: they are unsized; use a fixed-size array `[T; N]`",
        ),
        Type::TraitObject(_) | Type::ImplTrait(_) => err(
            errors,
            span,
            "trait objects cannot be shared: they carry a vtable address; use a concrete type",
        ),
        Type::Never(_) => err(errors, span, "`!` cannot be shared: it has no values"),
        Type::Array(a) => {
            if let Expr::Lit(ExprLit {
                lit: Lit::Int(n), ..
            }) = &a.len
            {
                if n.base10_parse::<u64>().is_ok_and(|n| n == 0) {
                    err(
                        errors,
                        a.len.span(),
                        "zero-length arrays are zero-sized and cannot be shared: they have no \
                         bytes; remove the field",
                    );
                }
            }
            field_type(&a.elem, errors);
        }
        Type::Paren(p) => field_type(&p.elem, errors),
        Type::Group(g) => field_type(&g.elem, errors),
        Type::Path(p) => {
            if let Some(msg) = primitive_name(p).and_then(|name| primitive_problem(&name)) {
                // The last segment: a stable proc macro cannot join the spans of a whole path.
                let span = p.path.segments.last().map_or(span, |s| s.ident.span());
                err(errors, span, msg);
            }
        }
        _ => {}
    }
}

/// The name of the primitive type `p` spells, if it spells one: a single-segment path without
/// generic arguments (`bool`), or `core::primitive::bool` / `std::primitive::bool`. Any other path
/// names a type that the `ShmLayout` bound judges, whatever it is called.
fn primitive_name(p: &TypePath) -> Option<String> {
    if p.qself.is_some() || p.path.segments.iter().any(|s| !s.arguments.is_none()) {
        return None;
    }
    let segments: Vec<&Ident> = p.path.segments.iter().map(|s| &s.ident).collect();
    match segments.as_slice() {
        [name] if p.path.leading_colon.is_none() => Some(name.to_string()),
        [root, module, name] if (*root == "core" || *root == "std") && *module == "primitive" => {
            Some(name.to_string())
        }
        _ => None,
    }
}

/// Messages for the primitive types that cannot be shared.
fn primitive_problem(name: &str) -> Option<String> {
    let msg = match name {
        "bool" => "`bool` cannot be shared: not every byte is a valid `bool`; use `u8`".to_owned(),
        "char" => {
            "`char` cannot be shared: not every `u32` is a valid `char`; use `u32`".to_owned()
        }
        "usize" | "isize" => format!(
            "`{name}` cannot be shared: its width differs between 32- and 64-bit processes; use \
             `{}64`",
            &name[..1]
        ),
        "u128" | "i128" => format!(
            "`{name}` cannot be shared: its alignment differs between Rust, C and NumPy; use two \
             `{}64` fields",
            &name[..1]
        ),
        "str" => "`str` cannot be shared: it is unsized; use a fixed-size byte array `[u8; N]`"
            .to_owned(),
        _ => return None,
    };
    Some(msg)
}
