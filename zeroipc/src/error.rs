//! The one error type of the crate.
//!
//! Every variant carries what a caller needs to act on it: the segment or entry name, the offset
//! or index involved, and the sizes that did not agree. Messages are lower case with values in
//! backticks, for example ``segment `/sensors` has no entry `temps` ``.

use std::fmt;
use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when creating, opening or using a segment or a structure in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A segment name was rejected before any system call was made.
    #[error("invalid segment name `{name}`: {reason}")]
    InvalidSegmentName {
        /// The name as given (with control characters escaped).
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A structure (table entry) name was rejected before the table was touched.
    #[error("invalid entry name `{name}`: {reason}")]
    InvalidEntryName {
        /// The name as given (with control characters escaped).
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// An argument other than a name was out of range.
    #[error("invalid argument `{what}`: {reason}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// `create` found an existing object with that name and left it untouched.
    #[error("segment `{name}` already exists")]
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// No shared-memory object with that name exists.
    #[error("segment `{name}` does not exist")]
    NotFound {
        /// The segment name.
        name: String,
    },
    /// The object exists but its creator has not finished initialising it (zero length or a
    /// zero magic word). Retrying shortly usually succeeds.
    #[error("segment `{name}` is not initialised yet (its creator may still be setting it up)")]
    NotReady {
        /// The segment name.
        name: String,
    },
    /// The caller lacks the permission to open or create the object.
    #[error("permission denied for segment `{name}`")]
    PermissionDenied {
        /// The segment name.
        name: String,
    },
    /// The name resolves to something that is not a regular file (a symlink, FIFO, directory,
    /// socket or device): it was refused without being mapped.
    #[error("segment `{name}` is not a regular file (found a {kind})")]
    NotRegularFile {
        /// The segment name.
        name: String,
        /// What was found instead.
        kind: &'static str,
    },
    /// The system could not reserve memory for a new segment.
    #[error("no space to create segment `{name}` of `{size}` bytes")]
    NoSpace {
        /// The segment name.
        name: String,
        /// The requested size in bytes.
        size: u64,
    },
    /// Part of an existing segment has no memory behind it (its creator only set its size, as
    /// the other implementations do, so its pages are provided on first touch) and the file
    /// system cannot provide it: touching those bytes would kill the process with `SIGBUS`.
    #[error(
        "segment `{name}` has `{unbacked}` bytes with no memory reserved behind them, and \
         {reason}; touching them would kill the process (SIGBUS)"
    )]
    Unbacked {
        /// The segment name.
        name: String,
        /// Bytes in holes: not yet backed by memory.
        unbacked: u64,
        /// Why they could not be reserved.
        reason: String,
    },
    /// An operating-system call failed for a reason not covered by another variant.
    #[error("`{op}` failed for segment `{name}`: {source}")]
    Io {
        /// The system call or operation.
        op: &'static str,
        /// The segment name.
        name: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The segment's table header is not a valid ZeroIPC v2 header.
    #[error("segment `{segment}` has a corrupt header: {defect}")]
    CorruptHeader {
        /// The segment name.
        segment: String,
        /// What is wrong with it.
        defect: HeaderDefect,
    },
    /// A table entry is malformed; the structure behind it cannot be opened.
    #[error("segment `{segment}` entry {index} (`{name}`) is corrupt: {defect}")]
    CorruptEntry {
        /// The segment name.
        segment: String,
        /// Index of the entry in the table.
        index: u32,
        /// The entry's name, lossily decoded.
        name: String,
        /// What is wrong with it.
        defect: EntryDefect,
    },
    /// A structure's own header disagrees with its table entry or is out of range: the bytes do
    /// not look like a structure of this kind. They may hold another kind (a queue opened as an
    /// array), or be corrupt.
    #[error(
        "entry `{name}` of segment `{segment}` does not look like a {kind}: {reason}; it may be \
         another kind of structure, or corrupt"
    )]
    CorruptStructure {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The structure kind that was expected (`array`, `queue`, ...).
        kind: &'static str,
        /// What is inconsistent.
        reason: String,
    },
    /// No entry with that name exists in the table.
    #[error("segment `{segment}` has no entry `{name}`")]
    EntryNotFound {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
    },
    /// An entry with that name already exists (nothing was changed).
    #[error("segment `{segment}` already has an entry `{name}`")]
    DuplicateEntry {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
    },
    /// Every table slot is in use (nothing was changed).
    #[error("segment `{segment}` table is full (`{max_entries}` entries)")]
    TableFull {
        /// The segment name.
        segment: String,
        /// The table's capacity.
        max_entries: u32,
    },
    /// The segment has too little free space left for the structure (nothing was changed).
    #[error(
        "segment `{segment}` has no room for `{name}`: needs `{requested}` bytes at offset \
         `{offset}`, `{available}` available"
    )]
    OutOfSpace {
        /// The segment name.
        segment: String,
        /// The entry that was being created.
        name: String,
        /// Bytes requested for the structure.
        requested: u64,
        /// Where the structure would have started.
        offset: u64,
        /// Bytes left from that offset to the end of the segment.
        available: u64,
    },
    /// The element type does not match what is stored: its size disagrees with the entry.
    #[error(
        "entry `{name}` of segment `{segment}` does not hold `{expected}`-byte elements \
         ({found}); open it with the type it was created with"
    )]
    TypeMismatch {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// `size_of::<T>()` of the type the caller asked for.
        expected: usize,
        /// What the stored geometry says instead.
        found: String,
    },
    /// The segment describes the structure as another kind than the one asked for.
    #[error(
        "entry `{name}` of segment `{segment}` is a `{found}`, not a `{requested}`; open it as \
         the kind it is"
    )]
    KindMismatch {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The kind asked for.
        requested: &'static str,
        /// The kind the segment records (possibly one this release does not know).
        found: String,
    },
    /// The segment describes the structure's elements with another layout than the type it was
    /// opened with (a stale binding, or another type of the same size).
    #[error("entry `{name}` of segment `{segment}` {difference}")]
    LayoutMismatch {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The two types and where they first differ.
        difference: Box<LayoutDifference>,
    },
    /// A structure opened without a layout is not described by the segment, so its element
    /// type is unknown.
    #[error(
        "entry `{name}` of segment `{segment}` is not described (it was made by another \
         implementation, or with descriptions off): give its layout"
    )]
    NotDescribed {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
    },
    /// `open_or_create` found an existing structure with a different capacity.
    #[error(
        "entry `{name}` of segment `{segment}` exists with capacity `{found}`, not the requested \
         `{requested}`"
    )]
    CapacityMismatch {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The capacity asked for.
        requested: u64,
        /// The capacity stored.
        found: u64,
    },
    /// An index was outside the structure.
    #[error(
        "index `{index}` is out of bounds for entry `{name}` of segment `{segment}`, of length \
         `{len}`"
    )]
    IndexOutOfBounds {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The index given.
        index: usize,
        /// The structure's length.
        len: usize,
    },
    /// The segment belongs to another user and the options did not allow that.
    #[error(
        "segment `{name}` is owned by uid `{owner}`, not by this process (uid `{euid}`); allow it \
         with `SegmentOptions::allow_foreign_owner(true)`"
    )]
    ForeignOwner {
        /// The segment name.
        name: String,
        /// The file's owner.
        owner: u32,
        /// This process's effective uid.
        euid: u32,
    },
    /// The table lock could not be taken in time: another process holds it (or is stopped
    /// while holding it).
    #[error("timed out after `{waited_ms}` ms waiting for the table lock of segment `{segment}`")]
    LockTimeout {
        /// The segment name.
        segment: String,
        /// How long this call waited.
        waited_ms: u64,
    },
    /// A slot stayed in an intermediate state (being written or read by another process) for
    /// longer than the operation's bound: that peer is stalled or died mid-operation.
    #[error(
        "entry `{name}` of segment `{segment}`: slot `{slot}` stayed in state `{state}` for \
         `{waited_ms}` ms; the process using it is stalled or died"
    )]
    PeerStalled {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The slot index.
        slot: u32,
        /// The state it was stuck in.
        state: u32,
        /// How long the operation waited.
        waited_ms: u64,
    },
    /// A blocking operation given a timeout did not complete in time. Nothing was changed: a
    /// value that was to be stored is handed back (see [`PushError`](crate::PushError)).
    #[error(
        "`{op}` on entry `{name}` of segment `{segment}` timed out after `{waited_ms}` ms \
         ({condition})"
    )]
    Timeout {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The operation (`push_timeout`, `pop_timeout`, ...).
        op: &'static str,
        /// What it was waiting for, e.g. `the queue stayed full`.
        condition: &'static str,
        /// How long it waited.
        waited_ms: u64,
    },
    /// An access the crate computed from validated geometry fell outside the mapping or was
    /// misaligned. This indicates a bug in `zeroipc` (or a segment shrunk under it), not bad
    /// input; please report it.
    #[error(
        "internal bounds check failed in segment `{segment}` while trying to {what} ({problem})"
    )]
    Internal {
        /// The segment name.
        segment: String,
        /// What the crate was doing.
        what: &'static str,
        /// `outside the mapping` or `misaligned`.
        problem: &'static str,
    },
    /// A write was attempted through a segment opened read-only.
    #[error("segment `{segment}` was opened read-only")]
    ReadOnly {
        /// The segment name.
        segment: String,
    },
    /// `open_or_create` found an existing structure made with another parameter (a
    /// semaphore's maximum, a barrier's participants, a latch's count).
    #[error(
        "entry `{name}` of segment `{segment}` exists with {what} `{found}`, not the requested \
         `{requested}`"
    )]
    ParameterMismatch {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// Which parameter.
        what: &'static str,
        /// The value asked for.
        requested: i64,
        /// The value stored.
        found: i64,
    },
    /// A release found the semaphore already holding its maximum of permits; nothing changed.
    #[error(
        "semaphore `{name}` of segment `{segment}` already holds its maximum `{count}` permits"
    )]
    SemaphoreFull {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The permits it holds.
        count: i32,
    },
    /// An unlock found the mutex unlocked: a process that did not hold it unlocked it (the
    /// other implementations do not check the holder).
    #[error("mutex `{name}` of segment `{segment}` was already unlocked")]
    NotLocked {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
    },
    /// The process holding a lock (or running a once) died holding it. See
    /// [`LockError::OwnerDied`], which hands over the lock with this error.
    #[error(
        "entry `{name}` of segment `{segment}` was held by process `{pid}`, which died holding it; \
         what it protects may be half updated"
    )]
    OwnerDied {
        /// The segment name.
        segment: String,
        /// The entry name.
        name: String,
        /// The process that died.
        pid: u32,
    },
}

