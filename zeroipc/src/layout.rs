//! Layout descriptors: what a shared type looks like, byte for byte.
//!
//! A [`Layout`] is the single source of truth for a type placed in shared memory: its size, its
//! alignment, and either the scalar it is, the array it is, or the fields of the struct it is,
//! each at the offset the compiler chose. Descriptors are `'static` constants built only from
//! `size_of`, `align_of` and `offset_of!`, so they cannot disagree with the compiler. The code
//! generator renders them as NumPy dtypes and C structs; the runtime uses the size to check that a
//! structure is opened with the element type it holds.
//!
//! [`ShmLayout`] connects a Rust type to its descriptor. It is implemented here for the
//! fixed-width integers, `f32`, `f64` and arrays `[T; N]` of shareable types; user structs get it
//! from `#[derive(ShmLayout)]`.

use std::fmt;
use std::mem::{align_of, size_of};

/// A type whose bytes mean the same thing to every process and language that maps them.
///
/// Implemented for `u8`, `i8`, `u16`, `i16`, `u32`, `i32`, `u64`, `i64`, `f32`, `f64` and arrays
/// `[T; N]` (`N > 0`) of `ShmLayout` types. For your own structs, derive it:
///
/// ```
/// use zeroipc::ShmLayout;
///
/// /// One sample from a sensor.
/// #[repr(C)]
/// #[derive(Clone, Copy, Debug, ShmLayout)]
/// struct SensorReading {
///     /// Degrees Celsius.
///     temperature: f32,
///     humidity: f32,
///     /// Milliseconds since the Unix epoch.
///     timestamp: u64,
/// }
///
/// assert_eq!(SensorReading::LAYOUT.size(), 16);
/// ```
///
/// # What the derive accepts
///
/// - structs with named fields and tuple structs, `#[repr(C)]` or `#[repr(transparent)]` (an
///   `align(N)` may only restate the alignment the fields already give);
/// - whose fields are all `ShmLayout`: the scalars above, arrays of them, and other derived
///   structs, nested to any depth;
/// - with no implicit padding: every byte belongs to a field. Write padding as an explicit field,
///   `_pad: [u8; 3]`, so that C and NumPy see it too.
///
/// The struct must also derive (or implement) `Clone` and `Copy`; the derive emits the
/// `bytemuck::Zeroable` and `bytemuck::Pod` impls itself, so you need no bytemuck dependency.
///
/// `#[shm(rename = "...")]` on the struct or a field sets the name used in the generated Python
/// and C; it must pass the `zeroipc-names` rule: an identifier valid in both, not a keyword of
/// Python, C or C++ nor a name the C header includes (a field named `lambda`, `class`, `xor` or
/// `uint32_t` needs a rename), and no field may have the name of its struct. Tuple fields are
/// named `f0`, `f1`, ...
///
/// # What it rejects, and the fix
///
/// | written | why | fix |
/// |---|---|---|
/// | no `#[repr(C)]`, or `#[repr(Rust)]` | Rust may reorder fields | add `#[repr(C)]` |
/// | `#[repr(packed)]` | misaligned fields; atomics cannot use them | remove it, add `_pad` fields |
/// | `#[repr(align(16))]` | segments only guarantee 8-byte alignment | at most `align(8)` |
/// | `align(N)` above the fields' own alignment | NumPy and C cannot express over-alignment | remove it |
/// | implicit padding, e.g. `u8` then `u32` | the padding bytes are undefined and NumPy ignores them | `_pad: [u8; 3]` |
/// | `bool`, `char` | not every bit pattern is valid | `u8`, `u32` |
/// | `usize`, `isize` | width differs between 32- and 64-bit processes | `u64`, `i64` |
/// | `u128`, `i128` | alignment differs between Rust, C and NumPy | two `u64` fields |
/// | `&T`, `*const T`, `fn()`, `Box`, `Vec`, `String` | addresses mean nothing in another process | an index or offset, `[T; N]` |
/// | tuples | no guaranteed layout | a derived struct or an array |
/// | `()`, `[T; 0]`, `PhantomData` | zero-sized: no bytes to share | remove the field |
/// | enums, unions | invalid bit patterns / unknown live field | a struct with an integer tag |
/// | generic structs | a descriptor needs concrete types (not supported yet) | a concrete struct |
/// | other types without `ShmLayout` | unknown layout | derive `ShmLayout` for them |
/// | unknown or repeated `#[shm(...)]` keys | probably a typo | `#[shm(rename = "...")]` once |
///
/// Every problem is reported at once, each at the offending span.
///
/// # Safety
///
/// Implementors promise that
/// - `Self::LAYOUT` describes `Self` exactly: `size == size_of::<Self>()`,
///   `align == align_of::<Self>()`, and for structs every field's offset and layout are the
///   compiler's;
/// - `align_of::<Self>() <= 8` (every structure section in a segment is only 8-aligned);
/// - `Self` has no padding bytes and every bit pattern is a valid value (as `bytemuck::Pod`
///   already requires).
///
/// Do not implement this by hand: use `#[derive(ShmLayout)]`, which proves all three at compile
/// time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shared through a segment: it is not `ShmLayout`",
    label = "not `ShmLayout`",
    note = "shareable types are the fixed-width integers, `f32`, `f64`, arrays `[T; N]` of them, \
            and `#[repr(C)]` structs with `#[derive(ShmLayout)]`",
    note = "heap types such as `Vec`, `String` and `Box` point into one process: use a fixed-size \
            array `[T; N]`; for `Option<T>` store the value plus a `u8` flag; for `bool` use `u8`",
    note = "for a `#[repr(C)]` struct of your own, add `#[derive(ShmLayout)]` to it"
)]
#[allow(unsafe_code)] // an unsafe trait: its contract is the `# Safety` section above
pub unsafe trait ShmLayout: bytemuck::Pod {
    /// The descriptor of `Self`.
    const LAYOUT: &'static Layout;
}

