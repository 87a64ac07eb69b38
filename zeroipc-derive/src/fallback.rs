//! The output of a failed derive: every error at once, plus stub impls so that code using the
//! type does not add a cascade of "`ShmLayout` is not implemented" errors.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Input;

pub(crate) fn fallback(input: &Input<'_>, errors: Vec<syn::Error>) -> TokenStream {
    let compile_errors = errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    });
    let compile_errors = compile_errors.map(|e| e.to_compile_error());
    // Stub impls need a concrete, non-generic type; generic inputs get none.
    let stubs = (!input.is_generic()).then(|| {
        let ident = input.ident;
        let p = quote!(::zeroipc::__private);
        quote! {
            const _: () = {
                // SAFETY (all three): never used at run time: the crate does not compile, because
                // of the `compile_error!` emitted beside these stubs. The higher-ranked bounds
                // are not checked eagerly, so a type that is not `Copy` adds no error of its own.
                unsafe impl #p::bytemuck::Zeroable for #ident {}
                unsafe impl #p::bytemuck::Pod for #ident where for<'__zeroipc> #ident: Copy {}
                unsafe impl #p::ShmLayout for #ident where for<'__zeroipc> #ident: #p::bytemuck::Pod {
                    const LAYOUT: &'static #p::Layout = &#p::Layout::scalar(#p::Scalar::U8);
                }
            };
        }
    });
    quote! {
        #compile_errors
        #stubs
    }
}