/// What a lock call returns: the guard, or why not simply.
pub type LockResult<G> = std::result::Result<G, LockError<G>>;

/// Why a lock ([`Mutex::lock`](crate::Mutex::lock), ...) did not simply acquire.
///
/// As a [`PushError`] hands back the value it did not store, `OwnerDied` hands over the lock
/// it did take: the caller holds it, and decides what to do about the state the dead holder
/// may have left half updated. `?` converts either into an [`Error`] (dropping the guard,
/// which unlocks).
///
/// The calls of a [`Signal`](crate::Signal) lock and unlock within themselves: there, `G` is
/// the call's result (the value read, the new version), and `OwnerDied` says that the call
/// completed after taking the mutex over from a dead holder.
pub enum LockError<G> {
    /// The holder died holding the lock; the caller holds it now, through the guard. The error
    /// is [`Error::OwnerDied`], naming the dead process.
    OwnerDied(G, Error),
    /// The lock was not acquired: [`Error::Timeout`], [`Error::CorruptStructure`], ...
    Failed(Error),
}

impl<G> LockError<G> {
    /// The guard, when the lock was taken over from a dead holder.
    pub fn into_guard(self) -> Option<G> {
        match self {
            Self::OwnerDied(guard, _) => Some(guard),
            Self::Failed(_) => None,
        }
    }

