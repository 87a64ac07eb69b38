//! The container kinds (FORMAT.md §4): fixed-length arrays and the bounded lock-free queue and
//! stack. Ring, Map, Set and Pool join them here, one file each.

pub(crate) mod array;
pub(crate) mod queue;
pub(crate) mod stack;
