//! Layouts known only at run time, and the values they decode.
//!
//! A [`DynLayout`] is the owned counterpart of a [`Layout`]: the same shapes (scalar, array,
//! struct), built at run time from a segment's stored description, a schema file, a NumPy
//! dtype string or a Rust type. It encodes to (and decodes from) the byte string its
//! [fingerprint](Layout::fingerprint) is computed over, so a stored description and the type a
//! process compiled agree exactly when their fingerprints do. A [`Value`] is one element
//! decoded by field name.
//!
//! Everything here treats its input as untrusted: a description read from a segment or a
//! file is checked (sizes, offsets inside the struct, no overlap, bounded nesting and length)
//! before it is used, and every failure is a [`LayoutError`] saying what and where.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fmt;

use crate::layout::{Layout, LayoutKind, Scalar, ShmLayout};

/// The deepest nesting of arrays and structs a layout may have.
pub const MAX_LAYOUT_DEPTH: usize = 32;
/// The longest name (of a struct or field) a layout may have, in bytes.
pub const MAX_LAYOUT_NAME_LEN: usize = 255;
/// The most fields a struct may have.
pub const MAX_LAYOUT_FIELDS: usize = 4096;
/// The largest element a layout may describe, in bytes (the format's element sizes are `u32`).
pub const MAX_LAYOUT_SIZE: usize = u32::MAX as usize;
/// The most nodes (scalars, arrays and structs, counting each use of a type) a layout may
/// have: what bounds the memory and time of building, encoding and comparing one, whatever
/// the schema or dtype it comes from.
pub const MAX_LAYOUT_NODES: usize = 1 << 16;
/// The most memory [`DynLayout::read`] may take to decode one element into a [`Value`]; a
/// larger element (a long array of records, say) is read as bytes instead.
pub const MAX_DECODED_BYTES: u64 = 64 << 20;

/// Why a layout could not be built, decoded or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {reason}")]
pub struct LayoutError {
    /// Where: a field path (`reading.wind[2]`), a byte position, a dtype.
    pub context: String,
    /// What is wrong.
    pub reason: String,
}

fn err<T>(context: impl Into<String>, reason: impl Into<String>) -> Result<T, LayoutError> {
    Err(LayoutError {
        context: context.into(),
        reason: reason.into(),
    })
}

/// A layout known at run time: size, alignment and shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DynLayout {
    size: usize,
    align: usize,
    shape: Shape,
    /// Nesting depth: 1 for a scalar.
    depth: usize,
    /// Nodes of the tree, each use of a type counted.
    nodes: usize,
    /// About how many bytes a decoded [`Value`] of it takes.
    cost: u64,
}

/// The shape of a [`DynLayout`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Shape {
    /// A fixed-width scalar.
    Scalar(Scalar),
    /// `len` consecutive elements of `elem`.
    Array {
        /// The element.
        elem: Box<DynLayout>,
        /// The number of elements (at least 1).
        len: usize,
    },
    /// A record of named fields.
    Struct {
        /// The type name.
        name: String,
        /// The fields, in the order given (for `repr(C)` types, offset order).
        fields: Vec<DynField>,
    },
}

/// One field of a struct [`DynLayout`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DynField {
    /// The field name.
    pub name: String,
    /// Byte offset from the start of the struct.
    pub offset: usize,
    /// The field's type.
    pub layout: DynLayout,
}

impl DynLayout {
    /// The layout of the Rust type `T`.
    pub fn of<T: ShmLayout>() -> Self {
        Self::from_static(T::LAYOUT)
    }

    /// The owned copy of a static descriptor.
    pub fn from_static(layout: &Layout) -> Self {
        let shape = match layout.kind() {
            LayoutKind::Scalar(s) => Shape::Scalar(s),
            LayoutKind::Array { elem, len } => Shape::Array {
                elem: Box::new(Self::from_static(elem)),
                len,
            },
            LayoutKind::Struct(st) => Shape::Struct {
                name: st.name().to_owned(),
                fields: st
                    .fields()
                    .iter()
                    .map(|f| DynField {
                        name: f.name().to_owned(),
                        offset: f.offset(),
                        layout: Self::from_static(f.layout()),
                    })
                    .collect(),
            },
        };
        Self::measured(layout.size(), layout.align(), shape)
    }

    /// A layout of `shape`, with its depth, node count and decoding cost computed from its
    /// parts (saturating: the constructors check the limits).
    fn measured(size: usize, align: usize, shape: Shape) -> Self {
        /// What a `Value` itself takes, without what it owns.
        const VALUE: u64 = 32;
        let (depth, nodes, cost) = match &shape {
            Shape::Scalar(_) => (1, 1, VALUE),
            Shape::Array { elem, len } => (
                elem.depth.saturating_add(1),
                elem.nodes.saturating_add(1),
                (*len as u64)
                    .saturating_mul(elem.cost)
                    .saturating_add(VALUE),
            ),
            Shape::Struct { fields, .. } => {
                fields.iter().fold((1usize, 1usize, VALUE), |(d, n, c), f| {
                    (
                        d.max(f.layout.depth.saturating_add(1)),
                        n.saturating_add(f.layout.nodes),
                        c.saturating_add(VALUE)
                            .saturating_add(f.name.len() as u64)
                            .saturating_add(f.layout.cost),
                    )
                })
            }
        };
        Self {
            size,
            align,
            shape,
            depth,
            nodes,
            cost,
        }
    }

    /// Refuses a layout deeper than [`MAX_LAYOUT_DEPTH`] or with more than
    /// [`MAX_LAYOUT_NODES`] nodes.
    fn bounded(self) -> Result<Self, LayoutError> {
        if self.depth > MAX_LAYOUT_DEPTH {
            return err(
                self.type_name(),
                format!("nested deeper than {MAX_LAYOUT_DEPTH} levels"),
            );
        }
        if self.nodes > MAX_LAYOUT_NODES {
            return err(
                self.type_name(),
                format!("more than {MAX_LAYOUT_NODES} scalars, arrays and structs"),
            );
        }
        Ok(self)
    }

    /// The layout of one scalar.
    pub fn scalar(scalar: Scalar) -> Self {
        Self::measured(scalar.size(), scalar.size(), Shape::Scalar(scalar))
    }

