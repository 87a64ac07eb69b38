//! NumPy and C bindings generated from `zeroipc` layout descriptors.
//!
//! This crate will render [`zeroipc::Layout`] descriptors as a NumPy module (`shared_types.py`)
//! and a C header (`shared_types.h`), from a `build.rs` or from schema files. It depends only on
//! the descriptor types, never on the mapping.
