//! The derive input as a typed model with spans.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Member, Type};

use crate::attr::{ShmAttrs, doc_comment};
use crate::repr::Repr;

/// What kind of item the derive was applied to.
pub(crate) enum Shape {
    /// A struct with named fields or a tuple struct.
    Struct,
    /// A unit struct or a struct with no fields.
    Empty(Span),
    Enum(Span),
    Union(Span),
}

/// One field.
pub(crate) struct Field<'a> {
    /// `name` or `0`, for `offset_of!`.
    pub(crate) member: Member,
    /// The Rust name, or `f0`, `f1`, ... for tuple fields.
    pub(crate) rust_name: String,
    pub(crate) ty: &'a Type,
    pub(crate) span: Span,
    pub(crate) attrs: ShmAttrs,
    pub(crate) doc: String,
}

impl Field<'_> {
    /// The name used in generated bindings.
    pub(crate) fn shm_name(&self) -> String {
        self.attrs
            .rename
            .as_ref()
            .map_or_else(|| self.rust_name.clone(), syn::LitStr::value)
    }
}

/// The whole input.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) input: &'a DeriveInput,
    pub(crate) shape: Shape,
    pub(crate) repr: Repr,
    pub(crate) attrs: ShmAttrs,
    pub(crate) doc: String,
    pub(crate) fields: Vec<Field<'a>>,
}

impl Input<'_> {
    /// The type name used in generated bindings.
    pub(crate) fn shm_name(&self) -> String {
        self.attrs
            .rename
            .as_ref()
            .map_or_else(|| self.ident.to_string(), syn::LitStr::value)
    }

    /// Whether the type has generic parameters.
    pub(crate) fn is_generic(&self) -> bool {
        !self.input.generics.params.is_empty()
    }
}

/// Builds the model; attribute syntax errors are pushed into `errors`.
pub(crate) fn parse<'a>(input: &'a DeriveInput, errors: &mut Vec<syn::Error>) -> Input<'a> {
    let repr = Repr::from_attrs(&input.attrs, errors);
    let attrs = ShmAttrs::from_attrs(&input.attrs, errors);
    let doc = doc_comment(&input.attrs);
    let (shape, fields) = match &input.data {
        Data::Struct(data) => {
            let fields: Vec<Field<'_>> = match &data.fields {
                Fields::Named(named) => named
                    .named
                    .iter()
                    .map(|f| {
                        let ident = f.ident.clone().unwrap_or_else(|| Ident::new("_", f.span()));
                        let rust_name = ident.to_string();
                        let rust_name = rust_name
                            .strip_prefix("r#")
                            .unwrap_or(&rust_name)
                            .to_owned();
                        field(f, Member::Named(ident), rust_name, errors)
                    })
                    .collect(),
                Fields::Unnamed(unnamed) => unnamed
                    .unnamed
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let index = syn::Index {
                            index: u32::try_from(i).unwrap_or(u32::MAX),
                            span: f.span(),
                        };
                        field(f, Member::Unnamed(index), format!("f{i}"), errors)
                    })
                    .collect(),
                Fields::Unit => Vec::new(),
            };
            if fields.is_empty() {
                (Shape::Empty(input.ident.span()), fields)
            } else {
                (Shape::Struct, fields)
            }
        }
        Data::Enum(data) => (Shape::Enum(data.enum_token.span), Vec::new()),
        Data::Union(data) => (Shape::Union(data.union_token.span), Vec::new()),
    };
    Input {
        ident: &input.ident,
        input,
        shape,
        repr,
        attrs,
        doc,
        fields,
    }
}

fn field<'a>(
    f: &'a syn::Field,
    member: Member,
    rust_name: String,
    errors: &mut Vec<syn::Error>,
) -> Field<'a> {
    Field {
        member,
        rust_name,
        ty: &f.ty,
        span: f.span(),
        attrs: ShmAttrs::from_attrs(&f.attrs, errors),
        doc: doc_comment(&f.attrs),
    }
}