    /// The layout of `[elem; len]`.
    ///
    /// # Errors
    ///
    /// A zero `len`, a total size above [`MAX_LAYOUT_SIZE`], or a layout deeper than
    /// [`MAX_LAYOUT_DEPTH`] or larger than [`MAX_LAYOUT_NODES`].
    pub fn array(elem: DynLayout, len: usize) -> Result<Self, LayoutError> {
        if len == 0 {
            return err(
                format!("[{}; 0]", elem.type_name()),
                "an array needs a length of at least 1",
            );
        }
        let Some(size) = elem.size.checked_mul(len).filter(|&s| s <= MAX_LAYOUT_SIZE) else {
            return err(
                format!("[{}; {len}]", elem.type_name()),
                format!("the array is larger than {MAX_LAYOUT_SIZE} bytes"),
            );
        };
        let align = elem.align;
        let shape = Shape::Array {
            elem: Box::new(elem),
            len,
        };
        Self::measured(size, align, shape).bounded()
    }

    /// The layout of a record `name` of `size` bytes aligned to `align`, with `fields`.
    ///
    /// The fields may come in any order and leave gaps (NumPy records may), but each must lie
    /// inside the record, none may overlap another, and their names must be distinct.
    ///
    /// # Errors
    ///
    /// An empty or overlong name, an alignment other than 1, 2, 4 or 8, a size of 0, above
    /// [`MAX_LAYOUT_SIZE`] or not a multiple of the alignment, more than
    /// [`MAX_LAYOUT_FIELDS`] fields, a field as described above, or a layout deeper than
    /// [`MAX_LAYOUT_DEPTH`] or larger than [`MAX_LAYOUT_NODES`].
    pub fn structure(
        name: &str,
        size: usize,
        align: usize,
        fields: Vec<DynField>,
    ) -> Result<Self, LayoutError> {
        check_name(name, name)?;
        if ![1, 2, 4, 8].contains(&align) {
            return err(name, format!("alignment `{align}` is not 1, 2, 4 or 8"));
        }
        if size == 0 || size > MAX_LAYOUT_SIZE || size.checked_rem(align) != Some(0) {
            return err(
                name,
                format!(
                    "size `{size}` is not a positive multiple of its alignment `{align}` up to {MAX_LAYOUT_SIZE}"
                ),
            );
        }
        if fields.is_empty() {
            return err(name, "a struct needs at least one field");
        }
        if fields.len() > MAX_LAYOUT_FIELDS {
            return err(name, format!("more than {MAX_LAYOUT_FIELDS} fields"));
        }
        let mut spans: Vec<(usize, usize, &str)> = Vec::with_capacity(fields.len());
        for f in &fields {
            let at = format!("{name}.{}", f.name);
            check_name(&at, &f.name)?;
            let Some(end) = f.offset.checked_add(f.layout.size).filter(|&e| e <= size) else {
                return err(
                    at,
                    format!(
                        "the field ({} bytes at offset {}) ends past the struct's {size} bytes",
                        f.layout.size, f.offset
                    ),
                );
            };
            spans.push((f.offset, end, &f.name));
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            if let [(_, end, a), (start, _, b)] = pair
                && start < end
            {
                return err(format!("{name}.{b}"), format!("the field overlaps `{a}`"));
            }
        }
        let mut names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if let Some(dup) = names.windows(2).find_map(|w| match w {
            [a, b] if a == b => Some(*a),
            _ => None,
        }) {
            return err(format!("{name}.{dup}"), "two fields have this name");
        }
        let shape = Shape::Struct {
            name: name.to_owned(),
            fields,
        };
        Self::measured(size, align, shape).bounded()
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Alignment in bytes.
    pub fn align(&self) -> usize {
        self.align
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// A short type name: `u32`, `[f32; 3]`, `SensorReading`.
    pub fn type_name(&self) -> String {
        match &self.shape {
            Shape::Scalar(s) => s.rust_name().to_owned(),
            Shape::Array { elem, len } => format!("[{}; {len}]", elem.type_name()),
            Shape::Struct { name, .. } => name.clone(),
        }
    }

    /// The scalar every element of this layout is made of, when it is one scalar or an array
    /// of them (nested to any depth): what numeric summaries can be taken over.
    pub fn leaf_scalar(&self) -> Option<Scalar> {
        match &self.shape {
            Shape::Scalar(s) => Some(*s),
            Shape::Array { elem, .. } => elem.leaf_scalar(),
            Shape::Struct { .. } => None,
        }
    }

    /// The widest unit (8, 4, 2 or 1 bytes) this layout's elements are copied in: that of its
    /// narrowest scalar, as for typed elements, narrowed until it divides the size (a packed
    /// NumPy record can have any size).
    pub(crate) fn copy_unit(&self) -> usize {
        let mut unit = self.narrowest();
        while unit > 1 && self.size.checked_rem(unit) != Some(0) {
            unit = unit.checked_div(2).unwrap_or(1);
        }
        unit
    }

    fn narrowest(&self) -> usize {
        match &self.shape {
            Shape::Scalar(s) => s.size(),
            Shape::Array { elem, .. } => elem.narrowest(),
            Shape::Struct { fields, .. } => fields
                .iter()
                .map(|f| f.layout.narrowest())
                .min()
                .unwrap_or(1),
        }
    }

    /// Whether [`read`](Self::read) can decode elements of this layout: not when a value would
    /// take more than [`MAX_DECODED_BYTES`].
    pub(crate) fn decodable(&self) -> Result<(), LayoutError> {
        if self.cost > MAX_DECODED_BYTES {
            return err(
                self.type_name(),
                format!(
                    "decoding one element would take about {} bytes, more than {MAX_DECODED_BYTES}: \
                     read its bytes instead",
                    self.cost
                ),
            );
        }
        Ok(())
    }

    /// The byte encoding the fingerprint is computed over (see [`Layout::fingerprint`]); also
    /// the form a segment stores descriptions in (FORMAT.md appendix D).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        fn num(out: &mut Vec<u8>, n: usize) {
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
        fn text(out: &mut Vec<u8>, s: &str) {
            num(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        match &self.shape {
            Shape::Scalar(s) => {
                out.push(b'S');
                text(out, s.numpy());
            }
            Shape::Array { elem, len } => {
                out.push(b'A');
                num(out, *len);
                elem.encode_into(out);
            }
            Shape::Struct { name, fields } => {
                out.push(b'T');
                text(out, name);
                num(out, self.size);
                num(out, self.align);
                num(out, fields.len());
                for f in fields {
                    text(out, &f.name);
                    num(out, f.offset);
                    f.layout.encode_into(out);
                }
            }
        }
    }

    /// Decodes an [`encode`](Self::encode)d layout, checking everything
    /// [`structure`](Self::structure) and [`array`](Self::array) check, and that nothing
    /// follows it.
    ///
    /// # Errors
    ///
    /// Truncated or trailing bytes, an unknown tag or scalar, nesting deeper than
    /// [`MAX_LAYOUT_DEPTH`], a size that disagrees with the fields, and the errors of
    /// `structure` and `array`; the context is the byte position.
    pub fn decode(bytes: &[u8]) -> Result<Self, LayoutError> {
        let mut reader = Reader { bytes, at: 0 };
        let layout = reader.layout(0)?;
        if reader.at != bytes.len() {
            return err(
                format!("byte {}", reader.at),
                format!(
                    "{} bytes follow the layout",
                    bytes.len().saturating_sub(reader.at)
                ),
            );
        }
        Ok(layout)
    }

    /// The fingerprint: FNV-1a 64 of [`encode`](Self::encode), equal to
    /// [`Layout::fingerprint`] of the same type.
    pub fn fingerprint(&self) -> u64 {
        fnv1a(&self.encode())
    }

    /// The first difference between this layout (the expected one) and `found`, as a field
    /// path and what differs, or `None` when they describe the same bytes. With
    /// `names == false`, struct type names are not compared (a NumPy dtype has none); field
    /// names always are.
    pub fn first_difference(&self, found: &DynLayout, names: bool) -> Option<(String, String)> {
        self.diff(found, names, String::new())
    }

    fn diff(&self, found: &DynLayout, names: bool, path: String) -> Option<(String, String)> {
        let here = |p: &str| {
            if p.is_empty() {
                "the element".to_owned()
            } else {
                p.to_owned()
            }
        };
        match (&self.shape, &found.shape) {
            (Shape::Scalar(a), Shape::Scalar(b)) if a == b => None,
            (Shape::Array { elem: a, len: la }, Shape::Array { elem: b, len: lb }) => {
                if la != lb {
                    return Some((
                        here(&path),
                        format!("array length `{la}` here, `{lb}` stored"),
                    ));
                }
                a.diff(b, names, format!("{path}[]"))
            }
            (
                Shape::Struct {
                    name: na,
                    fields: fa,
                },
                Shape::Struct {
                    name: nb,
                    fields: fb,
                },
            ) => {
                if names && na != nb {
                    return Some((here(&path), format!("type `{na}` here, `{nb}` stored")));
                }
                let join = |f: &str| {
                    if path.is_empty() {
                        f.to_owned()
                    } else {
                        format!("{path}.{f}")
                    }
                };
                for (i, a) in fa.iter().enumerate() {
                    let Some(b) = fb.get(i) else {
                        return Some((join(&a.name), "the stored type has no such field".into()));
                    };
                    if a.name != b.name {
                        let moved = fb.iter().find(|f| f.name == a.name);
                        let what = match moved {
                            Some(m) => format!(
                                "field {i} is `{}` here, `{}` stored; `{}` is stored at offset {} (here {})",
                                a.name, b.name, a.name, m.offset, a.offset
                            ),
                            None => format!(
                                "field {i} is `{}` here, `{}` stored (the stored type has no `{}`)",
                                a.name, b.name, a.name
                            ),
                        };
                        return Some((join(&a.name), what));
                    }
                    if a.offset != b.offset {
                        return Some((
                            join(&a.name),
                            format!("offset {} here, {} stored", a.offset, b.offset),
                        ));
                    }
                    if let Some(d) = a.layout.diff(&b.layout, names, join(&a.name)) {
                        return Some(d);
                    }
                }
                if let Some(extra) = fb.get(fa.len()) {
                    return Some((
                        join(&extra.name),
                        "the stored type has this field too".into(),
                    ));
                }
                if self.size != found.size || self.align != found.align {
                    return Some((
                        here(&path),
                        format!(
                            "{} bytes aligned to {} here, {} aligned to {} stored",
                            self.size, self.align, found.size, found.align
                        ),
                    ));
                }
                None
            }
            _ => Some((
                here(&path),
                format!(
                    "`{}` here, `{}` stored",
                    self.type_name(),
                    found.type_name()
                ),
            )),
        }
    }

    /// Decodes one element from its `size()` bytes.
    ///
    /// # Errors
    ///
    /// `bytes` of another length, or a layout whose decoded value would take more than
    /// [`MAX_DECODED_BYTES`].
    pub fn read(&self, bytes: &[u8]) -> Result<Value, LayoutError> {
        self.decodable()?;
        if bytes.len() != self.size {
            return err(
                self.type_name(),
                format!(
                    "{} bytes given for a {}-byte element",
                    bytes.len(),
                    self.size
                ),
            );
        }
        Ok(self.read_at(bytes))
    }

    fn read_at(&self, bytes: &[u8]) -> Value {
        match &self.shape {
            Shape::Scalar(s) => scalar_value(*s, bytes),
            Shape::Array { elem, len } => Value::Array(
                (0..*len)
                    .map(|i| {
                        let start = i.saturating_mul(elem.size);
                        elem.read_at(bytes.get(start..).unwrap_or_default())
                    })
                    .collect(),
            ),
            Shape::Struct { fields, .. } => Value::Struct(
                fields
                    .iter()
                    .map(|f| {
                        let field = bytes.get(f.offset..).unwrap_or_default();
                        (f.name.clone(), f.layout.read_at(field))
                    })
                    .collect(),
            ),
        }
    }

    /// Encodes `value` into `out`, an element's `size()` bytes. A struct value may name only
    /// some fields: the others keep the bytes `out` has.
    ///
    /// # Errors
    ///
    /// `out` of another length, a value of another shape, an unknown field, an array of
    /// another length, or an integer out of its scalar's range (the context is the field path).
    pub fn write(&self, value: &Value, out: &mut [u8]) -> Result<(), LayoutError> {
        if out.len() != self.size {
            return err(
                self.type_name(),
                format!("{} bytes given for a {}-byte element", out.len(), self.size),
            );
        }
        self.write_at(value, out, "")
    }

    fn write_at(&self, value: &Value, out: &mut [u8], path: &str) -> Result<(), LayoutError> {
        let here = || {
            if path.is_empty() {
                self.type_name()
            } else {
                path.to_owned()
            }
        };
        match (&self.shape, value) {
            (Shape::Scalar(s), v) => {
                let encoded = scalar_bytes(*s, v).map_err(|reason| LayoutError {
                    context: here(),
                    reason,
                })?;
                let dst = out.get_mut(..s.size()).ok_or_else(|| LayoutError {
                    context: here(),
                    reason: "outside the element".into(),
                })?;
                dst.copy_from_slice(encoded.get(..s.size()).unwrap_or_default());
                Ok(())
            }
            (Shape::Array { elem, len }, Value::Array(items)) => {
                if items.len() != *len {
                    return err(
                        here(),
                        format!("{} values for an array of {len}", items.len()),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let start = i.saturating_mul(elem.size);
                    let dst = out.get_mut(start..).unwrap_or_default();
                    let dst = dst.get_mut(..elem.size).unwrap_or_default();
                    elem.write_at(item, dst, &format!("{}[{i}]", here()))?;
                }
                Ok(())
            }
            (Shape::Struct { fields, .. }, Value::Struct(given)) => {
                for (name, v) in given {
                    let Some(f) = fields.iter().find(|f| &f.name == name) else {
                        return err(format!("{}.{name}", here()), "the type has no such field");
                    };
                    let dst = out.get_mut(f.offset..).unwrap_or_default();
                    let dst = dst.get_mut(..f.layout.size).unwrap_or_default();
                    let at = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    f.layout.write_at(v, dst, &at)?;
                }
                Ok(())
            }
            (_, v) => err(
                here(),
                format!("a {} given for a `{}`", v.what(), self.type_name()),
            ),
        }
    }

    /// The layout a NumPy dtype describes, in the forms `numpy.dtype` accepts and prints
    /// (Python or JSON syntax):
    ///
    /// - a scalar: `"<u2"`, `"u2"`, `"|u1"`, `"=f8"`, `"uint16"`, `"float64"`, ...;
    /// - a record as a `descr` list of `(name, dtype)` or `(name, dtype, shape)`, packed in
    ///   order: `[('temperature', '<f4'), ('wind', '<f4', (3,))]`; an unnamed `'|V4'` entry is
    ///   padding;
    /// - a record with explicit offsets:
    ///   `{'names': [...], 'formats': [...], 'offsets': [...], 'itemsize': 16}`.
    ///
    /// Records nest (a format may itself be a record). A record is aligned to the largest
    /// alignment of its fields when every field sits at a multiple of its own and the size is
    /// a multiple of it (NumPy's C layout), to 1 otherwise. Records are named `record`.
    ///
    /// # Errors
    ///
    /// Syntax errors, big-endian or unknown codes (`>i4`, `c16`, `O`), and what
    /// [`structure`](Self::structure) rejects.
    pub fn from_dtype(dtype: &str) -> Result<Self, LayoutError> {
        let text = dtype.trim();
        // A bare code (`<u2`, `float64`) is what `str(dtype)` prints for a scalar.
        let lit = if text.starts_with(['[', '(', '{', '\'', '"']) {
            Lit::parse(text)?
        } else {
            Lit::Str(text.to_owned())
        };
        dtype_layout(&lit, 0)
    }

    /// The struct `type_name` of a zeroipc schema (the JSON files of `schemas/`, format
    /// `zeroipc-schema/1`; see `zeroipc-codegen`), with the structs it uses.
    ///
    /// # Errors
    ///
    /// Invalid JSON, another format, no type of that name, a field type that is neither a
    /// scalar, an array nor a struct defined earlier in the file, and what
    /// [`structure`](Self::structure) rejects.
    pub fn from_schema(schema: &str, type_name: &str) -> Result<Self, LayoutError> {
        let lit = Lit::parse(schema)?;
        let format = lit.get("format").and_then(Lit::as_str);
        if format != Some("zeroipc-schema/1") {
            return err(
                "schema",
                "not a `zeroipc-schema/1` file (its `format` differs)",
            );
        }
        let Some(Lit::List(types)) = lit.get("types") else {
            return err("schema", "no `types` list");
        };
        let mut known: Vec<(String, DynLayout)> = Vec::new();
        let mut built = 0usize;
        for t in types {
            let name = t
                .get("name")
                .and_then(Lit::as_str)
                .unwrap_or_default()
                .to_owned();
            let at = |what: &str| format!("schema type `{name}`{what}");
            let size = t
                .get("size")
                .and_then(Lit::as_usize)
                .ok_or_else(|| LayoutError {
                    context: at(""),
                    reason: "no `size`".into(),
                })?;
            let align = t
                .get("align")
                .and_then(Lit::as_usize)
                .ok_or_else(|| LayoutError {
                    context: at(""),
                    reason: "no `align`".into(),
                })?;
            let Some(Lit::List(fields)) = t.get("fields") else {
                return err(at(""), "no `fields` list");
            };
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let fname = f
                    .get("name")
                    .and_then(Lit::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let ctx = at(&format!(".{fname}"));
                let offset =
                    f.get("offset")
                        .and_then(Lit::as_usize)
                        .ok_or_else(|| LayoutError {
                            context: ctx.clone(),
                            reason: "no `offset`".into(),
                        })?;
                let ty = f.get("type").ok_or_else(|| LayoutError {
                    context: ctx.clone(),
                    reason: "no `type`".into(),
                })?;
                let layout = schema_type(ty, &known, &ctx, 0)?;
                out.push(DynField {
                    name: fname,
                    offset,
                    layout,
                });
            }
            let layout = DynLayout::structure(&name, size, align, out)?;
            if name == type_name {
                return Ok(layout);
            }
            // Types used by later ones are copied into them: bound the copies of all of them.
            built = built.saturating_add(layout.nodes);
            if built > MAX_LAYOUT_NODES.saturating_mul(4) {
                return err(
                    at(""),
                    format!(
                        "the types before it have more than {} nodes",
                        MAX_LAYOUT_NODES * 4
                    ),
                );
            }
            known.push((name, layout));
        }
        err("schema", format!("no type named `{type_name}`"))
    }

    /// The NumPy dtype of this layout, as Python source (`'<u4'`, or a dict of names,
    /// formats, offsets and itemsize for a struct).
    pub fn numpy_dtype(&self) -> String {
        match &self.shape {
            Shape::Scalar(s) => format!("'{}'", s.numpy()),
            Shape::Array { elem, len } => format!("({}, ({len},))", elem.numpy_dtype()),
            Shape::Struct { fields, .. } => {
                let names: Vec<String> = fields.iter().map(|f| format!("'{}'", f.name)).collect();
                let formats: Vec<String> = fields.iter().map(|f| f.layout.numpy_dtype()).collect();
                let offsets: Vec<String> = fields.iter().map(|f| f.offset.to_string()).collect();
                format!(
                    "{{'names': [{}], 'formats': [{}], 'offsets': [{}], 'itemsize': {}}}",
                    names.join(", "),
                    formats.join(", "),
                    offsets.join(", "),
                    self.size
                )
            }
        }
    }
}

impl fmt::Display for DynLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.type_name())
    }
}

fn check_name(context: &str, name: &str) -> Result<(), LayoutError> {
    if name.is_empty() || name.len() > MAX_LAYOUT_NAME_LEN {
        return err(
            context,
            format!("a name must have 1 to {MAX_LAYOUT_NAME_LEN} bytes"),
        );
    }
    if name.chars().any(char::is_control) {
        return err(context, "a name may not contain control characters");
    }
    Ok(())
}

/// FNV-1a 64.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, LayoutError> {
        err(format!("byte {}", self.at), reason)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], LayoutError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return self.fail(format!("truncated: {n} more bytes needed"));
        };
        let out = self.bytes.get(self.at..end).unwrap_or_default();
        self.at = end;
        Ok(out)
    }

    fn num(&mut self) -> Result<usize, LayoutError> {
        let raw = self.take(8)?;
        let n = u64::from_le_bytes(raw.try_into().unwrap_or([0xff; 8]));
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_LAYOUT_SIZE)
            .map_or_else(|| self.fail(format!("`{n}` is out of range")), Ok)
    }

    fn text(&mut self) -> Result<String, LayoutError> {
        let len = self.num()?;
        if len > MAX_LAYOUT_NAME_LEN {
            return self.fail(format!(
                "a name of {len} bytes (at most {MAX_LAYOUT_NAME_LEN})"
            ));
        }
        let raw = self.take(len)?.to_vec();
        String::from_utf8(raw).map_or_else(|_| self.fail("a name is not UTF-8"), Ok)
    }

    fn layout(&mut self, depth: usize) -> Result<DynLayout, LayoutError> {
        if depth > MAX_LAYOUT_DEPTH {
            return self.fail(format!("nested deeper than {MAX_LAYOUT_DEPTH}"));
        }
        let at = self.at;
        let tag = self.take(1)?.first().copied().unwrap_or_default();
        let deeper = depth.saturating_add(1);
        match tag {
            b'S' => {
                let code = self.text()?;
                match Scalar::ALL.into_iter().find(|s| s.numpy() == code) {
                    Some(s) => Ok(DynLayout::scalar(s)),
                    None => err(format!("byte {at}"), format!("unknown scalar `{code}`")),
                }
            }
            b'A' => {
                let len = self.num()?;
                let elem = self.layout(deeper)?;
                DynLayout::array(elem, len).map_err(|e| LayoutError {
                    context: format!("byte {at}"),
                    reason: e.to_string(),
                })
            }
            b'T' => {
                let name = self.text()?;
                let size = self.num()?;
                let align = self.num()?;
                let count = self.num()?;
                if count > MAX_LAYOUT_FIELDS {
                    return self.fail(format!("{count} fields (at most {MAX_LAYOUT_FIELDS})"));
                }
                // Every field takes at least 18 bytes: no count can claim more than remain.
                if count > self.bytes.len().saturating_sub(self.at) / 18 {
                    return self.fail(format!("{count} fields cannot fit in the bytes left"));
                }
                let mut fields = Vec::with_capacity(count);
                for _ in 0..count {
                    let name = self.text()?;
                    let offset = self.num()?;
                    let layout = self.layout(deeper)?;
                    fields.push(DynField {
                        name,
                        offset,
                        layout,
                    });
                }
                DynLayout::structure(&name, size, align, fields).map_err(|e| LayoutError {
                    context: format!("byte {at}"),
                    reason: e.to_string(),
                })
            }
            other => err(format!("byte {at}"), format!("unknown tag `{other:#04x}`")),
        }
    }
}