    /// The error.
    pub fn error(&self) -> &Error {
        match self {
            Self::OwnerDied(_, e) | Self::Failed(e) => e,
        }
    }

    /// The error, dropping a guard (which unlocks).
    pub fn into_error(self) -> Error {
        match self {
            Self::OwnerDied(_, e) | Self::Failed(e) => e,
        }
    }

    /// Whether the holder died (and the caller holds the lock).
    pub fn owner_died(&self) -> bool {
        matches!(self, Self::OwnerDied(..))
    }
}

impl<G> From<Error> for LockError<G> {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl<G> From<LockError<G>> for Error {
    fn from(e: LockError<G>) -> Self {
        e.into_error()
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OwnerDied(_, e) => f.debug_tuple("OwnerDied").field(e).finish(),
            Self::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OwnerDied(_, e) => write!(f, "lock taken over: {e}"),
            Self::Failed(e) => write!(f, "lock failed: {e}"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.error())
    }
}

/// Why a push (into a [`Queue`](crate::Queue), a [`Stack`](crate::Stack), ...) handed its value
/// back. Nothing was stored in either case.
///
/// `Full` is the one outcome that is not an [`Error`]: it is cheap (no allocation), so a
/// producer may poll a full structure in a loop. Everything else, including a timeout, is an
/// [`Error`] that names the segment and the entry.
#[derive(Debug)]
pub enum PushError<T> {
    /// The structure is full.
    Full(T),
    /// The push did not happen for the reason the error gives: [`Error::Timeout`] (still full
    /// at the deadline), [`Error::PeerStalled`] or [`Error::CorruptStructure`].
    Failed(T, Error),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Failed(v, _) => v,
        }
    }

    /// Whether the structure was full (and nothing else went wrong).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// The error, unless the structure was simply full.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Full(_) => None,
            Self::Failed(_, e) => Some(e),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the structure is full"),
            Self::Failed(_, e) => write!(f, "push failed: {e}"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for PushError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Full(_) => None,
            Self::Failed(_, e) => Some(e),
        }
    }
}

