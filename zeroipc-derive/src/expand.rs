//! The output of a successful derive: everything inside one `const _: () = { ... };`.
//!
//! - `Zeroable` and `Pod` through `::zeroipc::__private::bytemuck` (users need no bytemuck
//!   dependency);
//! - `ShmLayout` with a descriptor built only from `size_of`, `align_of` and `offset_of!`;
//! - a `ShmLayout` bound on every field type, through a local `const fn` whose only bound is
//!   `ShmLayout`, so a field of another type is reported once, at that field, with the trait's
//!   `on_unimplemented` message (`<T as ShmLayout>::LAYOUT` would also report the `Pod`
//!   supertrait, e.g. bytemuck's `PodInOption` for `Option<u32>`);
//! - compile-time proofs that there is no implicit padding (between fields and at the end,
//!   whatever the `repr(align(N))`) and that the alignment is at most 8. Padding is at most 7
//!   bytes when every field is at most 8-aligned, so each byte count gets its own literal
//!   message.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::ast::Input;

pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let ident = input.ident;
    let name = input.shm_name();
    let doc = &input.doc;
    let p = quote!(::zeroipc::__private);

    let descriptors = input.fields.iter().map(|f| {
        let (member, ty, fname, fdoc) = (&f.member, f.ty, f.shm_name(), &f.doc);
        quote! {
            #p::Field::new(#fname, #p::offset_of!(#ident, #member), __zeroipc_layout_of::<#ty>(), #fdoc)
        }
    });

    let mut padding = Vec::new();
    let mut previous: Option<TokenStream> = None;
    for f in &input.fields {
        let member = &f.member;
        let start = quote!(#p::offset_of!(#ident, #member));
        let gap = match &previous {
            None => start.clone(),
            Some(end) => quote!(#start - (#end)),
        };
        let what = format!("before `{}`", f.rust_name);
        padding.push(padding_check(&gap, &what, "before it", f.span));
        let ty = f.ty;
        previous = Some(quote!(#start + #p::size_of::<#ty>()));
    }
    // Always checked, `align(N)` or not: an `align` equal to the fields' alignment can still
    // leave bytes at the end. Only when the struct is over-aligned is the gap taken as zero,
    // because the over-alignment check below then fails the build with the one message that
    // names the fix.
    if let (Some(end), Some(last)) = (previous, input.fields.last()) {
        let gap = quote! {
            if #p::align_of::<#ident>() == __ZEROIPC_NATURAL_ALIGN {
                #p::size_of::<#ident>() - (#end)
            } else {
                0
            }
        };
        let what = format!("after `{}`, at the end of `{ident}`", last.rust_name);
        padding.push(padding_check(&gap, &what, "at the end", ident.span()));
    }

    let align_msg = format!(
        "`{ident}` is aligned to more than 8 bytes: structures in a segment are only 8-byte \
         aligned; remove the `align` attribute or the over-aligned field"
    );
    let over_aligned_msg = format!(
        "`{ident}` is aligned more than its fields need (`#[repr(align(N))]`): NumPy and the \
         generated C cannot express that; remove the `align` attribute"
    );
    let align_span = input
        .repr
        .align
        .map_or_else(|| ident.span(), |(_, span)| span);
    let field_aligns: Vec<TokenStream> = input
        .fields
        .iter()
        .map(|f| {
            let ty = f.ty;
            quote!(#p::align_of::<#ty>())
        })
        .collect();

    let natural_align = quote! {
        /// The largest alignment of a field: what `#[repr(C)]` alone gives the struct.
        const __ZEROIPC_NATURAL_ALIGN: usize = {
            let mut natural = 1;
            #(
                if #field_aligns > natural {
                    natural = #field_aligns;
                }
            )*
            natural
        };
    };
    let over_aligned_check = quote_spanned! {align_span=>
        if #p::align_of::<#ident>() != __ZEROIPC_NATURAL_ALIGN {
            ::core::panic!(#over_aligned_msg)
        }
    };

    quote! {
        const _: () = {
            // SAFETY: the assertions below prove at compile time that the struct is `repr(C)`
            // (checked by the derive), has no padding bytes, and that every field is
            // `ShmLayout` (hence `Pod`); such a struct accepts every bit pattern.
            unsafe impl #p::bytemuck::Zeroable for #ident {}
            // SAFETY: as for `Zeroable`; `Copy` and `'static` are required by the trait itself.
            unsafe impl #p::bytemuck::Pod for #ident {}
            // SAFETY: the descriptor is built from the compiler's own size, alignment and
            // offsets; alignment <= 8 and the absence of padding are asserted below.
            unsafe impl #p::ShmLayout for #ident {
                const LAYOUT: &'static #p::Layout = &#p::Layout::structure(
                    #p::size_of::<#ident>(),
                    #p::align_of::<#ident>(),
                    &#p::StructLayout::new(#name, #doc, &[#(#descriptors),*]),
                );
            }
            /// The descriptor of a field type; its one bound is what a field must satisfy.
            const fn __zeroipc_layout_of<T: #p::ShmLayout>() -> &'static #p::Layout {
                T::LAYOUT
            }
            #natural_align
            #(#padding)*
            const _: () = if #p::align_of::<#ident>() > 8 {
                ::core::panic!(#align_msg)
            };
            const _: () = #over_aligned_check;
        };
    }
}

/// A const assertion that `gap` is zero, with one literal message per possible byte count.
fn padding_check(
    gap: &TokenStream,
    what: &str,
    place: &str,
    span: proc_macro2::Span,
) -> TokenStream {
    let arms = (1..=7usize).map(|n| {
        let msg = format!("{n} byte(s) of implicit padding {what}; add `_pad: [u8; {n}]` {place}");
        quote_spanned!(span=> #n => ::core::panic!(#msg),)
    });
    let more = format!(
        "more than 7 bytes of implicit padding {what}; add an explicit `_pad: [u8; N]` field {place}"
    );
    quote_spanned! {span=>
        const _: () = match #gap {
            0 => {}
            #(#arms)*
            _ => ::core::panic!(#more),
        };
    }
}
