//! `#[derive(ShmLayout)]`: descriptors equal the compiler's layout (TESTPLAN F2), fingerprints
//! track layout but not docs, and derived records cross processes through an `Array`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

use zeroipc::{Array, Error, Layout, LayoutKind, Segment, SegmentOptions, ShmLayout, StructLayout};
use zeroipc_tests::types::{SensorReading, TaggedReading};
use zeroipc_tests::{guarded, run_ok};

const CHILD: &str = env!("CARGO_BIN_EXE_zeroipc-test-child");

fn fields_of(layout: &Layout) -> &'static StructLayout {
    match layout.kind() {
        LayoutKind::Struct(s) => s,
        other => panic!("not a struct: {other:?}"),
    }
}

/// Asserts that `T`'s descriptor equals the compiler's size, alignment and the given offsets.
macro_rules! assert_layout {
    ($t:ty { $($field:tt),* $(,)? }) => {{
        let layout = <$t as ShmLayout>::LAYOUT;
        assert_eq!(layout.size(), size_of::<$t>(), "size of {}", stringify!($t));
        assert_eq!(layout.align(), align_of::<$t>(), "align of {}", stringify!($t));
        let offsets = [$(offset_of!($t, $field)),*];
        let fields = fields_of(layout).fields();
        assert_eq!(fields.len(), offsets.len(), "field count of {}", stringify!($t));
        for (f, off) in fields.iter().zip(offsets) {
            assert_eq!(f.offset(), off, "{}.{}", stringify!($t), f.name());
        }
        1usize
    }};
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Bytes {
    a: u8,
    b: i8,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Mixed {
    a: u16,
    b: i16,
    c: u32,
    d: f64,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct WithPad {
    flag: u8,
    _pad: [u8; 7],
    value: i64,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Vec3 {
    x: f32,
    y: f32,
    z: f32,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Level1 {
    v: Vec3,
    w: f32,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Level2 {
    inner: Level1,
    tag: u32,
    more: [Level1; 2],
    _pad: [u8; 4],
    stamp: u64,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Level3 {
    head: Level2,
    tail: [Level2; 3],
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Grid {
    cells: [[u16; 3]; 4],
    id: u32,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Tuple(u32, f32, [u8; 8]);

#[repr(transparent)]
#[derive(Clone, Copy, ShmLayout)]
struct Wrapped(u64);

#[repr(C, align(4))]
#[derive(Clone, Copy, ShmLayout)]
struct Aligned {
    a: u32,
    b: u32,
}

/// Arrays of any length, not only bytemuck's built-in sizes.
#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct LongArrays {
    name: [u8; 100],
    values: [u16; 37],
    _pad: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
#[shm(rename = "Renamed")]
struct RenameMe {
    #[shm(rename = "first")]
    a: u64,
    r#type: u64,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Everything {
    a: u8,
    b: i8,
    c: u16,
    d: i16,
    _pad: [u8; 2],
    e: u32,
    f: i32,
    g: f32,
    _pad2: [u8; 4],
    h: u64,
    i: i64,
    j: f64,
    k: Wrapped,
    l: [Tuple; 2],
}

#[test]
fn descriptors_equal_the_compiler_layout() {
    let checked = assert_layout!(Bytes { a, b })
        + assert_layout!(Mixed { a, b, c, d })
        + assert_layout!(WithPad { flag, _pad, value })
        + assert_layout!(Vec3 { x, y, z })
        + assert_layout!(Level1 { v, w })
        + assert_layout!(Level2 {
            inner,
            tag,
            more,
            _pad,
            stamp
        })
        + assert_layout!(Level3 { head, tail })
        + assert_layout!(Grid { cells, id })
        + assert_layout!(Tuple { 0, 1, 2 })
        + assert_layout!(Wrapped { 0 })
        + assert_layout!(Aligned { a, b })
        + assert_layout!(LongArrays { name, values, _pad })
        + assert_layout!(RenameMe { a, r#type })
        + assert_layout!(Everything {
            a,
            b,
            c,
            d,
            _pad,
            e,
            f,
            g,
            _pad2,
            h,
            i,
            j,
            k,
            l
        })
        + assert_layout!(SensorReading {
            temperature,
            humidity,
            timestamp
        })
        + assert_layout!(TaggedReading {
            reading,
            sensor,
            _pad
        });
    assert!(checked >= 12);
    println!("descriptor checks: {checked} types");
}

#[test]
fn nested_descriptors_point_at_the_nested_types() {
    let l3 = fields_of(Level3::LAYOUT);
    assert_eq!(l3.fields()[0].layout(), Level2::LAYOUT);
    let LayoutKind::Array { elem, len: 3 } = l3.fields()[1].layout().kind() else {
        panic!("tail is not an array")
    };
    assert_eq!(elem, Level2::LAYOUT);
    let l1 = fields_of(fields_of(elem).fields()[0].layout());
    assert_eq!(l1.fields()[0].layout(), Vec3::LAYOUT);
    assert_eq!(Grid::LAYOUT.size(), 28);
    assert_eq!(
        fields_of(Grid::LAYOUT).fields()[0].layout().type_name(),
        "[[u16; 3]; 4]"
    );
}

#[test]
fn names_docs_and_renames_are_carried() {
    let s = fields_of(SensorReading::LAYOUT);
    assert_eq!(s.name(), "SensorReading");
    assert_eq!(s.doc(), "A sensor sample: 16 bytes, no padding.");
    assert_eq!(s.fields()[0].doc(), "Degrees Celsius.");
    let r = fields_of(RenameMe::LAYOUT);
    assert_eq!(r.name(), "Renamed");
    assert_eq!(r.fields()[0].name(), "first");
    assert_eq!(
        r.fields()[1].name(),
        "type",
        "raw identifiers lose their r#"
    );
    let t = fields_of(Tuple::LAYOUT);
    assert_eq!(
        t.fields().iter().map(|f| f.name()).collect::<Vec<_>>(),
        ["f0", "f1", "f2"]
    );
}

mod v1 {
    use zeroipc::ShmLayout;

    /// Version one.
    #[repr(C)]
    #[derive(Clone, Copy, ShmLayout)]
    pub(crate) struct Record {
        /// The id.
        pub(crate) id: u32,
        pub(crate) value: f32,
    }
}

mod v1_redocumented {
    use zeroipc::ShmLayout;

    /// The same record, documented differently.
    #[repr(C)]
    #[derive(Clone, Copy, ShmLayout)]
    pub(crate) struct Record {
        /// Another comment entirely.
        pub(crate) id: u32,
        /// New docs here too.
        pub(crate) value: f32,
    }
}

mod v1_retyped {
    use zeroipc::ShmLayout;

    #[repr(C)]
    #[derive(Clone, Copy, ShmLayout)]
    pub(crate) struct Record {
        pub(crate) id: u32,
        pub(crate) value: i32,
    }
}

mod v1_moved {
    use zeroipc::ShmLayout;

    #[repr(C)]
    #[derive(Clone, Copy, ShmLayout)]
    pub(crate) struct Record {
        pub(crate) id: u32,
        pub(crate) _pad: [u8; 4],
        pub(crate) value: f32,
        pub(crate) _pad2: [u8; 4],
    }
}

mod v1_renamed_field {
    use zeroipc::ShmLayout;

    #[repr(C)]
    #[derive(Clone, Copy, ShmLayout)]
    pub(crate) struct Record {
        pub(crate) id: u32,
        pub(crate) amount: f32,
    }
}

#[test]
fn fingerprints_follow_layout_not_docs() {
    let base = v1::Record::LAYOUT.fingerprint();
    assert_eq!(
        base,
        v1_redocumented::Record::LAYOUT.fingerprint(),
        "docs changed the fingerprint"
    );
    assert_ne!(
        base,
        v1_retyped::Record::LAYOUT.fingerprint(),
        "a field type change"
    );
    assert_ne!(
        base,
        v1_moved::Record::LAYOUT.fingerprint(),
        "a field offset change"
    );
    assert_ne!(
        base,
        v1_renamed_field::Record::LAYOUT.fingerprint(),
        "a field name change"
    );
    // Computed at compile time, and stable across runs and builds.
    const FP: u64 = SensorReading::LAYOUT.fingerprint();
    assert_eq!(FP, SensorReading::LAYOUT.fingerprint());
    assert_ne!(u32::LAYOUT.fingerprint(), i32::LAYOUT.fingerprint());
    assert_ne!(<[u8; 4]>::LAYOUT.fingerprint(), u32::LAYOUT.fingerprint());
}

#[test]
fn fingerprint_matches_its_documented_encoding() {
    // FNV-1a 64 over b"S" + len("<u4") as u64 LE + b"<u4".
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes: Vec<u8> = [&b"S"[..], &3u64.to_le_bytes(), b"<u4"].concat();
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    assert_eq!(u32::LAYOUT.fingerprint(), h);
}

#[test]
fn derived_records_cross_processes() {
    let (name, _g) = guarded("readings");
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let a = Array::<SensorReading>::create(&seg, "readings", 50).unwrap();
    for i in 0..a.len() {
        a.set(i, SensorReading::nth(i)).unwrap();
    }
    let out = run_ok(Command::new(CHILD).args(["readings-rw", &name, "readings"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "checked=50");
    for (i, r) in a.iter().enumerate() {
        assert_eq!(r, SensorReading::nth(i + 100));
    }
    // The segment describes the array: another derived type is refused by name, of another
    // size or of the same (TESTPLAN F6).
    let e = Array::<TaggedReading>::open(&seg, "readings").unwrap_err();
    assert!(
        matches!(&e, Error::LayoutMismatch { difference: d, .. }
            if d.expected_type == "TaggedReading" && d.found_type == "SensorReading"),
        "{e:?}"
    );
    assert!(matches!(
        Array::<[u64; 2]>::open(&seg, "readings"),
        Err(Error::LayoutMismatch { .. })
    ));
    // Undescribed (as another implementation writes it), only sizes are checked: another size
    // is refused, the same size is the caller's responsibility.
    let (name, _g) = guarded("readings-bare");
    let seg = SegmentOptions::new()
        .descriptions(false)
        .create(&name, 1 << 16)
        .unwrap();
    Array::<SensorReading>::create(&seg, "readings", 50).unwrap();
    let e = Array::<TaggedReading>::open(&seg, "readings").unwrap_err();
    assert!(
        matches!(&e, Error::TypeMismatch { expected: 24, found, .. } if found.contains("`16`-byte")),
        "{e:?}"
    );
    assert!(Array::<[u64; 2]>::open(&seg, "readings").is_ok());
}
