//! `#[derive(ShmLayout)]` for `zeroipc`: a struct that other processes and languages can read
//! byte for byte. Use it through `zeroipc`, which re-exports it:
//!
//! ```
//! use zeroipc::ShmLayout;
//!
//! /// One sample from a sensor.
//! #[repr(C)]
//! #[derive(Clone, Copy, ShmLayout)]
//! struct SensorReading {
//!     temperature: f32,
//!     humidity: f32,
//!     #[shm(rename = "time_ms")]
//!     timestamp: u64,
//! }
//! ```
//!
//! # Accepted
//!
//! `#[repr(C)]` (an `align(N)` may only restate the fields' alignment) or `#[repr(transparent)]` structs, with named
//! or tuple fields, whose fields are all `ShmLayout` (fixed-width integers, `f32`, `f64`,
//! arrays, other derived structs), with no implicit padding, deriving `Clone` and `Copy`.
//!
//! # Rejected, with the fix in the error
//!
//! - missing `#[repr(C)]`: add it; `#[repr(packed)]`: remove it and add `_pad` fields;
//!   `align(N)` over 8 or over the fields' own alignment: remove it;
//! - implicit padding: `N byte(s) of implicit padding before `field`; add `_pad: [u8; N]``;
//! - the primitives `bool` (use `u8`), `char` (use `u32`), `usize`/`isize` (use `u64`/`i64`),
//!   `u128`/`i128` and `str`, references, raw and function pointers, tuples, `()`, `[T; 0]`;
//! - any type that is not `ShmLayout`, such as `Box`/`Vec`/`String`, `Option` or `PhantomData`,
//!   judged by the trait rather than by its name (a struct of your own called `Vec` is fine
//!   when it derives `ShmLayout`);
//! - enums, unions, generic structs;
//! - unknown or repeated `#[shm(...)]` keys, and names (after `rename`) that are not identifiers
//!   in both Python and C, are keywords of Python, C or C++ or names the C header includes, or
//!   name a field like its struct.
//!
//! All problems are reported together, each at its span; a failed derive adds stub impls so that
//! uses of the type add no errors of their own. The full table is on `zeroipc::ShmLayout`.
//!
//! # Implementation
//!
//! Three phases, after serde_derive: `ast` turns the input into a typed model, `check` applies
//! every rule and collects all problems, then `expand` emits the impls, the descriptor and the
//! compile-time assertions inside one `const _: () = { ... };`, or `fallback` emits the combined
//! errors with stub impls.

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