/// One element, or part of one, decoded by a [`DynLayout`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// An unsigned integer (`u8` … `u64`).
    Unsigned(u64),
    /// A signed integer (`i8` … `i64`).
    Signed(i64),
    /// A float (`f32`, widened exactly, or `f64`).
    Float(f64),
    /// The elements of an array.
    Array(Vec<Value>),
    /// The fields of a struct, in layout order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// The field `name` of a struct value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as an `f64`, for numeric scalars (integers above 2^53 round).
    #[allow(clippy::cast_precision_loss)] // documented: a summary, not an exact value
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Unsigned(u) => Some(u as f64),
            Value::Signed(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Value::Unsigned(_) | Value::Signed(_) => "integer",
            Value::Float(_) => "float",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
        }
    }

    /// Writes the value as JSON: numbers, arrays, objects by field name; a float that JSON
    /// cannot hold (NaN, ±inf) as the string `"NaN"`, `"inf"` or `"-inf"`.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Value::Unsigned(u) => {
                let _ = write!(out, "{u}");
            }
            Value::Signed(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f:?}");
            }
            Value::Float(f) if f.is_nan() => out.push_str("\"NaN\""),
            Value::Float(f) if *f > 0.0 => out.push_str("\"inf\""),
            Value::Float(_) => out.push_str("\"-inf\""),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Struct(fields) => {
                out.push('{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, name);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// Parses a value from JSON (or Python literal syntax): numbers, lists, and objects by
    /// field name, as [`write_json`](Self::write_json) writes them.
    ///
    /// # Errors
    ///
    /// Syntax errors, and strings other than `"NaN"`, `"inf"`, `"-inf"`.
    pub fn parse(text: &str) -> Result<Value, LayoutError> {
        Lit::parse(text)?.to_value()
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_json(&mut out);
        f.write_str(&out)
    }
}

/// Writes `s` as a JSON string.
pub(crate) fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn scalar_value(s: Scalar, bytes: &[u8]) -> Value {
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        b.get(..N).and_then(|b| b.try_into().ok()).unwrap_or([0; N])
    }
    match s {
        Scalar::U8 => Value::Unsigned(u64::from(arr::<1>(bytes)[0])),
        Scalar::I8 => Value::Signed(i64::from(i8::from_le_bytes(arr(bytes)))),
        Scalar::U16 => Value::Unsigned(u64::from(u16::from_le_bytes(arr(bytes)))),
        Scalar::I16 => Value::Signed(i64::from(i16::from_le_bytes(arr(bytes)))),
        Scalar::U32 => Value::Unsigned(u64::from(u32::from_le_bytes(arr(bytes)))),
        Scalar::I32 => Value::Signed(i64::from(i32::from_le_bytes(arr(bytes)))),
        Scalar::U64 => Value::Unsigned(u64::from_le_bytes(arr(bytes))),
        Scalar::I64 => Value::Signed(i64::from_le_bytes(arr(bytes))),
        Scalar::F32 => Value::Float(f64::from(f32::from_le_bytes(arr(bytes)))),
        Scalar::F64 => Value::Float(f64::from_le_bytes(arr(bytes))),
        #[allow(unreachable_patterns)] // `Scalar` is non-exhaustive for other crates only
        _ => Value::Unsigned(0),
    }
}