/// A fixed-width scalar that every language names the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scalar {
    /// `u8` / `uint8_t` / `|u1`.
    U8,
    /// `i8` / `int8_t` / `|i1`.
    I8,
    /// `u16` / `uint16_t` / `<u2`.
    U16,
    /// `i16` / `int16_t` / `<i2`.
    I16,
    /// `u32` / `uint32_t` / `<u4`.
    U32,
    /// `i32` / `int32_t` / `<i4`.
    I32,
    /// `u64` / `uint64_t` / `<u8`.
    U64,
    /// `i64` / `int64_t` / `<i8`.
    I64,
    /// `f32` / `float` / `<f4`.
    F32,
    /// `f64` / `double` / `<f8`.
    F64,
}

impl Scalar {
    /// Every scalar, in declaration order.
    pub const ALL: [Scalar; 10] = [
        Self::U8,
        Self::I8,
        Self::U16,
        Self::I16,
        Self::U32,
        Self::I32,
        Self::U64,
        Self::I64,
        Self::F32,
        Self::F64,
    ];

    /// Size in bytes (equal to the alignment for every scalar).
    pub const fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 => 8,
        }
    }

    /// The Rust type name (`"u32"`).
    pub const fn rust_name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::U64 => "u64",
            Self::I64 => "i64",
            Self::F32 => "f32",
            Self::F64 => "f64",
        }
    }

    /// The little-endian NumPy type string (`"<u4"`).
    pub const fn numpy(self) -> &'static str {
        match self {
            Self::U8 => "|u1",
            Self::I8 => "|i1",
            Self::U16 => "<u2",
            Self::I16 => "<i2",
            Self::U32 => "<u4",
            Self::I32 => "<i4",
            Self::U64 => "<u8",
            Self::I64 => "<i8",
            Self::F32 => "<f4",
            Self::F64 => "<f8",
        }
    }

    /// The C type (`"uint32_t"`).
    pub const fn c_type(self) -> &'static str {
        match self {
            Self::U8 => "uint8_t",
            Self::I8 => "int8_t",
            Self::U16 => "uint16_t",
            Self::I16 => "int16_t",
            Self::U32 => "uint32_t",
            Self::I32 => "int32_t",
            Self::U64 => "uint64_t",
            Self::I64 => "int64_t",
            Self::F32 => "float",
            Self::F64 => "double",
        }
    }

    /// Parses a NumPy type string: `"<i4"`, `"i4"`, `"|u1"`, `"=f8"`. Big-endian strings are
    /// not accepted (the format is little-endian).
    pub fn from_numpy(s: &str) -> Option<Self> {
        let code = s.strip_prefix(['<', '|', '=']).unwrap_or(s);
        Self::ALL.into_iter().find(|k| &k.numpy()[1..] == code)
    }

    /// Parses a Rust type name (`"u32"`).
    pub fn from_rust_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.rust_name() == s)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rust_name())
    }
}

/// The descriptor of a shareable type: size, alignment and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    size: usize,
    align: usize,
    kind: LayoutKind,
}

