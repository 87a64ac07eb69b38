//! NumPy and C bindings generated from `zeroipc` layout descriptors.
//!
//! One Rust definition, `#[derive(ShmLayout)]`, and Python and C read the same bytes: this crate
//! renders the layout descriptors as a NumPy module (`shared_types.py`: structured dtypes with
//! explicit offsets, import-time size and offset checks, a dtype checker and a zero-copy segment
//! reader) and a C header (`shared_types.h`: fixed-width structs with `_Static_assert`s on every
//! size and offset). Output is deterministic: the same descriptors give the same bytes.
//!
//! # From a build script
//!
//! A build script runs before its own crate compiles, so the shared types must come from a
//! crate it can depend on: put them in a small library crate, add that crate (and
//! `zeroipc-codegen`) to `[build-dependencies]`, and in `build.rs`:
//!
//! ```no_run
//! # use zeroipc::ShmLayout;
//! # #[repr(C)] #[derive(Clone, Copy, ShmLayout)] struct SensorReading { t: f32, h: f32, ts: u64 }
//! fn main() -> Result<(), zeroipc_codegen::Error> {
//!     let generated = zeroipc_codegen::Builder::new().add::<SensorReading>().generate()?;
//!     // Writes $OUT_DIR/shared_types.py and $OUT_DIR/shared_types.h, only if they changed.
//!     generated.write_to_out_dir()?;
//!     println!("cargo::rerun-if-changed=build.rs");
//!     Ok(())
//! }
//! ```
//!
//! `examples/demo` in the workspace is that pattern, complete.
//!
//! # From schema files
//!
//! Without a Rust toolchain at hand, or to check bindings in CI, use the JSON schema
//! ([`schema`]) with the `zeroipc-codegen` binary:
//!
//! ```text
//! zeroipc-codegen generate --schema schemas/demo.json --python py/shared_types.py --c-header include/shared_types.h
//! zeroipc-codegen check    --schema schemas/demo.json --python py/shared_types.py --c-header include/shared_types.h
//! ```
//!
//! or [`Builder::schema_file`] from a build script.

use std::path::{Path, PathBuf};

use zeroipc::{Layout, ShmLayout};

mod c;
mod python;
pub mod schema;
mod writer;

pub use schema::Schema;

/// The version written into generated files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Errors of schema loading, generation and writing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A schema is malformed or violates a layout rule.
    #[error("{0}")]
    Schema(Box<SchemaError>),
    /// Reading or writing a file failed.
    #[error("cannot access `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `OUT_DIR` is not set: `write_to_out_dir` only works inside a build script.
    #[error(
        "the environment variable `OUT_DIR` is not set; call `write_to_out_dir` from a build script, or use `write_to(dir)`"
    )]
    OutDirUnset,
    /// A builder was asked to generate nothing.
    #[error(
        "no types to generate: add Rust types with `add::<T>()` or schema files with `schema_file`"
    )]
    Empty,
}

