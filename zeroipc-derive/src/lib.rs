//! `#[derive(ShmLayout)]` for `zeroipc`. Use it through `zeroipc`, which re-exports it and
//! documents the accepted and rejected forms on its `ShmLayout` trait.
//!
//! The derive runs in three phases: `ast` turns the input into a typed model, `check` applies
//! every rule and collects all problems, and then either `expand` emits the impls, descriptor
//! and compile-time assertions, or `fallback` emits the combined errors with a stub impl.

mod ast;
mod attr;
mod check;
mod expand;
mod fallback;
mod repr;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `zeroipc::ShmLayout` for a `#[repr(C)]` struct whose fields are all `ShmLayout` and
/// which has no implicit padding. See the `zeroipc::ShmLayout` documentation.
#[proc_macro_derive(ShmLayout, attributes(shm))]
pub fn derive_shm_layout(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut errors = Vec::new();
    let model = ast::parse(&input, &mut errors);
    check::check(&model, &mut errors);
    if errors.is_empty() {
        expand::expand(&model).into()
    } else {
        fallback::fallback(&model, errors).into()
    }
}