/// What is wrong with a segment's 32-byte table header (FORMAT.md §2.1, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderDefect {
    /// The file is shorter than the 32-byte header.
    TooShort {
        /// File length in bytes.
        len: u64,
    },
    /// The magic word is not `0x5A49504D`.
    BadMagic {
        /// The word found.
        found: u32,
    },
    /// The version is not 2.
    BadVersion {
        /// The version found.
        found: u32,
    },
    /// `max_entries` is zero. (FORMAT.md §9 suggests reading 0 as 64; no implementation writes
    /// 0, so this crate treats it as corruption.)
    ZeroMaxEntries,
    /// `max_entries` exceeds the supported limit of 2^20 entries (a larger table is not scanned).
    MaxEntriesTooLarge {
        /// The `max_entries` found.
        max_entries: u32,
        /// The limit.
        limit: u32,
    },
    /// The entry table (`32 + 48 * max_entries` bytes) does not fit in the file.
    TableTooLarge {
        /// The `max_entries` found.
        max_entries: u32,
        /// File length in bytes.
        file_size: u64,
    },
    /// More entries are in use than the table has slots.
    EntryCountTooLarge {
        /// The `entry_count` found.
        entry_count: u32,
        /// The table's `max_entries`.
        max_entries: u32,
    },
    /// `memory_size` differs from the size of the file.
    MemorySizeMismatch {
        /// The `memory_size` found.
        memory_size: u64,
        /// File length in bytes.
        file_size: u64,
    },
    /// `next_offset` lies inside the table or past `memory_size`.
    NextOffsetOutOfRange {
        /// The `next_offset` found.
        next_offset: u64,
        /// The end of the entry table.
        table_end: u64,
        /// The `memory_size` of the segment.
        memory_size: u64,
    },
}

impl fmt::Display for HeaderDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => {
                write!(f, "file is `{len}` bytes, shorter than the 32-byte header")
            }
            Self::BadMagic { found } => {
                write!(
                    f,
                    "magic is `{found:#010x}`, not `0x5a49504d` (not a ZeroIPC segment)"
                )
            }
            Self::BadVersion { found } => {
                write!(
                    f,
                    "format version is `{found}`, only version `2` is supported"
                )
            }
            Self::ZeroMaxEntries => f.write_str("`max_entries` is `0`"),
            Self::MaxEntriesTooLarge { max_entries, limit } => write!(
                f,
                "`max_entries` `{max_entries}` exceeds the supported `{limit}`"
            ),
            Self::TableTooLarge {
                max_entries,
                file_size,
            } => write!(
                f,
                "a table of `{max_entries}` entries does not fit in the `{file_size}`-byte file"
            ),
            Self::EntryCountTooLarge {
                entry_count,
                max_entries,
            } => write!(
                f,
                "`entry_count` `{entry_count}` exceeds `max_entries` `{max_entries}`"
            ),
            Self::MemorySizeMismatch {
                memory_size,
                file_size,
            } => write!(
                f,
                "`memory_size` `{memory_size}` differs from the file size `{file_size}`"
            ),
            Self::NextOffsetOutOfRange {
                next_offset,
                table_end,
                memory_size,
            } => write!(
                f,
                "`next_offset` `{next_offset}` is outside `{table_end}..={memory_size}`"
            ),
        }
    }
}

