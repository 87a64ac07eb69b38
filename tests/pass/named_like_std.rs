//! A struct is judged by its `ShmLayout` impl, not by its name: user types called `Cell`, `Mutex`,
//! `Option` or `Vec` are fields like any other derived struct.
use zeroipc::ShmLayout;

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Cell {
    value: u32,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Mutex {
    state: u32,
    owner: u32,
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Option {
    value: f64,
    present: u8,
    _pad: [u8; 7],
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Vec {
    len: u32,
    items: [u32; 7],
}

#[repr(C)]
#[derive(Clone, Copy, ShmLayout)]
struct Board {
    best: Option,
    scores: Vec,
    cell: Cell,
    lock: Mutex,
    cells: [Cell; 2],
    _pad: [u8; 4],
}

fn main() {
    assert_eq!(Board::LAYOUT.size(), 16 + 32 + 4 + 8 + 8 + 4);
}