/// The shape of a [`Layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LayoutKind {
    /// A fixed-width scalar.
    Scalar(Scalar),
    /// `len` consecutive elements of `elem`, without gaps.
    Array {
        /// The element descriptor.
        elem: &'static Layout,
        /// The number of elements.
        len: usize,
    },
    /// A `#[repr(C)]` struct.
    Struct(&'static StructLayout),
}

/// The fields of a struct descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StructLayout {
    name: &'static str,
    doc: &'static str,
    fields: &'static [Field],
}

/// One field of a struct descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Field {
    name: &'static str,
    offset: usize,
    layout: &'static Layout,
    doc: &'static str,
}

impl Layout {
    /// The descriptor of a scalar.
    pub const fn scalar(scalar: Scalar) -> Self {
        Self {
            size: scalar.size(),
            align: scalar.size(),
            kind: LayoutKind::Scalar(scalar),
        }
    }

    /// The descriptor of `[elem; len]`.
    ///
    /// # Panics
    ///
    /// In const evaluation (a compile error) when the total size overflows `usize`.
    pub const fn array(elem: &'static Layout, len: usize) -> Self {
        let Some(size) = elem.size.checked_mul(len) else {
            panic!("array layout size overflows usize");
        };
        Self {
            size,
            align: elem.align,
            kind: LayoutKind::Array { elem, len },
        }
    }

    /// The descriptor of a struct. Used by `#[derive(ShmLayout)]`, which passes the compiler's
    /// own `size_of`, `align_of` and offsets.
    pub const fn structure(size: usize, align: usize, layout: &'static StructLayout) -> Self {
        Self {
            size,
            align,
            kind: LayoutKind::Struct(layout),
        }
    }

    /// Size in bytes.
    pub const fn size(&self) -> usize {
        self.size
    }

    /// Alignment in bytes.
    pub const fn align(&self) -> usize {
        self.align
    }

    /// The shape.
    pub const fn kind(&self) -> LayoutKind {
        self.kind
    }

    /// A stable 64-bit fingerprint of the layout: equal fingerprints mean the same names,
    /// offsets, sizes and scalar kinds, so two processes (or languages) that agree on it agree on
    /// every byte. Doc comments do not contribute.
    ///
    /// The value is FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) over
    /// this byte encoding, where integers are unsigned 64-bit little-endian and strings are their
    /// length followed by their UTF-8 bytes:
    /// - scalar: `b'S'`, then its NumPy type string (`"<u4"`, `"|u1"`, ...);
    /// - array: `b'A'`, the length, then the element's encoding;
    /// - struct: `b'T'`, the name, the size, the alignment, the field count, then per field its
    ///   name, its offset and its layout's encoding.
    pub const fn fingerprint(&self) -> u64 {
        fnv_layout(FNV_OFFSET, self)
    }

    /// A short human-readable type name: `u32`, `[f32; 3]`, `SensorReading`.
    pub fn type_name(&self) -> String {
        match self.kind {
            LayoutKind::Scalar(s) => s.rust_name().to_owned(),
            LayoutKind::Array { elem, len } => format!("[{}; {len}]", elem.type_name()),
            LayoutKind::Struct(s) => s.name.to_owned(),
        }
    }
}

impl StructLayout {
    /// A struct descriptor with its name, doc comment and fields in declaration order.
    pub const fn new(name: &'static str, doc: &'static str, fields: &'static [Field]) -> Self {
        Self { name, doc, fields }
    }

    /// The name used in generated bindings.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The doc comment, trimmed, or `""`.
    pub const fn doc(&self) -> &'static str {
        self.doc
    }

    /// The fields in declaration (and, for `repr(C)`, offset) order.
    pub const fn fields(&self) -> &'static [Field] {
        self.fields
    }
}

impl Field {
    /// A field descriptor.
    pub const fn new(
        name: &'static str,
        offset: usize,
        layout: &'static Layout,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            offset,
            layout,
            doc,
        }
    }

    /// The name used in generated bindings.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Byte offset from the start of the struct.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The field's type.
    pub const fn layout(&self) -> &'static Layout {
        self.layout
    }

    /// The doc comment, trimmed, or `""`.
    pub const fn doc(&self) -> &'static str {
        self.doc
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fnv_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    hash
}

const fn fnv_u64(hash: u64, value: u64) -> u64 {
    fnv_bytes(hash, &value.to_le_bytes())
}

