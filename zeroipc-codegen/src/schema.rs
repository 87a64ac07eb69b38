//! The schema: layout descriptors in a language-neutral, versioned JSON form.
//!
//! ```json
//! {
//!   "format": "zeroipc-schema/1",
//!   "types": [
//!     {
//!       "name": "SensorReading",
//!       "doc": "One sample.",
//!       "size": 16,
//!       "align": 8,
//!       "fields": [
//!         { "name": "temperature", "offset": 0, "type": "f32", "doc": "Degrees Celsius." },
//!         { "name": "history", "offset": 8, "type": { "array": "f32", "len": 2 } }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! A field's `type` is a scalar name (`u8` … `f64`), the name of a struct defined earlier in the
//! list, or `{ "array": TYPE, "len": N }`. Structs come in dependency order. Loading a schema
//! re-validates everything the derive proves at compile time, because a schema file may be
//! written by hand: fields inside the size, in offset order, aligned, not overlapping, covering
//! every byte (explicit padding only), known types, and names valid in Python and C.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroipc::{Layout, LayoutKind, Scalar};

use crate::{Error, SchemaError};

/// The value of the `format` tag this version reads and writes.
pub const FORMAT: &str = "zeroipc-schema/1";

/// A set of struct types, in dependency order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Always [`FORMAT`].
    pub format: String,
    /// The struct types; every struct a field refers to comes before it.
    pub types: Vec<TypeDef>,
}

/// One struct type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeDef {
    /// The name used in Python and C.
    pub name: String,
    /// The doc comment (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub doc: String,
    /// Size in bytes.
    pub size: u64,
    /// Alignment in bytes (1, 2, 4 or 8).
    pub align: u64,
    /// Fields in offset order.
    pub fields: Vec<FieldDef>,
}

/// One field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// The name used in Python and C.
    pub name: String,
    /// Byte offset in the struct.
    pub offset: u64,
    /// The field's type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// The doc comment (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub doc: String,
}

/// A field type: a scalar or struct by name, or a fixed-size array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TypeRef {
    /// A scalar (`"u32"`) or a struct defined earlier (`"Vec3"`).
    Named(String),
    /// `len` elements of `array`.
    Array {
        /// The element type.
        array: Box<TypeRef>,
        /// The number of elements (at least 1).
        len: u64,
    },
}

impl fmt::Display for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(n) => f.write_str(n),
            Self::Array { array, len } => write!(f, "[{array}; {len}]"),
        }
    }
}