/// What is wrong with one 48-byte table entry (FORMAT.md §2.2, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryDefect {
    /// The 32 name bytes contain no NUL terminator.
    NameNotTerminated,
    /// The name is empty.
    NameEmpty,
    /// The name is not valid UTF-8.
    NameNotUtf8,
    /// Another entry has the same name, so a lookup by name is ambiguous.
    DuplicateName {
        /// Index of the other entry.
        other: u32,
    },
    /// The structure starts inside the header or entry table.
    OffsetInsideTable {
        /// The offset found.
        offset: u64,
        /// The end of the entry table.
        table_end: u64,
    },
    /// The offset is not a multiple of 8.
    Misaligned {
        /// The offset found.
        offset: u64,
    },
    /// `offset + size` overflows or reaches past `memory_size`.
    OutOfBounds {
        /// The offset found.
        offset: u64,
        /// The size found.
        size: u64,
        /// The segment's `memory_size`.
        memory_size: u64,
    },
    /// The structure reaches past `next_offset`, into space the allocator considers free.
    BeyondNextOffset {
        /// End of the structure.
        end: u64,
        /// The header's `next_offset`.
        next_offset: u64,
    },
    /// The structure's bytes overlap another entry's.
    Overlap {
        /// Index of the other entry.
        other: u32,
    },
}

impl fmt::Display for EntryDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NameNotTerminated => f.write_str("the 32 name bytes have no NUL terminator"),
            Self::NameEmpty => f.write_str("the name is empty"),
            Self::NameNotUtf8 => f.write_str("the name is not valid UTF-8"),
            Self::DuplicateName { other } => write!(f, "entry {other} has the same name"),
            Self::OffsetInsideTable { offset, table_end } => write!(
                f,
                "offset `{offset}` lies inside the table, which ends at `{table_end}`"
            ),
            Self::Misaligned { offset } => write!(f, "offset `{offset}` is not 8-aligned"),
            Self::OutOfBounds {
                offset,
                size,
                memory_size,
            } => write!(
                f,
                "`{size}` bytes at offset `{offset}` reach past the segment end `{memory_size}`"
            ),
            Self::BeyondNextOffset { end, next_offset } => write!(
                f,
                "the structure ends at `{end}`, past `next_offset` `{next_offset}`"
            ),
            Self::Overlap { other } => write!(f, "its bytes overlap entry {other}"),
        }
    }
}

impl Error {
    /// Maps an I/O error of a segment-level system call onto the most specific variant.
    pub(crate) fn from_io(op: &'static str, name: &str, source: io::Error) -> Self {
        let name = name.to_owned();
        match source.kind() {
            io::ErrorKind::NotFound => Self::NotFound { name },
            io::ErrorKind::AlreadyExists => Self::AlreadyExists { name },
            io::ErrorKind::PermissionDenied => Self::PermissionDenied { name },
            _ => Self::Io { op, name, source },
        }
    }
}

/// Renders a possibly hostile name for an error message: control and invisible formatting
/// characters (which could reorder the displayed text) are escaped, and
/// the length is capped so that a message stays one readable line.
pub(crate) fn printable(name: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || crate::name::is_invisible_format(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// How the element type a structure was opened with differs from the one the segment
/// describes it with ([`Error::LayoutMismatch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayoutDifference {
    /// The type asked for.
    pub expected_type: String,
    /// The type the segment records.
    pub found_type: String,
    /// The first field (a path such as `reading.wind[]`) that differs, or `the element`.
    pub field: String,
    /// How it differs.
    pub what: String,
}

impl fmt::Display for LayoutDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "holds `{}`, not `{}`: {}: {}",
            self.found_type, self.expected_type, self.field, self.what
        )
    }
}