const fn fnv_str(hash: u64, s: &str) -> u64 {
    fnv_bytes(fnv_u64(hash, s.len() as u64), s.as_bytes())
}

const fn fnv_layout(hash: u64, layout: &Layout) -> u64 {
    match layout.kind {
        LayoutKind::Scalar(s) => fnv_str(fnv_bytes(hash, b"S"), s.numpy()),
        LayoutKind::Array { elem, len } => {
            fnv_layout(fnv_u64(fnv_bytes(hash, b"A"), len as u64), elem)
        }
        LayoutKind::Struct(st) => {
            let mut h = fnv_str(fnv_bytes(hash, b"T"), st.name);
            h = fnv_u64(h, layout.size as u64);
            h = fnv_u64(h, layout.align as u64);
            h = fnv_u64(h, st.fields.len() as u64);
            let mut i = 0;
            while i < st.fields.len() {
                let f = &st.fields[i];
                h = fnv_str(h, f.name);
                h = fnv_u64(h, f.offset as u64);
                h = fnv_layout(h, f.layout);
                i += 1;
            }
            h
        }
    }
}

macro_rules! scalar_impls {
    ($($ty:ty => $scalar:ident),* $(,)?) => {$(
        #[allow(unsafe_code)] // implements the contract, proven by the assertion below
        // SAFETY:
        // - fixed-width integers and IEEE floats have no padding, accept every bit pattern,
        //   and have size == align <= 8 on every target, matching `Layout::scalar`.
        unsafe impl ShmLayout for $ty {
            const LAYOUT: &'static Layout = &Layout::scalar(Scalar::$scalar);
        }
        const _: () = assert!(
            size_of::<$ty>() == Scalar::$scalar.size() && align_of::<$ty>() == Scalar::$scalar.size()
        );
    )*};
}

scalar_impls! {
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
    u64 => U64, i64 => I64, f32 => F32, f64 => F64,
}

#[allow(unsafe_code)] // implements the contract, as argued below
// SAFETY:
// - `[T; N]` has the size `N * size_of::<T>()` and the alignment of `T`, with no padding between
//   elements (guaranteed by the language), so it is `Pod` and at most 8-aligned when `T` is;
// - the descriptor is computed from `T::LAYOUT`, which `T`'s own impl guarantees.
unsafe impl<T: ShmLayout, const N: usize> ShmLayout for [T; N]
where
    [T; N]: bytemuck::Pod,
{
    const LAYOUT: &'static Layout = &{
        assert!(
            N > 0,
            "zero-length arrays cannot be shared: they have no bytes"
        );
        Layout::array(T::LAYOUT, N)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: ShmLayout>() {
        assert_eq!(T::LAYOUT.size(), size_of::<T>());
        assert_eq!(T::LAYOUT.align(), align_of::<T>());
        assert!(T::LAYOUT.align() <= 8);
    }

    #[test]
    fn primitive_descriptors_match_the_compiler() {
        check::<u8>();
        check::<i16>();
        check::<u32>();
        check::<i64>();
        check::<f32>();
        check::<f64>();
        check::<[f32; 3]>();
        check::<[[u16; 3]; 5]>();
        assert_eq!(<[[u16; 3]; 5]>::LAYOUT.type_name(), "[[u16; 3]; 5]");
    }

    #[test]
    fn numpy_codes_round_trip() {
        for s in Scalar::ALL {
            assert_eq!(Scalar::from_numpy(s.numpy()), Some(s));
            assert_eq!(Scalar::from_numpy(&s.numpy()[1..]), Some(s));
            assert_eq!(Scalar::from_rust_name(s.rust_name()), Some(s));
        }
        assert_eq!(Scalar::from_numpy(">i4"), None);
        assert_eq!(Scalar::from_numpy("c16"), None);
    }

    #[test]
    fn struct_descriptors_can_be_built_in_const_context() {
        const FIELDS: &[Field] = &[
            Field::new("a", 0, u32::LAYOUT, "first"),
            Field::new("b", 4, <[u8; 4]>::LAYOUT, ""),
        ];
        const S: StructLayout = StructLayout::new("Pair", "A pair.", FIELDS);
        const L: Layout = Layout::structure(8, 4, &S);
        assert_eq!(L.type_name(), "Pair");
        let LayoutKind::Struct(s) = L.kind() else {
            panic!("not a struct")
        };
        assert_eq!(s.fields()[1].layout().size(), 4);
        assert_eq!(s.fields()[0].doc(), "first");
    }
}