/// Where and why a schema is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaError {
    /// The schema file, when the schema came from one.
    pub file: Option<PathBuf>,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// 1-based column, where known.
    pub column: Option<usize>,
    /// The type concerned, if any.
    pub type_name: Option<String>,
    /// The field concerned, if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(column) = self.column {
                    write!(f, ":{column}")?;
                }
            }
            f.write_str(": ")?;
        }
        f.write_str("invalid schema")?;
        match (&self.type_name, &self.field) {
            (Some(t), Some(field)) => write!(f, ": type `{t}`, field `{field}`")?,
            (Some(t), None) => write!(f, ": type `{t}`")?,
            _ => {}
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for SchemaError {}

impl Error {
    pub(crate) fn schema(type_name: Option<&str>, message: String) -> Self {
        Self::Schema(Box::new(SchemaError {
            file: None,
            line: None,
            column: None,
            type_name: type_name.map(str::to_owned),
            field: None,
            message,
        }))
    }
}

/// Collects types and output names, then [`generate`](Builder::generate)s the bindings.
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    layouts: Vec<&'static Layout>,
    schema_files: Vec<PathBuf>,
    python_file: String,
    c_header_file: String,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// No types yet; output names `shared_types.py` and `shared_types.h`.
    pub fn new() -> Self {
        Self {
            layouts: Vec::new(),
            schema_files: Vec::new(),
            python_file: "shared_types.py".into(),
            c_header_file: "shared_types.h".into(),
        }
    }

    /// Adds a derived type (and every struct it contains).
    pub fn add<T: ShmLayout>(self) -> Self {
        self.add_layout(T::LAYOUT)
    }

    /// Adds a descriptor (and every struct it contains).
    pub fn add_layout(mut self, layout: &'static Layout) -> Self {
        self.layouts.push(layout);
        self
    }

    /// Adds every type of a schema file.
    pub fn schema_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.schema_files.push(path.into());
        self
    }

    /// The Python module's file name (default `shared_types.py`).
    pub fn python_module(mut self, file_name: impl Into<String>) -> Self {
        self.python_file = file_name.into();
        self
    }

    /// The C header's file name (default `shared_types.h`); it also names the include guard.
    pub fn c_header(mut self, file_name: impl Into<String>) -> Self {
        self.c_header_file = file_name.into();
        self
    }

    /// Renders the bindings. Pure: reads the schema files, writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Empty`], [`Error::Io`] for unreadable schema files, [`Error::Schema`].
    pub fn generate(self) -> Result<Generated, Error> {
        let mut parts = Vec::new();
        if !self.layouts.is_empty() {
            parts.push(Schema::from_layouts(&self.layouts)?);
        }
        for path in &self.schema_files {
            parts.push(Schema::from_file(path)?);
        }
        if parts.is_empty() {
            return Err(Error::Empty);
        }
        let schema = Schema::merge(parts)?;
        // Inside a build script, rebuild when a schema file changes.
        if std::env::var_os("OUT_DIR").is_some() {
            for path in &self.schema_files {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
        Generated::from_schema(schema, self.python_file, self.c_header_file)
    }
}

/// Generated bindings, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Generated {
    /// The schema they were rendered from.
    pub schema: Schema,
    /// The schema's fingerprint (also in both files' header comments).
    pub fingerprint: u64,
    /// The Python module's file name.
    pub python_file: String,
    /// The Python module's text.
    pub python: String,
    /// The C header's file name.
    pub c_header_file: String,
    /// The C header's text.
    pub c_header: String,
}

impl Generated {
    /// Validates and renders `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::Schema`] when the schema breaks a layout or naming rule (see [`schema`]).
    pub fn from_schema(
        schema: Schema,
        python_file: String,
        c_header_file: String,
    ) -> Result<Self, Error> {
        schema.validate()?;
        let fingerprint = schema.fingerprint();
        let python = python::render(&schema, fingerprint);
        let c_header = c::render(&schema, fingerprint, &c_header_file);
        Ok(Self {
            schema,
            fingerprint,
            python_file,
            python,
            c_header_file,
            c_header,
        })
    }

    /// The files as `(name, contents)` pairs.
    pub fn files(&self) -> [(&str, &str); 2] {
        [
            (&self.python_file, &self.python),
            (&self.c_header_file, &self.c_header),
        ]
    }

    /// Writes both files into `dir` (created if missing), touching only files whose bytes
    /// change. Returns whether anything was written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<bool, Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut changed = false;
        for (name, text) in self.files() {
            changed |= write_if_changed(&dir.join(name), text)?;
        }
        Ok(changed)
    }

    /// [`write_to`](Self::write_to) the build script's `OUT_DIR`; returns that directory.
    ///
    /// # Errors
    ///
    /// [`Error::OutDirUnset`] outside a build script, [`Error::Io`].
    pub fn write_to_out_dir(&self) -> Result<PathBuf, Error> {
        let dir = std::env::var_os("OUT_DIR")
            .map(PathBuf::from)
            .ok_or(Error::OutDirUnset)?;
        self.write_to(&dir)?;
        Ok(dir)
    }

    /// Compares files on disk with what was generated: `paths` pairs each file with its expected
    /// text. Returns a unified diff per stale file (a missing file counts as empty), none when
    /// everything is current.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a file exists but cannot be read.
    pub fn check(&self, paths: &[(&Path, &str)]) -> Result<Vec<String>, Error> {
        let mut diffs = Vec::new();
        for (path, expected) in paths {
            let current = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(source) => {
                    return Err(Error::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            };
            if current != *expected {
                diffs.push(unified_diff(path, &current, expected));
            }
        }
        Ok(diffs)
    }
}

/// Writes `text` to `path` unless the file already holds exactly these bytes. The new bytes go
/// to a temporary file beside it that is then renamed over it, so that a reader (or a crash)
/// never sees a partial file.
///
/// # Errors
///
/// [`Error::Io`].
pub fn write_if_changed(path: &Path, text: &str) -> Result<bool, Error> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })?;
    Ok(true)
}

/// A unified diff from `current` (on disk at `path`) to `expected`.
pub fn unified_diff(path: &Path, current: &str, expected: &str) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(current, expected)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (on disk)"), &format!("{name} (generated)"))
        .to_string()
}