/// A resolved field type, for the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// A scalar.
    Scalar(Scalar),
    /// A struct of this schema.
    Struct(&'a TypeDef),
    /// An array: element type and dimensions, outermost first (`[[u16; 3]; 4]` is `[4, 3]`).
    Array(&'a TypeRef, u64),
}

impl Schema {
    /// The schema of `layouts` and every struct they contain, dependencies first, each struct
    /// once, in a deterministic order (depth-first, in the order given and declared).
    ///
    /// # Errors
    ///
    /// [`Error::Schema`] when two different structs share a name, or a layout is not a struct.
    pub fn from_layouts(layouts: &[&'static Layout]) -> Result<Self, Error> {
        let mut types: Vec<TypeDef> = Vec::new();
        let mut seen: BTreeMap<String, &'static Layout> = BTreeMap::new();
        for layout in layouts {
            if !matches!(layout.kind(), LayoutKind::Struct(_)) {
                return Err(Error::schema(
                    None,
                    format!(
                        "`{}` is not a struct; only structs become bindings",
                        layout.type_name()
                    ),
                ));
            }
            collect(layout, &mut types, &mut seen)?;
        }
        Ok(Self {
            format: FORMAT.to_owned(),
            types,
        })
    }

    /// Parses and validates schema JSON; `origin` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`Error::Schema`] naming the file, the line and column where known, the type and field.
    pub fn from_json(text: &str, origin: Option<&Path>) -> Result<Self, Error> {
        let schema: Schema = serde_json::from_str(text).map_err(|e| {
            Error::Schema(Box::new(SchemaError {
                file: origin.map(Path::to_path_buf),
                line: Some(e.line()),
                column: Some(e.column()),
                type_name: None,
                field: None,
                message: e.to_string(),
            }))
        })?;
        schema.validate().map_err(|e| e.locate(text, origin))?;
        Ok(schema)
    }

    /// Reads and validates a schema file.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, otherwise as [`Schema::from_json`].
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, Some(path))
    }

    /// Pretty-printed JSON with a trailing newline (the checked-in form).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Combines schemas; a type that appears in several must be identical in each.
    ///
    /// # Errors
    ///
    /// [`Error::Schema`] when two different types share a name.
    pub fn merge(parts: Vec<Schema>) -> Result<Self, Error> {
        let mut types: Vec<TypeDef> = Vec::new();
        for part in parts {
            for t in part.types {
                match types.iter().find(|u| u.name == t.name) {
                    Some(u) if *u == t => {}
                    Some(_) => {
                        return Err(Error::schema(
                            Some(&t.name),
                            "two different types have this name".to_owned(),
                        ));
                    }
                    None => types.push(t),
                }
            }
        }
        let schema = Self {
            format: FORMAT.to_owned(),
            types,
        };
        schema.validate()?;
        Ok(schema)
    }

    /// The struct named `name`.
    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Resolves a field type against this schema.
    pub fn resolve<'a>(&'a self, ty: &'a TypeRef) -> Option<Resolved<'a>> {
        match ty {
            TypeRef::Named(n) => Scalar::from_rust_name(n)
                .map(Resolved::Scalar)
                .or_else(|| self.get(n).map(Resolved::Struct)),
            TypeRef::Array { array, len } => Some(Resolved::Array(array, *len)),
        }
    }

    /// Size and alignment of a field type, or `None` when it does not resolve.
    pub fn size_align(&self, ty: &TypeRef) -> Option<(u64, u64)> {
        match self.resolve(ty)? {
            Resolved::Scalar(s) => Some((s.size() as u64, s.size() as u64)),
            Resolved::Struct(t) => Some((t.size, t.align)),
            Resolved::Array(elem, len) => {
                let (size, align) = self.size_align(elem)?;
                Some((size.checked_mul(len)?, align))
            }
        }
    }

    /// The innermost element of a (possibly nested) array type and its dimensions, outermost
    /// first.
    pub fn array_dims<'a>(&'a self, ty: &'a TypeRef) -> (&'a TypeRef, Vec<u64>) {
        let mut dims = Vec::new();
        let mut cur = ty;
        while let TypeRef::Array { array, len } = cur {
            dims.push(*len);
            cur = array;
        }
        (cur, dims)
    }

    /// The fingerprint of the type named `name` ([`Layout::fingerprint`]'s algorithm), or `None`
    /// when it is not in the schema.
    pub fn fingerprint_of(&self, name: &str) -> Option<u64> {
        let t = self.get(name)?;
        Some(self.fnv_struct(FNV_OFFSET, t))
    }

    /// The fingerprint of the whole schema: FNV-1a 64 over the fingerprints of its types (each as
    /// 8 little-endian bytes), in order.
    pub fn fingerprint(&self) -> u64 {
        self.types.iter().fold(FNV_OFFSET, |h, t| {
            fnv(h, &self.fnv_struct(FNV_OFFSET, t).to_le_bytes())
        })
    }

    fn fnv_struct(&self, h: u64, t: &TypeDef) -> u64 {
        let mut h = fnv_str(fnv(h, b"T"), &t.name);
        h = fnv(h, &t.size.to_le_bytes());
        h = fnv(h, &t.align.to_le_bytes());
        h = fnv(h, &(t.fields.len() as u64).to_le_bytes());
        for f in &t.fields {
            h = fnv_str(h, &f.name);
            h = fnv(h, &f.offset.to_le_bytes());
            h = self.fnv_type(h, &f.ty);
        }
        h
    }

    fn fnv_type(&self, h: u64, ty: &TypeRef) -> u64 {
        match self.resolve(ty) {
            Some(Resolved::Scalar(s)) => fnv_str(fnv(h, b"S"), s.numpy()),
            Some(Resolved::Struct(t)) => self.fnv_struct(h, t),
            Some(Resolved::Array(elem, len)) => {
                self.fnv_type(fnv(fnv(h, b"A"), &len.to_le_bytes()), elem)
            }
            None => h,
        }
    }

    /// Checks every rule of the module docs.
    ///
    /// # Errors
    ///
    /// [`Error::Schema`] for the first violation, naming the type and field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.format != FORMAT {
            return Err(Error::schema(
                None,
                format!(
                    "unsupported format `{}`; this tool reads `{FORMAT}`",
                    self.format
                ),
            ));
        }
        for (i, t) in self.types.iter().enumerate() {
            let err = |field: Option<&str>, msg: String| {
                Error::Schema(Box::new(SchemaError {
                    file: None,
                    line: None,
                    column: None,
                    type_name: Some(t.name.clone()),
                    field: field.map(str::to_owned),
                    message: msg,
                }))
            };
            if let Some(problem) = zeroipc_names::binding_name_problem(&t.name) {
                return Err(err(None, problem));
            }
            if self.types[..i].iter().any(|u| u.name == t.name) {
                return Err(err(None, "defined twice".into()));
            }
            if Scalar::from_rust_name(&t.name).is_some() {
                return Err(err(None, "a struct may not be named like a scalar".into()));
            }
            if crate::python::PYTHON_GLOBALS.contains(&t.name.as_str()) {
                return Err(err(
                    None,
                    format!(
                        "`{}` would shadow a name the Python module defines or uses",
                        t.name
                    ),
                ));
            }
            if t.size > MAX_SIZE {
                return Err(err(None, format!("size `{}` exceeds `{MAX_SIZE}`", t.size)));
            }
            if !matches!(t.align, 1 | 2 | 4 | 8) {
                return Err(err(
                    None,
                    format!("alignment `{}` is not 1, 2, 4 or 8", t.align),
                ));
            }
            if t.size == 0 || t.size % t.align != 0 {
                return Err(err(
                    None,
                    format!(
                        "size `{}` is not a positive multiple of the alignment `{}`",
                        t.size, t.align
                    ),
                ));
            }
            if t.fields.is_empty() {
                return Err(err(None, "a struct needs at least one field".into()));
            }
            let earlier = Schema {
                format: FORMAT.to_owned(),
                types: self.types[..i].to_vec(),
            };
            let mut end = 0u64;
            let mut max_align = 1u64;
            let mut names: Vec<&str> = Vec::new();
            for f in &t.fields {
                let ferr = |msg: String| err(Some(&f.name), msg);
                if let Some(problem) = zeroipc_names::binding_name_problem(&f.name) {
                    return Err(ferr(problem));
                }
                if names.contains(&f.name.as_str()) {
                    return Err(ferr("two fields have this name".into()));
                }
                if let Some(u) = self.types.iter().find(|u| u.name == f.name) {
                    return Err(ferr(format!(
                        "the field has the name of type `{}`, which C++ rejects",
                        u.name
                    )));
                }
                names.push(&f.name);
                check_arrays(&f.ty).map_err(&ferr)?;
                let Some((size, align)) = earlier.size_align(&f.ty) else {
                    return Err(ferr(format!(
                        "unknown type `{}`: use a scalar (`u8` … `f64`), an array, or a struct defined earlier in the list",
                        f.ty
                    )));
                };
                if f.offset % align != 0 {
                    return Err(ferr(format!(
                        "offset `{}` is not a multiple of the field's alignment `{align}`",
                        f.offset
                    )));
                }
                if f.offset < end {
                    return Err(ferr(format!(
                        "offset `{}` overlaps the previous field, which ends at `{end}`",
                        f.offset
                    )));
                }
                if f.offset > end {
                    return Err(ferr(format!(
                        "{} byte(s) of undeclared padding before this field; declare them as a `_pad` field of type `{{\"array\": \"u8\", \"len\": {}}}`",
                        f.offset - end,
                        f.offset - end
                    )));
                }
                end = f
                    .offset
                    .checked_add(size)
                    .ok_or_else(|| ferr("the field's end overflows".into()))?;
                max_align = max_align.max(align);
            }
            if end != t.size {
                return Err(err(
                    None,
                    if end > t.size {
                        format!("fields end at `{end}`, past the size `{}`", t.size)
                    } else {
                        format!(
                            "{} byte(s) of undeclared padding at the end; declare them as a `_pad` field",
                            t.size - end
                        )
                    },
                ));
            }
            if max_align != t.align {
                return Err(err(
                    None,
                    format!(
                        "alignment `{}` differs from the largest field alignment `{max_align}`",
                        t.align
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The largest array length and struct size accepted: NumPy dimensions are C `int`s.
const MAX_SIZE: u64 = i32::MAX as u64;

fn check_arrays(ty: &TypeRef) -> Result<(), String> {
    match ty {
        TypeRef::Array { len: 0, .. } => Err("arrays need at least one element".into()),
        TypeRef::Array { len, .. } if *len > MAX_SIZE => {
            Err(format!("array length `{len}` exceeds `{MAX_SIZE}`"))
        }
        TypeRef::Array { array, .. } => check_arrays(array),
        TypeRef::Named(_) => Ok(()),
    }
}

fn collect(
    layout: &'static Layout,
    types: &mut Vec<TypeDef>,
    seen: &mut BTreeMap<String, &'static Layout>,
) -> Result<(), Error> {
    match layout.kind() {
        LayoutKind::Scalar(_) => Ok(()),
        LayoutKind::Array { elem, .. } => collect(elem, types, seen),
        LayoutKind::Struct(st) => {
            if let Some(&other) = seen.get(st.name()) {
                if other == layout {
                    return Ok(());
                }
                return Err(Error::schema(
                    Some(st.name()),
                    "two different Rust types use this name; rename one with `#[shm(rename = \"...\")]`".into(),
                ));
            }
            seen.insert(st.name().to_owned(), layout);
            for f in st.fields() {
                collect(f.layout(), types, seen)?;
            }
            types.push(TypeDef {
                name: st.name().to_owned(),
                doc: st.doc().to_owned(),
                size: layout.size() as u64,
                align: layout.align() as u64,
                fields: st
                    .fields()
                    .iter()
                    .map(|f| FieldDef {
                        name: f.name().to_owned(),
                        offset: f.offset() as u64,
                        ty: type_ref(f.layout()),
                        doc: f.doc().to_owned(),
                    })
                    .collect(),
            });
            Ok(())
        }
        _ => Err(Error::schema(
            None,
            format!("unsupported layout `{}`", layout.type_name()),
        )),
    }
}

fn type_ref(layout: &Layout) -> TypeRef {
    match layout.kind() {
        LayoutKind::Array { elem, len } => TypeRef::Array {
            array: Box::new(type_ref(elem)),
            len: len as u64,
        },
        LayoutKind::Scalar(s) => TypeRef::Named(s.rust_name().to_owned()),
        _ => TypeRef::Named(layout.type_name()),
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn fnv_str(h: u64, s: &str) -> u64 {
    fnv(fnv(h, &(s.len() as u64).to_le_bytes()), s.as_bytes())
}

impl Error {
    /// Adds the file and, by searching the text for the type (and field) name, a line and column.
    fn locate(self, text: &str, origin: Option<&Path>) -> Self {
        let Error::Schema(mut e) = self else {
            return self;
        };
        let mut at = None;
        if let Some(t) = &e.type_name {
            let needle = format!("\"{t}\"");
            if let Some(type_pos) = text.find(&needle) {
                at = Some(type_pos);
                if let Some(f) = &e.field {
                    let needle = format!("\"{f}\"");
                    if let Some(rel) = text[type_pos..].find(&needle) {
                        at = Some(type_pos + rel);
                    }
                }
            }
        }
        if let Some(pos) = at {
            let before = &text[..pos];
            e.line = Some(before.matches('\n').count() + 1);
            e.column = Some(pos - before.rfind('\n').map_or(0, |p| p + 1) + 1);
        }
        e.file = origin.map(PathBuf::from);
        Error::Schema(e)
    }
}