#[allow(clippy::cast_possible_truncation)] // f64 to f32 is the documented narrowing
fn scalar_bytes(s: Scalar, v: &Value) -> Result<Vec<u8>, String> {
    let int = |lo: i128, hi: i128| -> Result<i128, String> {
        let n = match *v {
            Value::Unsigned(u) => i128::from(u),
            Value::Signed(i) => i128::from(i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 1.9e19 => {
                // Integral and inside the i128 range: exact.
                #[allow(clippy::cast_possible_truncation)]
                let n = f as i128;
                n
            }
            _ => return Err(format!("a {} given for a `{s}`", v.what())),
        };
        if n < lo || n > hi {
            return Err(format!("`{n}` is out of the range of `{s}`"));
        }
        Ok(n)
    };
    let float = || {
        v.as_f64()
            .ok_or_else(|| format!("a {} given for a `{s}`", v.what()))
    };
    let le = |n: i128, size: usize| n.to_le_bytes().get(..size).unwrap_or_default().to_vec();
    Ok(match s {
        Scalar::U8 => le(int(0, 0xff)?, 1),
        Scalar::I8 => le(int(-0x80, 0x7f)?, 1),
        Scalar::U16 => le(int(0, 0xffff)?, 2),
        Scalar::I16 => le(int(-0x8000, 0x7fff)?, 2),
        Scalar::U32 => le(int(0, 0xffff_ffff)?, 4),
        Scalar::I32 => le(int(-0x8000_0000, 0x7fff_ffff)?, 4),
        Scalar::U64 => le(int(0, i128::from(u64::MAX))?, 8),
        Scalar::I64 => le(int(i128::from(i64::MIN), i128::from(i64::MAX))?, 8),
        Scalar::F32 => (float()? as f32).to_le_bytes().to_vec(),
        Scalar::F64 => float()?.to_le_bytes().to_vec(),
        #[allow(unreachable_patterns)]
        _ => return Err(format!("`{s}` cannot be written")),
    })
}

fn dtype_scalar(code: &str) -> Option<Scalar> {
    let named = match code {
        "uint8" | "u1" | "B" => Some(Scalar::U8),
        "int8" | "i1" | "b" => Some(Scalar::I8),
        "uint16" => Some(Scalar::U16),
        "int16" => Some(Scalar::I16),
        "uint32" => Some(Scalar::U32),
        "int32" => Some(Scalar::I32),
        "uint64" => Some(Scalar::U64),
        "int64" => Some(Scalar::I64),
        "float32" => Some(Scalar::F32),
        "float64" => Some(Scalar::F64),
        _ => None,
    };
    named.or_else(|| Scalar::from_numpy(code))
}

/// The byte count of a NumPy void code (`|V4`, `V4`), if `code` is one.
fn void_size(code: &str) -> Option<usize> {
    let rest = code.strip_prefix(['|', '<', '=']).unwrap_or(code);
    rest.strip_prefix('V')?.parse().ok().filter(|&n| n > 0)
}

fn dtype_layout(lit: &Lit, depth: usize) -> Result<DynLayout, LayoutError> {
    if depth > MAX_LAYOUT_DEPTH {
        return err("dtype", format!("nested deeper than {MAX_LAYOUT_DEPTH}"));
    }
    let deeper = depth.saturating_add(1);
    match lit {
        Lit::Str(code) => {
            if let Some(s) = dtype_scalar(code) {
                return Ok(DynLayout::scalar(s));
            }
            if let Some(n) = void_size(code) {
                return DynLayout::array(DynLayout::scalar(Scalar::U8), n);
            }
            let why = if code.starts_with('>') {
                "big-endian types are not part of the format (it is little-endian)"
            } else {
                "not a fixed-width integer or float type (u1 i1 u2 i2 u4 i4 u8 i8 f4 f8)"
            };
            err(format!("dtype `{code}`"), why)
        }
        Lit::List(items) => {
            // A `(base, shape)` pair is a subarray; a list of tuples is a record.
            if let [base, shape] = items.as_slice()
                && !matches!(base, Lit::List(_))
                && (matches!(shape, Lit::Int(_))
                    || matches!(shape, Lit::List(dims) if dims.iter().all(|d| matches!(d, Lit::Int(_)))))
            {
                let elem = dtype_layout(base, deeper)?;
                return shaped(elem, shape);
            }
            let mut fields = Vec::new();
            let mut offset = 0usize;
            for item in items {
                let Lit::List(parts) = item else {
                    return err("dtype", "a record's entries are (name, dtype[, shape])");
                };
                let (name, ty, shape) = match parts.as_slice() {
                    [Lit::Str(n), ty] => (n, ty, None),
                    [Lit::Str(n), ty, shape] => (n, ty, Some(shape)),
                    _ => return err("dtype", "a record's entries are (name, dtype[, shape])"),
                };
                let mut layout = dtype_layout(ty, deeper)?;
                if let Some(shape) = shape {
                    layout = shaped(layout, shape)?;
                }
                let size = layout.size;
                let is_pad = name.is_empty() && matches!(ty, Lit::Str(c) if void_size(c).is_some());
                if !is_pad {
                    fields.push(DynField {
                        name: name.clone(),
                        offset,
                        layout,
                    });
                }
                offset = offset.checked_add(size).ok_or_else(|| LayoutError {
                    context: "dtype".into(),
                    reason: "the record is too large".into(),
                })?;
            }
            record(fields, offset)
        }
        Lit::Dict(_) => {
            let list = |key: &str| match lit.get(key) {
                Some(Lit::List(l)) => Ok(l.as_slice()),
                _ => err("dtype", format!("a record dict needs a `{key}` list")),
            };
            let names = list("names")?;
            let formats = list("formats")?;
            if names.len() != formats.len() {
                return err("dtype", "`names` and `formats` differ in length");
            }
            let offsets: Vec<usize> = match lit.get("offsets") {
                Some(Lit::List(l)) if l.len() == names.len() => l
                    .iter()
                    .map(|o| {
                        o.as_usize().ok_or_else(|| LayoutError {
                            context: "dtype".into(),
                            reason: "an offset is not a non-negative integer".into(),
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return err("dtype", "`offsets` must list one offset per name"),
                None => Vec::new(),
            };
            let mut fields = Vec::with_capacity(names.len());
            let mut packed = 0usize;
            for (i, (n, f)) in names.iter().zip(formats).enumerate() {
                let Some(name) = n.as_str() else {
                    return err("dtype", "a name is not a string");
                };
                let layout = dtype_layout(f, deeper)?;
                let offset = offsets.get(i).copied().unwrap_or(packed);
                packed = offset.saturating_add(layout.size);
                fields.push(DynField {
                    name: name.to_owned(),
                    offset,
                    layout,
                });
            }
            let end = fields
                .iter()
                .map(|f| f.offset.saturating_add(f.layout.size))
                .max();
            let size = match lit.get("itemsize") {
                Some(s) => s.as_usize().ok_or_else(|| LayoutError {
                    context: "dtype".into(),
                    reason: "`itemsize` is not a non-negative integer".into(),
                })?,
                None => end.unwrap_or(0),
            };
            record(fields, size)
        }
        _ => err(
            "dtype",
            "a dtype is a type string, a list of fields or a dict",
        ),
    }
}

fn shaped(elem: DynLayout, shape: &Lit) -> Result<DynLayout, LayoutError> {
    let dims: Vec<usize> = match shape {
        Lit::Int(_) => vec![shape.as_usize().unwrap_or(0)],
        Lit::List(l) => l.iter().map(|d| d.as_usize().unwrap_or(0)).collect(),
        _ => return err("dtype", "a shape is an integer or a tuple of them"),
    };
    dims.iter()
        .rev()
        .try_fold(elem, |inner, &len| DynLayout::array(inner, len))
}

fn record(fields: Vec<DynField>, size: usize) -> Result<DynLayout, LayoutError> {
    let natural = fields.iter().map(|f| f.layout.align).max().unwrap_or(1);
    let aligned = fields
        .iter()
        .all(|f| f.offset.checked_rem(f.layout.align) == Some(0))
        && size.checked_rem(natural) == Some(0);
    DynLayout::structure("record", size, if aligned { natural } else { 1 }, fields)
}

fn schema_type(
    ty: &Lit,
    known: &[(String, DynLayout)],
    ctx: &str,
    depth: usize,
) -> Result<DynLayout, LayoutError> {
    if depth > MAX_LAYOUT_DEPTH {
        return err(ctx, format!("nested deeper than {MAX_LAYOUT_DEPTH}"));
    }
    match ty {
        Lit::Str(name) => {
            if let Some(s) = Scalar::from_rust_name(name) {
                return Ok(DynLayout::scalar(s));
            }
            match known.iter().find(|(n, _)| n == name) {
                Some((_, l)) => Ok(l.clone()),
                None => err(
                    ctx,
                    format!("unknown type `{name}` (structs must come before their use)"),
                ),
            }
        }
        Lit::Dict(_) => {
            let elem = ty.get("array").ok_or_else(|| LayoutError {
                context: ctx.into(),
                reason: "a type object needs `array` and `len`".into(),
            })?;
            let len = ty
                .get("len")
                .and_then(Lit::as_usize)
                .ok_or_else(|| LayoutError {
                    context: ctx.into(),
                    reason: "a type object needs `array` and `len`".into(),
                })?;
            let elem = schema_type(elem, known, ctx, depth.saturating_add(1))?;
            DynLayout::array(elem, len)
        }
        _ => err(ctx, "a type is a name or `{\"array\": T, \"len\": N}`"),
    }
}

/// A literal of JSON or Python syntax: what dtype strings, schema files and values are
/// written in.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Int(i128),
    Float(f64),
    List(Vec<Lit>),
    Dict(Vec<(String, Lit)>),
    Null,
}

/// The deepest nesting a literal may have.
const MAX_LIT_DEPTH: usize = 64;

impl Lit {
    fn parse(text: &str) -> Result<Lit, LayoutError> {
        let mut p = LitParser {
            s: text.as_bytes(),
            at: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.at != p.s.len() {
            return p.fail("unexpected text after the value");
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Lit> {
        match self {
            Lit::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Lit::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_usize(&self) -> Option<usize> {
        match *self {
            Lit::Int(n) => usize::try_from(n).ok(),
            _ => None,
        }
    }

    #[allow(clippy::cast_precision_loss)] // integers beyond 64 bits become floats
    fn to_value(&self) -> Result<Value, LayoutError> {
        Ok(match self {
            Lit::Int(n) => match (u64::try_from(*n), i64::try_from(*n)) {
                (_, Ok(i)) if i < 0 => Value::Signed(i),
                (Ok(u), _) => Value::Unsigned(u),
                _ => Value::Float(*n as f64),
            },
            Lit::Float(f) => Value::Float(*f),
            Lit::Str(s) if s == "NaN" || s == "nan" => Value::Float(f64::NAN),
            Lit::Str(s) if s == "inf" => Value::Float(f64::INFINITY),
            Lit::Str(s) if s == "-inf" => Value::Float(f64::NEG_INFINITY),
            Lit::Str(s) => return err("value", format!("`{s}` is not a number")),
            Lit::Null => return err("value", "`null` is not a number"),
            Lit::List(items) => {
                Value::Array(items.iter().map(Lit::to_value).collect::<Result<_, _>>()?)
            }
            Lit::Dict(entries) => Value::Struct(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_value()?)))
                    .collect::<Result<_, LayoutError>>()?,
            ),
        })
    }
}

struct LitParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl LitParser<'_> {
    fn fail<T>(&self, reason: &str) -> Result<T, LayoutError> {
        err(format!("character {}", self.at), reason)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn bump(&mut self) {
        self.at = self.at.saturating_add(1);
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.bump();
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit, LayoutError> {
        if depth > MAX_LIT_DEPTH {
            return self.fail("nested too deeply");
        }
        self.ws();
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(q).map(Lit::Str),
            Some(open @ (b'[' | b'(')) => {
                let close = if open == b'[' { b']' } else { b')' };
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(close) {
                        self.bump();
                        return Ok(Lit::List(items));
                    }
                    items.push(self.value(depth.saturating_add(1))?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.bump(),
                        Some(c) if c == close => {}
                        _ => return self.fail("expected `,` or the end of the list"),
                    }
                }
            }
            Some(b'{') => {
                self.bump();
                let mut entries = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.bump();
                        return Ok(Lit::Dict(entries));
                    }
                    let key = match self.peek() {
                        Some(q @ (b'"' | b'\'')) => self.string(q)?,
                        _ => return self.fail("expected a string key"),
                    };
                    self.ws();
                    if self.peek() != Some(b':') {
                        return self.fail("expected `:`");
                    }
                    self.bump();
                    let v = self.value(depth.saturating_add(1))?;
                    entries.push((key, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.bump(),
                        Some(b'}') => {}
                        _ => return self.fail("expected `,` or `}`"),
                    }
                }
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.bump();
                }
                match self.s.get(start..self.at) {
                    Some(b"null" | b"None") => Ok(Lit::Null),
                    Some(b"NaN" | b"nan") => Ok(Lit::Float(f64::NAN)),
                    Some(b"Infinity" | b"inf") => Ok(Lit::Float(f64::INFINITY)),
                    Some(b"true" | b"True") => Ok(Lit::Int(1)),
                    Some(b"false" | b"False") => Ok(Lit::Int(0)),
                    _ => {
                        self.at = start;
                        self.fail("unknown word")
                    }
                }
            }
            _ => self.fail("expected a value"),
        }
    }

    fn string(&mut self, quote: u8) -> Result<String, LayoutError> {
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(c) if c == quote => {
                    self.bump();
                    return String::from_utf8(out).map_or_else(|_| self.fail("not UTF-8"), Ok);
                }
                Some(b'\\') => {
                    self.bump();
                    let c = self.peek().ok_or_else(|| LayoutError {
                        context: format!("character {}", self.at),
                        reason: "unterminated escape".into(),
                    })?;
                    self.bump();
                    match c {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'u' => {
                            let hex = self.s.get(self.at..self.at.saturating_add(4));
                            let code = hex
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32);
                            let Some(ch) = code else {
                                return self.fail("a bad `\\u` escape");
                            };
                            self.at = self.at.saturating_add(4);
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
    }

    fn number(&mut self) -> Result<Lit, LayoutError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
        {
            self.bump();
        }
        let text =
            std::str::from_utf8(self.s.get(start..self.at).unwrap_or_default()).unwrap_or("");
        if text == "-inf" || text == "-Infinity" {
            return Ok(Lit::Float(f64::NEG_INFINITY));
        }
        if let Ok(n) = text.parse::<i128>() {
            return Ok(Lit::Int(n));
        }
        match text.parse::<f64>() {
            Ok(f) => Ok(Lit::Float(f)),
            Err(_) => {
                self.at = start;
                self.fail("not a number")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, crate::ShmLayout)]
    struct Inner {
        a: u16,
        b: [u8; 2],
    }

    #[test]
    fn an_owned_layout_fingerprints_and_round_trips_like_the_static_one() {
        for l in [u8::LAYOUT, f64::LAYOUT, <[[i16; 3]; 2]>::LAYOUT] {
            let d = DynLayout::from_static(l);
            assert_eq!(d.fingerprint(), l.fingerprint());
            assert_eq!(DynLayout::decode(&d.encode()).unwrap(), d);
        }
    }

    #[test]
    fn dtype_strings_of_every_form_parse() {
        for s in Scalar::ALL {
            assert_eq!(
                DynLayout::from_dtype(s.numpy()).unwrap(),
                DynLayout::scalar(s)
            );
            assert_eq!(
                DynLayout::from_dtype(&format!("'{}'", s.numpy())).unwrap(),
                DynLayout::scalar(s)
            );
        }
        let rec = DynLayout::from_dtype("[('t', '<f4'), ('h', '<f4'), ('ts', '<u8')]").unwrap();
        assert_eq!((rec.size(), rec.align()), (16, 8));
        let json = DynLayout::from_dtype(r#"[["t","<f4"],["h","<f4"],["ts","<u8"]]"#).unwrap();
        assert_eq!(json, rec);
        let dict = DynLayout::from_dtype(
            "{'names': ['ts', 't'], 'formats': ['<u8', '<f4'], 'offsets': [8, 0], 'itemsize': 16}",
        )
        .unwrap();
        assert_eq!(dict.size(), 16);
        let nested =
            DynLayout::from_dtype("[('p', [('x', '<f8'), ('y', '<f8')]), ('v', '<i2', (2, 4))]")
                .unwrap();
        assert_eq!(nested.size(), 16 + 16);
        assert_eq!(nested.align(), 8);
        let packed = DynLayout::from_dtype("[('a', 'u1'), ('b', '<u4')]").unwrap();
        assert_eq!((packed.size(), packed.align()), (5, 1));
        let padded = DynLayout::from_dtype("[('a', 'u1'), ('', '|V3'), ('b', '<u4')]").unwrap();
        assert_eq!((padded.size(), padded.align()), (8, 4));
        for bad in [
            ">i4",
            "c16",
            "O",
            "[('a', '<u4'), ('a', '<u4')]",
            "[('a'",
            "{'names': ['a'], 'formats': ['<u4', '<u4']}",
        ] {
            assert!(DynLayout::from_dtype(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_round_trip_through_bytes_and_json() {
        let l = DynLayout::of::<Inner>();
        let mut bytes = [0u8; 4];
        let v = Value::parse(r#"{"a": 65535, "b": [1, 2]}"#).unwrap();
        l.write(&v, &mut bytes).unwrap();
        assert_eq!(bytes, [0xff, 0xff, 1, 2]);
        assert_eq!(l.read(&bytes).unwrap(), v);
        assert_eq!(
            l.read(&bytes).unwrap().to_string(),
            r#"{"a":65535,"b":[1,2]}"#
        );
        let e = l
            .write(&Value::parse(r#"{"a": 65536}"#).unwrap(), &mut bytes)
            .unwrap_err();
        assert_eq!(e.context, "a");
        let e = l
            .write(&Value::parse(r#"{"b": [1]}"#).unwrap(), &mut bytes)
            .unwrap_err();
        assert!(e.reason.contains("1 values for an array of 2"), "{e}");
        assert!(
            l.write(&Value::parse(r#"{"c": 1}"#).unwrap(), &mut bytes)
                .is_err()
        );
    }

    #[test]
    fn the_first_difference_names_the_field() {
        let a = DynLayout::from_dtype("[('x', '<f4'), ('y', '<f4')]").unwrap();
        let b = DynLayout::from_dtype("[('y', '<f4'), ('x', '<f4')]").unwrap();
        let (path, what) = a.first_difference(&b, true).unwrap();
        assert_eq!(path, "x");
        assert!(what.contains("stored at offset 4 (here 0)"), "{what}");
        assert_eq!(a.first_difference(&a.clone(), true), None);
        let c = DynLayout::from_dtype("[('x', '<f4'), ('y', '<i4')]").unwrap();
        assert_eq!(a.first_difference(&c, true).unwrap().0, "y");
    }

    #[test]
    fn hostile_encodings_are_refused_without_panicking() {
        let good = DynLayout::of::<Inner>().encode();
        for cut in 0..good.len() {
            assert!(DynLayout::decode(&good[..cut]).is_err());
        }
        let mut long = good.clone();
        long.push(0);
        assert!(DynLayout::decode(&long).is_err());
        // Deep nesting.
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.push(b'A');
            deep.extend_from_slice(&1u64.to_le_bytes());
        }
        deep.push(b'S');
        deep.extend_from_slice(&3u64.to_le_bytes());
        deep.extend_from_slice(b"|u1");
        assert!(
            DynLayout::decode(&deep)
                .unwrap_err()
                .reason
                .contains("nested deeper")
        );
        // A huge field count.
        let mut many = vec![b'T'];
        many.extend_from_slice(&1u64.to_le_bytes());
        many.push(b'X');
        for n in [8u64, 8, 4000] {
            many.extend_from_slice(&n.to_le_bytes());
        }
        assert!(DynLayout::decode(&many).is_err());
    }
}
