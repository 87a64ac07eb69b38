//! Named POSIX shared-memory segments (FORMAT.md §1) and their metadata table.
//!
//! A [`Segment`] is one object in `/dev/shm`, mapped read-write (or read-only) into this
//! process, with a validated ZeroIPC v2 table at offset 0. Structures ([`Array`](crate::Array),
//! ...) own a clone of the segment (shared ownership of the one mapping), so none can outlive
//! the mapping and none needs a lifetime.
//!
//! Differences from the other ZeroIPC implementations, all deliberate:
//! - `create` never clobbers: an existing name is [`Error::AlreadyExists`] and its bytes are left
//!   alone (C++, Python and Go unlink and recreate; C silently reuses stale bytes);
//! - the default mode is `0600`, applied with `fchmod` so that the umask cannot change it;
//! - `max_entries` is read from the header at open, as the C implementation does, never taken
//!   from the caller (FORMAT.md §1.2);
//! - the size of the file (`fstat`), not the header's `memory_size`, bounds every access, and the
//!   two must agree;
//! - a failed structure creation changes nothing in the segment (FORMAT.md §2.5), and concurrent
//!   creators in several processes are serialised (see [`crate::table`'s protocol](crate::table));
//! - the header's magic is written last, so a concurrent opener sees [`Error::NotReady`] or a
//!   valid table, never a torn one;
//! - storage is reserved with `posix_fallocate` at creation, so that an over-large segment fails
//!   with [`Error::NoSpace`] instead of a `SIGBUS` on first touch.
//!
//! Segments are opened with `O_NOFOLLOW` and refused unless `fstat` reports a regular file, so a
//! planted symlink, FIFO or directory is never followed or mapped. A peer that shrinks the file
//! after we mapped it can still make an access fault (`SIGBUS`); POSIX offers no way to prevent
//! this for named shared memory.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{EntryDefect, Error, HeaderDefect, Result, printable};
use crate::name;
use crate::raw::{Access, Mapping, Region};
use crate::table::{self, AllocError, Entry, Geometry, HeaderInfo, Table};
use crate::wait::DEFAULT_POLL_INTERVAL;

/// The default number of table slots, as in every other implementation.
pub const DEFAULT_MAX_ENTRIES: u32 = 64;

/// The default permission bits of a new segment: owner read and write only.
pub const DEFAULT_MODE: u32 = 0o600;

/// How long [`SegmentOptions::open_or_create`] waits for a concurrent creator to finish.
const READY_WAIT: Duration = Duration::from_secs(1);

/// The default bound on waiting for the table lock ([`SegmentOptions::lock_timeout`]).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for creating or opening a segment, in the style of [`std::fs::OpenOptions`].
///
/// ```no_run
/// use zeroipc::SegmentOptions;
///
/// let seg = SegmentOptions::new().max_entries(16).mode(0o660).create("/sensors", 1 << 20)?;
/// # Ok::<(), zeroipc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    max_entries: u32,
    mode: u32,
    read_only: bool,
    unlink_on_drop: bool,
    allow_foreign_owner: bool,
    lock_timeout: Duration,
    runtime_entry: bool,
    descriptions: bool,
    poll_interval: Duration,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentOptions {
    /// Defaults: 64 table entries, mode `0600`, read-write, keep the segment on drop, refuse
    /// segments owned by another user, wait at most 5 s for the table lock.
    pub fn new() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            mode: DEFAULT_MODE,
            read_only: false,
            unlink_on_drop: false,
            allow_foreign_owner: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            runtime_entry: true,
            descriptions: true,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// How often at least a blocked call (`pop_timeout`, `push_timeout`, ...) on this segment
    /// looks at the shared words while it sleeps: the bound on how late it notices a change
    /// made by another ZeroIPC implementation, none of which wakes sleepers (changes made by
    /// this crate wake it at once, through the waiter counts of the runtime entry). Default
    /// [`DEFAULT_POLL_INTERVAL`] (64 ms).
    ///
    /// A wait starts with much shorter sleeps (from 50 µs, doubling), so a change soon after a
    /// call blocks is seen sooner; a handle that sees a change nobody woke it for looks every
    /// 1 ms for the next 10 s; and without waiter counts (no runtime entry) waiters look every
    /// 1 ms, since nothing can wake them. Each look is a timer wake-up, about 5 µs of CPU on bare
    /// metal and 50–90 µs in a virtual machine: at 64 ms an idle waiter costs 1–3 ms of CPU a
    /// second. Lower it (to 1 ms, the other implementations' own polling step) where peers of
    /// other implementations feed blocked consumers of this one from the start.
    pub fn poll_interval(&mut self, interval: Duration) -> &mut Self {
        self.poll_interval = interval;
        self
    }

    /// Whether handles of this crate may add its runtime entry, `zeroipc.runtime` (35,176
    /// bytes and one table slot; on by default), to a segment they block on. It holds the
    /// waiter counts that let a push or pop wake a sleeping peer at once, and the records and
    /// claims that let a killed process's claim be undone. Without it, blocking calls notice
    /// changes by looking every 1 ms (about 1,000 timer wake-ups a second while they wait), and
    /// a process killed mid-operation can leave a queue or stack stuck, as in the other
    /// implementations. Turn it off for segments that must stay byte-identical to what another
    /// implementation would write. The other implementations ignore the entry.
    ///
    /// A handle looks the entry up (or makes it) once, when it is opened: a handle of a process
    /// that had it off does not wake waiters of processes that later added it; those notice its
    /// changes as they notice another implementation's, within 1 ms once they have seen one.
    pub fn runtime_entry(&mut self, allow: bool) -> &mut Self {
        self.runtime_entry = allow;
        self
    }

    /// Whether structures created through this handle are described in the segment (on by
    /// default): their kind and element layout, with its fingerprint, are recorded in the entry
    /// `zeroipc.layouts` (one table slot per segment, made with the first structure; 1 KiB, or
    /// 1/64 of the segment up to 64 KiB; FORMAT.md appendix D). A described structure opened
    /// with another element type fails with [`Error::LayoutMismatch`] naming the first field
    /// that differs, opened as another kind with [`Error::KindMismatch`]; the inspector and
    /// [`DynArray`](crate::DynArray) and its siblings decode it without being told its type.
    /// The other implementations ignore the entry. Turn it off for segments that must be
    /// byte-identical to what another implementation would write, or to open a structure
    /// whose description is wrong: a handle with descriptions off neither writes them nor
    /// checks them at open (sizes are still checked), and its run-time typed opens need a
    /// layout.
    ///
    /// [`Error::LayoutMismatch`]: crate::Error::LayoutMismatch
    /// [`Error::KindMismatch`]: crate::Error::KindMismatch
    pub fn descriptions(&mut self, describe: bool) -> &mut Self {
        self.descriptions = describe;
        self
    }

    /// Accepts segments whose file belongs to another user. By default `open` refuses them
    /// ([`Error::ForeignOwner`]), so that an object planted under an expected name by someone else
    /// is not trusted; allow it when sharing across users on purpose (with a mode such as
    /// `0o660`).
    pub fn allow_foreign_owner(&mut self, allow: bool) -> &mut Self {
        self.allow_foreign_owner = allow;
        self
    }

    /// How long creating a structure may wait for the table lock before it fails with
    /// [`Error::LockTimeout`]. The lock is held for microseconds by a live creator; a long wait
    /// means a peer is stopped or hostile.
    pub fn lock_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lock_timeout = timeout;
        self
    }

    /// Number of table slots of a segment this creates (ignored by `open`, which reads it from
    /// the header). Default [`DEFAULT_MAX_ENTRIES`] (64).
    ///
    /// Keep the default for segments that other ZeroIPC implementations open: their openers
    /// assume 64 entries unless told otherwise, and the C++ and Python ones refuse a segment
    /// whose `entry_count` exceeds the table size they assume. A larger table is for segments
    /// only this crate (or openers configured to match) will read; a smaller one only saves
    /// `48` bytes per slot.
    pub fn max_entries(&mut self, max_entries: u32) -> &mut Self {
        self.max_entries = max_entries;
        self
    }

    /// Permission bits of a segment this creates, applied exactly (the umask does not apply).
    /// Use `0o660` or `0o666` to share with other users.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Opens the segment read-only: every write returns [`Error::ReadOnly`].
    pub fn read_only(&mut self, read_only: bool) -> &mut Self {
        self.read_only = read_only;
        self
    }

    /// Unlinks the segment when the last handle to it is dropped: the `Segment` that created it,
    /// every clone of it and every structure handle opened through them. Only a segment this
    /// process created is ever unlinked, and only if its name still refers to that file.
    pub fn unlink_on_drop(&mut self, unlink: bool) -> &mut Self {
        self.unlink_on_drop = unlink;
        self
    }

    /// Creates a new segment of `size` bytes with an empty table.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegmentName`] before any system call; [`Error::InvalidArgument`] when
    /// `size` cannot hold the table or `max_entries`/`mode` are out of range;
    /// [`Error::AlreadyExists`] when the name is taken (the existing object is not touched);
    /// [`Error::NoSpace`] when the system cannot back `size` bytes; [`Error::PermissionDenied`]
    /// and [`Error::Io`] for other system failures. On error nothing is left behind.
    pub fn create(&self, name: &str, size: u64) -> Result<Segment> {
        let canonical = name::segment_name(name)?;
        if self.read_only {
            return Err(Error::InvalidArgument {
                what: "read_only",
                reason: "a segment cannot be created read-only".into(),
            });
        }
        if self.mode & !0o777 != 0 {
            return Err(Error::InvalidArgument {
                what: "mode",
                reason: format!("`{:#o}` has bits outside 0o777", self.mode),
            });
        }
        if self.max_entries == 0 || self.max_entries > table::MAX_ENTRIES_LIMIT {
            return Err(Error::InvalidArgument {
                what: "max_entries",
                reason: format!(
                    "`{}` is outside `1..={}`",
                    self.max_entries,
                    table::MAX_ENTRIES_LIMIT
                ),
            });
        }
        let table_end = table::table_end(self.max_entries);
        if size < table_end {
            return Err(Error::InvalidArgument {
                what: "size",
                reason: format!(
                    "`{size}` bytes cannot hold the `{table_end}`-byte table of `{}` entries",
                    self.max_entries
                ),
            });
        }
        // A file size is an `off_t` (i64), and a mapping at most `isize::MAX` bytes: refuse
        // larger sizes here, before any system call, instead of failing in `ftruncate`.
        let len = usize::try_from(size)
            .ok()
            .filter(|_| i64::try_from(size).is_ok())
            .ok_or_else(|| Error::InvalidArgument {
                what: "size",
                reason: format!(
                    "`{size}` bytes exceed the largest shared-memory object, `2^63 - 1` bytes"
                ),
            })?;

        let path = name::shm_path(&canonical);
        let flags = OFlags::CREATE
            | OFlags::EXCL
            | OFlags::RDWR
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        let fd = rustix::fs::open(&path, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| Error::from_io("open", &canonical, e.into()))?;
        let seg_name = canonical.as_str();
        let sys = |op| move |e: Errno| Error::from_io(op, seg_name, e.into());
        let identity = file_identity(&fd).map_err(sys("fstat"))?;
        // From here on the object is ours: remove it again if anything fails.
        let mut created = Created {
            path: Some(&path),
            identity,
        };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.mode)).map_err(sys("fchmod"))?;
        rustix::fs::ftruncate(&fd, size).map_err(|e| match e {
            // The file system's own limit on file sizes (tmpfs: far below 2^63).
            Errno::FBIG | Errno::INVAL => Error::InvalidArgument {
                what: "size",
                reason: format!("the file system refuses a shared-memory object of `{size}` bytes"),
            },
            e => sys("ftruncate")(e),
        })?;
        loop {
            match rustix::fs::fallocate(&fd, rustix::fs::FallocateFlags::empty(), 0, size) {
                Ok(()) | Err(Errno::OPNOTSUPP) => break,
                Err(Errno::INTR) => continue,
                Err(Errno::NOSPC | Errno::FBIG | Errno::NOMEM) => {
                    return Err(Error::NoSpace {
                        name: seg_name.to_owned(),
                        size,
                    });
                }
                Err(e) => return Err(sys("fallocate")(e)),
            }
        }
        let file = File::from(fd);
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|e| Error::from_io("mmap", &canonical, e))?;
        let mapping = Mapping::new(map, true);
        table::init_header(mapping.region(), self.max_entries, size)
            .map_err(|a| access_error(&canonical, "initialise the header", a))?;
        created.path = None;
        let geometry = Geometry {
            max_entries: self.max_entries,
            memory_size: size,
            table_end,
        };
        Ok(Segment {
            owner: Arc::new(Owner {
                path: name::shm_path(&canonical),
                identity,
                created: true,
                unlink_on_drop: self.unlink_on_drop,
            }),
            name: canonical,
            file: Arc::new(file),
            mapping: Arc::new(mapping),
            file_size: size,
            geometry,
            lock: Arc::new(Mutex::new(())),
            lock_timeout: self.lock_timeout,
            runtime_entry: self.runtime_entry,
            descriptions: self.descriptions,
            poll_interval: self.poll_interval,
            identity,
        })
    }

    /// Opens an existing segment and validates its table header.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegmentName`], [`Error::NotFound`], [`Error::PermissionDenied`],
    /// [`Error::NotRegularFile`] for symlinks, FIFOs, directories and devices,
    /// [`Error::NotReady`] while a creator is still initialising it,
    /// [`Error::CorruptHeader`] naming the first header defect, and [`Error::Unbacked`] when the
    /// segment has holes (pages its creator never touched, as the other implementations leave
    /// them) that the file system has no room to back. Holes are reserved at open (also by a
    /// read-only open, through a writable descriptor when this process may open one; that
    /// changes no byte but does count the memory, and updates the file's change time), so that
    /// a full file system is this error rather than a `SIGBUS` on first touch. Where they cannot
    /// be reserved, opening only checks that the file system has room for them at that moment.
    pub fn open(&self, name: &str) -> Result<Segment> {
        let canonical = name::segment_name(name)?;
        let (fd, file_size, identity) =
            open_regular(&canonical, self.read_only, self.allow_foreign_owner)?;
        self.open_fd(canonical, fd, file_size, identity)
    }

    /// Maps a private copy of `bytes` (an anonymous `memfd`, nothing in `/dev/shm`) and opens it
    /// as a segment with these options, validating it exactly as [`open`](Self::open) does. For
    /// fuzzing and tests of untrusted input; the segment is named `/(memory)` in errors.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`Error::Io`] when the memfd cannot be made.
    #[doc(hidden)]
    pub fn open_bytes(&self, bytes: &[u8]) -> Result<Segment> {
        let (fd, file_size, identity) = memfd_with(bytes)?;
        self.open_fd(MEMORY_NAME.to_owned(), fd, file_size, identity)
    }

    /// The part of `open` after the object is found: map, validate, wrap.
    fn open_fd(
        &self,
        canonical: String,
        fd: OwnedFd,
        file_size: u64,
        identity: Identity,
    ) -> Result<Segment> {
        if file_size == 0 {
            return Err(Error::NotReady { name: canonical });
        }
        let reserve = if self.read_only {
            Reserve::IfPermitted
        } else {
            Reserve::Own
        };
        reserve_holes(&fd, &canonical, file_size, reserve)?;
        let file = File::from(fd);
        let (mapping, file_size) = map_file(&file, &canonical, file_size, self.read_only)?;
        let (_, geometry) =
            table::validate_header(mapping.region(), file_size).map_err(|defect| match defect {
                HeaderDefect::BadMagic { found: 0 } => Error::NotReady {
                    name: canonical.clone(),
                },
                defect => Error::CorruptHeader {
                    segment: canonical.clone(),
                    defect,
                },
            })?;
        Ok(Segment {
            owner: Arc::new(Owner {
                path: name::shm_path(&canonical),
                identity,
                created: false,
                unlink_on_drop: false,
            }),
            name: canonical,
            file: Arc::new(file),
            mapping: Arc::new(mapping),
            file_size,
            geometry,
            lock: Arc::new(Mutex::new(())),
            lock_timeout: self.lock_timeout,
            runtime_entry: self.runtime_entry,
            descriptions: self.descriptions,
            poll_interval: self.poll_interval,
            identity,
        })
    }

    /// Opens the segment if it exists, otherwise creates it with `size` bytes. When another
    /// process creates it at the same moment, waits up to a second for it to become ready.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) and [`open`](Self::open); [`Error::NotReady`] when a
    /// concurrent creator did not finish in time.
    pub fn open_or_create(&self, name: &str, size: u64) -> Result<Segment> {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            let err = match self.open(name) {
                Ok(seg) => return Ok(seg),
                Err(Error::NotFound { .. }) => match self.create(name, size) {
                    Ok(seg) => return Ok(seg),
                    Err(e @ Error::AlreadyExists { .. }) => e,
                    Err(e) => return Err(e),
                },
                Err(e @ Error::NotReady { .. }) => e,
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(err);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Removes the name again unless disarmed (`path = None`).
struct Created<'p> {
    path: Option<&'p str>,
    identity: Identity,
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.path {
            // Best effort: the object is ours and half-made; failing to remove it leaves a file
            // that `open` reports as not ready.
            unlink_if_same(path, self.identity);
        }
    }
}

/// Device and inode of a file: what a name must still point to before we unlink it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Identity {
    dev: u64,
    ino: u64,
}

fn file_identity(fd: impl AsFd) -> std::result::Result<Identity, Errno> {
    let stat = rustix::fs::fstat(fd)?;
    Ok(Identity {
        dev: stat.st_dev,
        ino: stat.st_ino,
    })
}

/// Unlinks `path` only if it still names the file `identity`: another implementation may have
/// unlinked our segment and created a new one under the same name (C++ and Go do on `EEXIST`),
/// and that one is not ours to remove. A replacement in the microseconds between the check and
/// the unlink cannot be excluded by POSIX.
fn unlink_if_same(path: &str, identity: Identity) {
    let Ok(stat) = rustix::fs::statat(rustix::fs::CWD, path, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
    else {
        return;
    };
    if (stat.st_dev, stat.st_ino) == (identity.dev, identity.ino) {
        let _ = rustix::fs::unlink(path);
    }
}

/// Opens `/dev/shm/NAME` without following symlinks and checks that it is a regular file owned
/// by this process's user (unless `allow_foreign_owner`).
fn open_regular(
    canonical: &str,
    read_only: bool,
    allow_foreign_owner: bool,
) -> Result<(OwnedFd, u64, Identity)> {
    let path = name::shm_path(canonical);
    let access = if read_only {
        OFlags::RDONLY
    } else {
        OFlags::RDWR
    };
    // NONBLOCK: opening a planted FIFO must not wait for a writer.
    let flags = access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = rustix::fs::open(&path, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP => Error::NotRegularFile {
            name: canonical.to_owned(),
            kind: "symbolic link",
        },
        Errno::ISDIR => Error::NotRegularFile {
            name: canonical.to_owned(),
            kind: "directory",
        },
        Errno::NXIO => Error::NotRegularFile {
            name: canonical.to_owned(),
            kind: "special file",
        },
        e => Error::from_io("open", canonical, e.into()),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| Error::from_io("fstat", canonical, e.into()))?;
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => None,
        FileType::Directory => Some("directory"),
        FileType::Symlink => Some("symbolic link"),
        FileType::Fifo => Some("FIFO"),
        FileType::Socket => Some("socket"),
        FileType::CharacterDevice | FileType::BlockDevice => Some("device"),
        _ => Some("special file"),
    };
    if let Some(kind) = kind {
        return Err(Error::NotRegularFile {
            name: canonical.to_owned(),
            kind,
        });
    }
    let euid = rustix::process::geteuid().as_raw();
    if !allow_foreign_owner && stat.st_uid != euid {
        return Err(Error::ForeignOwner {
            name: canonical.to_owned(),
            owner: stat.st_uid,
            euid,
        });
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let identity = Identity {
        dev: stat.st_dev,
        ino: stat.st_ino,
    };
    Ok((fd, size, identity))
}

/// Makes sure every page of a ZeroIPC segment has memory behind it before it is mapped.
///
/// The other implementations create segments with `ftruncate` only, so their pages are
/// allocated on first touch; on a full file system that touch kills the process with `SIGBUS`,
/// even a read through a read-only mapping. So when the file has holes (`SEEK_HOLE`), they are
/// reserved with `fallocate`, which changes no byte: through the segment's own descriptor when
/// it is writable, else through a writable one if this process may open one (`reserve`). When
/// that is impossible or not wanted, the holes must at least fit in the file system's free
/// space. Files without the
/// ZeroIPC magic (read with `pread`, which never faults) are left alone: opening reports them.
fn reserve_holes(fd: &OwnedFd, canonical: &str, size: u64, reserve: Reserve) -> Result<()> {
    // Only what looks like a sound ZeroIPC header of this very size (read with `pread`, which
    // never faults): opening refuses anything else anyway, and it must not make a stranger's
    // file commit memory first.
    let mut header = [0u8; 24];
    let read = rustix::io::pread(fd, &mut header, 0);
    let word = |at: usize| {
        header
            .get(at..at.saturating_add(4))
            .and_then(|b| b.try_into().ok())
    };
    let long = header.get(16..24).and_then(|b| b.try_into().ok());
    if !matches!(read, Ok(24))
        || word(0).map(u32::from_le_bytes) != Some(table::MAGIC)
        || word(4).map(u32::from_le_bytes) != Some(table::VERSION)
        || long.map(u64::from_le_bytes) != Some(size)
    {
        return Ok(());
    }
    // No `SEEK_HOLE` support: the file system cannot tell, and reserves nothing lazily that
    // we could know of.
    let Ok(first_hole) = rustix::fs::seek(fd, rustix::fs::SeekFrom::Hole(0)) else {
        return Ok(());
    };
    if first_hole >= size {
        return Ok(());
    }
    let unbacked_error = |reason: String| Error::Unbacked {
        name: canonical.to_owned(),
        unbacked: hole_bytes(fd, size),
        reason,
    };
    let reopened;
    let target = match reserve {
        Reserve::Own => Some(fd.as_fd()),
        Reserve::Never => None,
        Reserve::IfPermitted => {
            reopened = rustix::fs::open(
                format!("/proc/self/fd/{}", fd.as_raw_fd()),
                OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
            .ok()
            .filter(|w| matches!((file_identity(w), file_identity(fd)), (Ok(a), Ok(b)) if a == b));
            reopened.as_ref().map(AsFd::as_fd)
        }
    };
    // First the room: reserving what cannot fit would fill the file system on the way to
    // failing. (A file system without a block limit reports none, tmpfs `size=0`.)
    if let Ok(fs) = rustix::fs::fstatvfs(fd) {
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        if fs.f_blocks > 0 && hole_bytes(fd, size) > free {
            return Err(unbacked_error(format!(
                "its file system has only `{free}` bytes free"
            )));
        }
    }
    let Some(target) = target else {
        return Ok(());
    };
    loop {
        // One call for the whole range, keeping the size (a file that shrank meanwhile is not
        // grown back): the file system undoes a call that fails, so a failure leaves nothing
        // reserved.
        let len = size.saturating_sub(first_hole);
        match rustix::fs::fallocate(
            target,
            rustix::fs::FallocateFlags::KEEP_SIZE,
            first_hole,
            len,
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(Errno::NOSPC | Errno::DQUOT | Errno::FBIG | Errno::NOMEM) => {
                return Err(unbacked_error(
                    "the file system has no room to reserve them".to_owned(),
                ));
            }
            // Cannot reserve here (not supported, not permitted): the room was checked above.
            Err(_) => return Ok(()),
        }
    }
}

/// Whether [`reserve_holes`] may reserve memory for a segment's holes.
#[derive(Debug, Clone, Copy)]
enum Reserve {
    /// Through the segment's own (writable) descriptor.
    Own,
    /// Through a writable descriptor, if this process may open one (read-only opens).
    IfPermitted,
    /// Not at all (inspecting): only check that the file system could back them.
    Never,
}

/// Bytes of `fd`'s first `size` that lie in holes.
fn hole_bytes(fd: &OwnedFd, size: u64) -> u64 {
    use rustix::fs::{SeekFrom, seek};
    let (mut pos, mut holes) = (0u64, 0u64);
    while pos < size {
        // No data after `pos` (ENXIO): the rest is one hole.
        let data = seek(fd, SeekFrom::Data(pos)).unwrap_or(size).min(size);
        holes = holes.saturating_add(data.saturating_sub(pos));
        if data >= size {
            break;
        }
        pos = seek(fd, SeekFrom::Hole(data))
            .unwrap_or(size)
            .max(data.saturating_add(1));
    }
    holes
}

/// Maps a whole file of `size` bytes (non-zero).
fn map_file(file: &File, canonical: &str, size: u64, read_only: bool) -> Result<(Mapping, u64)> {
    let len = usize::try_from(size).map_err(|_| Error::InvalidArgument {
        what: "size",
        reason: format!("segment `{canonical}` of `{size}` bytes does not fit in memory"),
    })?;
    let mut opts = memmap2::MmapOptions::new();
    opts.len(len);
    let map = if read_only {
        opts.map_raw_read_only(file)
    } else {
        opts.map_raw(file)
    };
    let map = map.map_err(|e| Error::from_io("mmap", canonical, e))?;
    Ok((Mapping::new(map, !read_only), size))
}

/// The name of segments made from bytes in memory.
const MEMORY_NAME: &str = "/(memory)";

/// An anonymous memfd holding a copy of `bytes`, with its size and identity.
fn memfd_with(bytes: &[u8]) -> Result<(OwnedFd, u64, Identity)> {
    let sys = |op| move |e: Errno| Error::from_io(op, MEMORY_NAME, e.into());
    let fd = rustix::fs::memfd_create("zeroipc-bytes", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(sys("memfd_create"))?;
    let mut done = 0usize;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match rustix::io::write(&fd, rest) {
            Ok(0) => return Err(sys("write")(Errno::IO)),
            Ok(n) => done = done.saturating_add(n),
            Err(Errno::INTR) => {}
            Err(e) => return Err(sys("write")(e)),
        }
    }
    let identity = file_identity(&fd).map_err(sys("fstat"))?;
    Ok((fd, bytes.len() as u64, identity))
}

/// Turns a refused raw access during a segment-level operation into an error.
pub(crate) fn access_error(segment: &str, what: &'static str, access: Access) -> Error {
    match access {
        Access::ReadOnly => Error::ReadOnly {
            segment: segment.to_owned(),
        },
        Access::OutOfBounds => Error::Internal {
            segment: segment.to_owned(),
            what,
            problem: "outside the mapping",
        },
        Access::Misaligned => Error::Internal {
            segment: segment.to_owned(),
            what,
            problem: "misaligned",
        },
    }
}

/// A mapped ZeroIPC segment with a validated table.
///
/// ```no_run
/// use zeroipc::{Array, Segment};
///
/// let seg = Segment::create("/sensors", 1 << 20)?;
/// let temps = Array::<f32>::create(&seg, "temps", 1000)?;
/// temps.set(0, 21.5)?;
/// for e in seg.entries()? {
///     println!("{} at {} ({} bytes)", e.name, e.offset, e.size);
/// }
/// # Ok::<(), zeroipc::Error>(())
/// ```
///
/// # Sharing
///
/// A `Segment` is a cheap handle to one shared mapping: [`Clone`] makes another handle to the
/// same mapping (no system call), and every structure handle (`Array`, `Queue`, `Stack`) owns
/// such a clone, so it needs no lifetime, can be stored beside the segment in a struct, moved
/// into a thread or returned from a function. The mapping is unmapped, and a segment created
/// with `unlink_on_drop` unlinked, when the last handle (segment or structure) is dropped.
#[derive(Debug, Clone)]
pub struct Segment {
    name: String,
    file: Arc<File>,
    mapping: Arc<Mapping>,
    file_size: u64,
    geometry: Geometry,
    /// One per mapping: serialises this process's table changes across all clones.
    lock: Arc<Mutex<()>>,
    lock_timeout: Duration,
    identity: Identity,
    /// Whether handles may add the runtime entry.
    runtime_entry: bool,
    /// Whether structures created through this handle are described.
    descriptions: bool,
    /// The poll interval of blocked calls.
    poll_interval: Duration,
    /// Whether we created the file and unlink it when the last handle goes.
    owner: Arc<Owner>,
}

/// Who made the segment's file, and what to do when the last handle goes.
#[derive(Debug)]
struct Owner {
    path: String,
    identity: Identity,
    created: bool,
    unlink_on_drop: bool,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.created && self.unlink_on_drop {
            // Best effort: someone may have unlinked it already, or replaced it.
            unlink_if_same(&self.path, self.identity);
        }
    }
}

impl Segment {
    /// [`SegmentOptions`] with their defaults.
    pub fn options() -> SegmentOptions {
        SegmentOptions::new()
    }

    /// Creates a new segment of `size` bytes with the default options (64 entries, mode
    /// `0600`). See [`SegmentOptions::create`].
    ///
    /// # Errors
    ///
    /// As [`SegmentOptions::create`].
    pub fn create(name: &str, size: u64) -> Result<Self> {
        SegmentOptions::new().create(name, size)
    }

    /// Opens an existing segment read-write. See [`SegmentOptions::open`].
    ///
    /// # Errors
    ///
    /// As [`SegmentOptions::open`].
    pub fn open(name: &str) -> Result<Self> {
        SegmentOptions::new().open(name)
    }

    /// Opens an existing segment read-only.
    ///
    /// # Errors
    ///
    /// As [`SegmentOptions::open`].
    pub fn open_read_only(name: &str) -> Result<Self> {
        SegmentOptions::new().read_only(true).open(name)
    }

    /// Opens the segment or creates it with `size` bytes. See
    /// [`SegmentOptions::open_or_create`].
    ///
    /// # Errors
    ///
    /// As [`SegmentOptions::open_or_create`].
    pub fn open_or_create(name: &str, size: u64) -> Result<Self> {
        SegmentOptions::new().open_or_create(name, size)
    }

    /// Removes the name from `/dev/shm`. Processes that have it mapped keep their mapping.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSegmentName`], [`Error::NotFound`], [`Error::PermissionDenied`].
    pub fn unlink(name: &str) -> Result<()> {
        let canonical = name::segment_name(name)?;
        rustix::fs::unlink(name::shm_path(&canonical))
            .map_err(|e| Error::from_io("unlink", &canonical, e.into()))
    }

    /// Checks an existing segment without trusting its header, listing every defect of the
    /// header and of each entry. The segment is opened read-only.
    ///
    /// # Errors
    ///
    /// Only for failures to open the object at all ([`Error::NotFound`],
    /// [`Error::NotRegularFile`], ...). Corruption is reported in the [`Report`].
    pub fn inspect(name: &str) -> Result<Report> {
        let canonical = name::segment_name(name)?;
        // Inspection only reads, so foreign owners are fine here.
        let (fd, file_size, _) = open_regular(&canonical, true, true)?;
        let file = file_identity(&fd).ok().map(|id| (id.dev, id.ino));
        Self::inspect_fd(canonical, fd, file_size, file)
    }

    /// Whether the segment `name` is stale: a ZeroIPC segment whose every recorded process is
    /// dead (see [`peers`](Self::peers)). Only reads; what `zeroipc gc --dry-run` lists.
    ///
    /// # Errors
    ///
    /// As [`inspect`](Self::inspect).
    pub fn staleness(name: &str) -> Result<Staleness> {
        Ok(Self::judge(name)?.0)
    }

    /// Unlinks the segment `name` if it is [`Staleness::Stale`], or also if it is
    /// [`Staleness::Unrecorded`] when `unrecorded` is set; returns what it found. The name is
    /// unlinked only if it still names the file that was judged. A process that opens the
    /// segment between the judgement and the unlink keeps its mapping, but nobody finds the
    /// segment by its name afterwards.
    ///
    /// # Errors
    ///
    /// As [`inspect`](Self::inspect); [`Error::Io`] when the unlink fails.
    pub fn remove_if_stale(name: &str, unrecorded: bool) -> Result<(Staleness, bool)> {
        let (staleness, identity) = Self::judge(name)?;
        let remove =
            staleness == Staleness::Stale || (unrecorded && staleness == Staleness::Unrecorded);
        if !remove {
            return Ok((staleness, false));
        }
        let canonical = name::segment_name(name)?;
        let path = name::shm_path(&canonical);
        let Ok(stat) = rustix::fs::statat(
            rustix::fs::CWD,
            path.as_str(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ) else {
            return Ok((staleness, false));
        };
        if (stat.st_dev, stat.st_ino) != (identity.dev, identity.ino) {
            return Ok((staleness, false));
        }
        rustix::fs::unlink(path.as_str())
            .map_err(|e| Error::from_io("unlink", &canonical, e.into()))?;
        Ok((staleness, true))
    }

    /// The staleness of `name` and the identity of the file judged.
    fn judge(name: &str) -> Result<(Staleness, Identity)> {
        let canonical = name::segment_name(name)?;
        let (fd, file_size, _) = open_regular(&canonical, true, true)?;
        let identity =
            file_identity(&fd).map_err(|e| Error::from_io("fstat", &canonical, e.into()))?;
        let report =
            Self::inspect_fd(canonical, fd, file_size, Some((identity.dev, identity.ino)))?;
        let staleness = if !report.is_zeroipc() {
            Staleness::NotZeroipc
        } else if report.peers.is_empty() {
            Staleness::Unrecorded
        } else if report
            .peers
            .iter()
            .all(|p| p.liveness == crate::Liveness::Dead)
        {
            Staleness::Stale
        } else {
            Staleness::InUse
        };
        Ok((staleness, identity))
    }

    /// [`inspect`](Self::inspect) of a private copy of `bytes` (see
    /// [`SegmentOptions::open_bytes`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the memfd cannot be made.
    #[doc(hidden)]
    pub fn inspect_bytes(bytes: &[u8]) -> Result<Report> {
        let (fd, file_size, _) = memfd_with(bytes)?;
        // The recorded processes map the original, not this copy.
        Self::inspect_fd(MEMORY_NAME.to_owned(), fd, file_size, None)
    }

    /// Inspects the segment file `fd`, whose device and inode are `identity` when recorded
    /// processes are to have it mapped.
    fn inspect_fd(
        canonical: String,
        fd: OwnedFd,
        file_size: u64,
        identity: Option<crate::peers::FileId>,
    ) -> Result<Report> {
        if file_size == 0 {
            return Ok(Report {
                segment: canonical,
                file_size,
                header: None,
                entries: Vec::new(),
                defects: vec![Defect::Header(HeaderDefect::TooShort { len: 0 })],
                peers: Vec::new(),
                descriptions: Vec::new(),
            });
        }
        // Inspecting changes nothing, so it reserves nothing either; it only refuses to touch
        // holes that a full file system could not back.
        reserve_holes(&fd, &canonical, file_size, Reserve::Never)?;
        let file = File::from(fd);
        let (mapping, file_size) = map_file(&file, &canonical, file_size, true)?;
        Ok(build_report(
            canonical,
            mapping.region(),
            file_size,
            identity,
        ))
    }

    /// A second, read-only mapping of the same segment: hand it to code that must only read.
    /// It shares the file and the table lock with `self`; writes through `self` are visible
    /// through it (every access of both is atomic, so holding both is race-free).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the mapping fails; [`Error::CorruptHeader`] when the header was
    /// corrupted since `self` was opened.
    pub fn read_only_view(&self) -> Result<Segment> {
        let (mapping, file_size) = map_file(&self.file, &self.name, self.file_size, true)?;
        let (_, geometry) =
            table::validate_header(mapping.region(), file_size).map_err(|defect| {
                Error::CorruptHeader {
                    segment: self.name.clone(),
                    defect,
                }
            })?;
        Ok(Segment {
            name: self.name.clone(),
            file: Arc::clone(&self.file),
            mapping: Arc::new(mapping),
            file_size,
            geometry,
            lock: Arc::clone(&self.lock),
            lock_timeout: self.lock_timeout,
            runtime_entry: self.runtime_entry,
            descriptions: self.descriptions,
            poll_interval: self.poll_interval,
            identity: self.identity,
            owner: Arc::clone(&self.owner),
        })
    }

    /// The canonical name, with its leading `/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size of the segment in bytes.
    pub fn size(&self) -> u64 {
        self.file_size
    }

    /// Number of table slots.
    pub fn max_entries(&self) -> u32 {
        self.geometry.max_entries
    }

    /// Whether the segment was opened read-only.
    pub fn is_read_only(&self) -> bool {
        !self.mapping.region().writable()
    }

    /// Whether this handle (or the one it was cloned from) created the segment.
    pub fn created(&self) -> bool {
        self.owner.created
    }

    /// The header as it is now.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptHeader`] when the header no longer reads (it was validated at open).
    pub fn header(&self) -> Result<HeaderInfo> {
        let (info, defects) = table::inspect_header(self.mapping.region(), self.file_size);
        info.ok_or_else(|| Error::CorruptHeader {
            segment: self.name.clone(),
            defect: defects
                .first()
                .copied()
                .unwrap_or(HeaderDefect::TooShort { len: 0 }),
        })
    }

    /// Every entry of the table, with the defects found in each.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptHeader`] when `entry_count` was rewritten beyond `max_entries`.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        self.table()
            .entries()
            .map_err(|defect| self.corrupt_header(defect))
    }

    /// The entry named `name`, if any, with its defects.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`], [`Error::CorruptHeader`].
    pub fn entry(&self, name: &str) -> Result<Option<Entry>> {
        name::entry_name(name)?;
        let found = self
            .table()
            .find(name)
            .map_err(|defect| self.corrupt_header(defect))?;
        Ok(found.map(|(entry, _)| entry))
    }

    /// Every defect of the header and the table, as [`Segment::inspect`] reports them.
    pub fn check(&self) -> Report {
        build_report(
            self.name.clone(),
            self.mapping.region(),
            self.file_size,
            Some(self.file_identity()),
        )
    }

    /// Checks the entry `name` as a structure of `kind`: its header and geometry, its current
    /// length, and the state of its shared words (a queue position claimed and never
    /// published, a stack slot left mid-operation, counters that contradict each other).
    ///
    /// Works on read-only segments and with any element type: the element size is taken from
    /// the stored header. On a structure in use, the report is a snapshot (see
    /// [`StructureDefect`](crate::StructureDefect)).
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`], [`Error::CorruptEntry`], [`Error::KindMismatch`] when the
    /// segment describes the entry as another kind, and [`Error::CorruptStructure`] when the
    /// entry is not a `kind` at all (its header or geometry is inconsistent).
    pub fn check_structure(
        &self,
        name: &str,
        kind: crate::StructureKind,
    ) -> Result<crate::StructureReport> {
        crate::kind::check_as(self, name, kind)
    }

    /// Undoes the claims of processes that died in the middle of an operation on the
    /// structure `name` of `kind`, as [`Queue::recover`](crate::Queue::recover) and
    /// [`Stack::recover`](crate::Stack::recover) do, without knowing its element type (what
    /// `zeroipc repair` runs). Claims not known to be held are undone only once their
    /// positions have been found stuck for ten times `stall`, which this call waits for if it
    /// must ([`DEFAULT_STALL_TIMEOUT`](crate::DEFAULT_STALL_TIMEOUT) is what handles use).
    /// Arrays claim nothing: their recovery undoes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] on a read-only segment; [`Error::EntryNotFound`],
    /// [`Error::KindMismatch`] and [`Error::CorruptStructure`] as for opening the structure.
    pub fn recover_structure(
        &self,
        name: &str,
        kind: crate::StructureKind,
        stall: Duration,
    ) -> Result<crate::Recovery> {
        crate::kind::recover_as(self, name, kind, stall)
    }

    fn table(&self) -> Table<'_> {
        Table::new(self.mapping.region(), self.geometry)
    }

    fn corrupt_header(&self, defect: HeaderDefect) -> Error {
        Error::CorruptHeader {
            segment: self.name.clone(),
            defect,
        }
    }

    /// The device and inode of the segment's file.
    pub(crate) fn file_identity(&self) -> (u64, u64) {
        (self.identity.dev, self.identity.ino)
    }

    /// What the segment records about the structure `name` (FORMAT.md appendix D): `None`
    /// for a structure made by another implementation or with descriptions off, or for a
    /// record that cannot be read (which [`check`](Self::check) reports).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEntryName`], [`Error::EntryNotFound`] and the errors of opening an
    /// entry, for `name`.
    pub fn description(&self, name: &str) -> Result<Option<crate::Description>> {
        let entry = self.open_entry(name)?;
        let offset = self
            .mapping
            .offset_of(&entry)
            .ok_or_else(|| Error::Internal {
                segment: self.name.clone(),
                what: "look up a description",
                problem: "the entry is outside the mapping",
            })?;
        Ok(crate::describe::lookup(self, name, offset))
    }

    /// Reads up to `count` elements of the container `name` (an array, queue or stack, or the
    /// value of a signal) from the `skip`-th on, in order and without changing anything
    /// (read-only segments too): an array's by index, a queue's oldest first, a stack's bottom
    /// first. `kind` and `layout`
    /// default to what the segment describes; a description that disagrees with them is an
    /// error, as for opening.
    ///
    /// # Errors
    ///
    /// [`Error::NotDescribed`] when a kind or layout is not given and not described; the
    /// errors of opening the structure as `kind` with `layout`; [`Error::InvalidArgument`] for
    /// a kind that holds no elements.
    pub fn peek(
        &self,
        name: &str,
        kind: Option<crate::StructureKind>,
        layout: Option<&crate::DynLayout>,
        skip: usize,
        count: usize,
    ) -> Result<crate::Peek> {
        crate::container::dynamic::peek(self, name, kind, layout, (skip, count))
    }

    /// The processes that use this segment through this crate, as its runtime entry records
    /// them: each process with a queue or stack handle on it (one record per process), until
    /// its last such handle goes. A process that died without letting go is listed
    /// [`Liveness::Dead`](crate::Liveness::Dead) until another attaches and clears it; one in
    /// another pid namespace is [`Liveness::Unknown`](crate::Liveness::Unknown). Processes of
    /// the other implementations are never listed. Empty without a runtime entry; works on
    /// read-only segments.
    pub fn peers(&self) -> Vec<crate::Peer> {
        crate::runtime::peers(self)
    }

    /// The poll interval of blocked calls ([`SegmentOptions::poll_interval`]).
    pub(crate) fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// Whether structures are described and descriptions checked
    /// ([`SegmentOptions::descriptions`]).
    pub(crate) fn descriptions(&self) -> bool {
        self.descriptions
    }

    /// Whether handles may add the runtime entry ([`SegmentOptions::runtime_entry`]).
    pub(crate) fn runtime_entry(&self) -> bool {
        self.runtime_entry
    }

    /// The shared mapping, for structure handles to anchor their views to.
    pub(crate) fn mapping(&self) -> &Arc<Mapping> {
        &self.mapping
    }

    /// The bytes of the sound entry `name`.
    pub(crate) fn open_entry(&self, name: &str) -> Result<Region<'_>> {
        name::entry_name(name)?;
        let Some((entry, raw)) = self
            .table()
            .find(name)
            .map_err(|defect| self.corrupt_header(defect))?
        else {
            return Err(Error::EntryNotFound {
                segment: self.name.clone(),
                name: name.to_owned(),
            });
        };
        if let Some(&defect) = entry.defects.first() {
            return Err(Error::CorruptEntry {
                segment: self.name.clone(),
                index: entry.index,
                name: printable(&entry.name),
                defect,
            });
        }
        self.mapping
            .region()
            .sub(raw.offset, raw.size)
            .ok_or_else(|| Error::CorruptEntry {
                segment: self.name.clone(),
                index: entry.index,
                name: printable(&entry.name),
                defect: EntryDefect::OutOfBounds {
                    offset: raw.offset,
                    size: raw.size,
                    memory_size: self.file_size,
                },
            })
    }

    /// Creates one entry per `(name, size)` of `parts`, in order, under one hold of the table
    /// lock, initialising all their bytes with `init` before any of them becomes visible: the
    /// entries of a composite kind (FORMAT.md §7). All are made, and published at once, or none
    /// is and nothing in the segment changes.
    pub(crate) fn create_entries(
        &self,
        parts: &[(&str, u64)],
        init: impl FnOnce(&[Region<'_>]) -> Result<(), Access>,
    ) -> Result<Vec<Region<'_>>> {
        self.create_described(parts, init, None)
    }

    /// [`create_entries`](Self::create_entries), then, in the same hold of the table lock (so
    /// that no other process of this crate can open the structure undescribed), the record of
    /// `describe` if descriptions are on (best effort: see `describe`).
    pub(crate) fn create_described(
        &self,
        parts: &[(&str, u64)],
        init: impl FnOnce(&[Region<'_>]) -> Result<(), Access>,
        describe: Option<&crate::describe::Pending>,
    ) -> Result<Vec<Region<'_>>> {
        for &(name, _) in parts {
            name::entry_name(name)?;
        }
        if self.is_read_only() {
            return Err(Error::ReadOnly {
                segment: self.name.clone(),
            });
        }
        let _lock = self.lock_table()?;
        let table = self.table();
        let Some(pending) = describe.filter(|_| self.descriptions) else {
            return table
                .allocate_all(parts, init)
                .map_err(|e| self.alloc_error(e, parts));
        };
        // The record is written before the table publishes the structure (inside `init`), so
        // that no process sees the structure undescribed.
        let mut init = Some(init);
        let mut first = |regions: &[Region<'_>]| match init.take() {
            Some(init) => init(regions),
            None => Err(Access::OutOfBounds),
        };
        match self.open_entry(crate::describe::NAME) {
            Ok(area) => table
                .allocate_all(parts, |regions| {
                    first(regions)?;
                    crate::describe::append(self, &area, pending, regions);
                    Ok(())
                })
                .map_err(|e| self.alloc_error(e, parts)),
            Err(Error::EntryNotFound { .. }) => {
                // The area is made with the first described structure, as one more part.
                let own = parts.len();
                for size in crate::describe::area_sizes(pending, self.geometry.memory_size) {
                    let mut with_area = parts.to_vec();
                    with_area.push((crate::describe::NAME, size));
                    let made = table.allocate_all(&with_area, |regions| {
                        let (mine, area) = regions.split_at(own.min(regions.len()));
                        first(mine)?;
                        if let Some(area) = area.first() {
                            crate::describe::init_area(area)?;
                            crate::describe::append(self, area, pending, mine);
                        }
                        Ok(())
                    });
                    match made {
                        Ok(mut regions) => {
                            regions.truncate(own);
                            return Ok(regions);
                        }
                        // No room for the area: a smaller one, or none.
                        Err(AllocError::TableFull) => break,
                        Err(AllocError::OutOfSpace { part, .. }) if part == own => {}
                        Err(e) => return Err(self.alloc_error(e, parts)),
                    }
                }
                table
                    .allocate_all(parts, first)
                    .map_err(|e| self.alloc_error(e, parts))
            }
            // A broken description entry: the structure is made undescribed.
            Err(_) => table
                .allocate_all(parts, first)
                .map_err(|e| self.alloc_error(e, parts)),
        }
    }

    /// The error for a failed allocation of `parts`.
    fn alloc_error(&self, e: AllocError, parts: &[(&str, u64)]) -> Error {
        let part_name = |part: usize| parts.get(part).map_or("", |&(n, _)| n).to_owned();
        let part_size = |part: usize| parts.get(part).map_or(0, |&(_, s)| s);
        match e {
            AllocError::Header(defect) => self.corrupt_header(defect),
            AllocError::Entry {
                index,
                name,
                defect,
            } => Error::CorruptEntry {
                segment: self.name.clone(),
                index,
                name: printable(&name),
                defect,
            },
            AllocError::Duplicate { part } => Error::DuplicateEntry {
                segment: self.name.clone(),
                name: part_name(part),
            },
            AllocError::TableFull => Error::TableFull {
                segment: self.name.clone(),
                max_entries: self.geometry.max_entries,
            },
            AllocError::OutOfSpace {
                part,
                offset,
                available,
            } => Error::OutOfSpace {
                segment: self.name.clone(),
                name: part_name(part),
                requested: part_size(part),
                offset,
                available,
            },
            AllocError::Access(a) => access_error(&self.name, "write the entry", a),
        }
    }

    /// Takes the table lock: a process-local mutex, then an exclusive `flock` on a fresh open
    /// file description of the segment (reopened through `/proc/self/fd`). A fresh description
    /// matters: an `flock` belongs to the description, which threads of one process and a forked
    /// child share with its parent, so locking `self.file` itself would not exclude them. Where
    /// `/proc` is unavailable the segment's own descriptor is used, which still excludes other
    /// processes that opened the segment themselves. The kernel drops the `flock` if the holder
    /// dies. Waits at most the configured lock timeout.
    fn lock_table(&self) -> Result<TableLock<'_>> {
        let start = Instant::now();
        let timed_out = |waited: Duration| Error::LockTimeout {
            segment: self.name.clone(),
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        };
        // The process-local half is bounded by the same timeout: a thread queued behind a
        // holder that waits for a peer's `flock` (or a child forked while another thread held
        // the mutex) must not wait longer than it was told.
        let guard = loop {
            match self.lock.try_lock() {
                Ok(guard) => break guard,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= self.lock_timeout {
                        return Err(timed_out(waited));
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
        };
        let fresh = rustix::fs::open(
            format!("/proc/self/fd/{}", self.file.as_raw_fd()),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .ok()
        .filter(|fd| file_identity(fd).is_ok_and(|id| id == self.identity));
        let mut pause = Duration::from_micros(10);
        loop {
            let fd = fresh.as_ref().map_or(self.file.as_fd(), AsFd::as_fd);
            match rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(Errno::INTR) => continue,
                Err(Errno::WOULDBLOCK) => {
                    let waited = start.elapsed();
                    if waited >= self.lock_timeout {
                        return Err(timed_out(waited));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(1));
                }
                Err(e) => return Err(Error::from_io("flock", &self.name, e.into())),
            }
        }
        Ok(TableLock {
            file: &self.file,
            fresh,
            _guard: guard,
        })
    }
}

/// Holds the table lock.
struct TableLock<'s> {
    file: &'s File,
    /// The description the `flock` is on, when it is not `file`'s own.
    fresh: Option<OwnedFd>,
    _guard: MutexGuard<'s, ()>,
}

impl Drop for TableLock<'_> {
    fn drop(&mut self) {
        // Unlocking an flock we hold on a valid descriptor cannot fail in a way we could act on;
        // closing the descriptor releases it anyway.
        let fd = self.fresh.as_ref().map_or(self.file.as_fd(), AsFd::as_fd);
        let _ = rustix::fs::flock(fd, FlockOperation::Unlock);
    }
}

/// One problem found by [`Segment::inspect`] or [`Segment::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defect {
    /// A header field is wrong.
    Header(HeaderDefect),
    /// An entry is wrong.
    Entry {
        /// The entry's index.
        index: u32,
        /// The entry's name, lossily decoded.
        name: String,
        /// What is wrong.
        defect: EntryDefect,
    },
    /// The description entry (`zeroipc.layouts`, FORMAT.md appendix D) or one of its records
    /// cannot be read; the structures it concerns open undescribed.
    Description {
        /// What is wrong, and where.
        problem: String,
    },
    /// More entry defects than a report lists: the first [`MAX_LISTED_DEFECTS`] are listed,
    /// and this counts the others (each entry still carries its own, in [`Report::entries`]).
    Omitted {
        /// How many entry defects are not listed.
        count: u64,
    },
}

/// How many entry defects a [`Report`] lists before it only counts them ([`Defect::Omitted`]):
/// a hostile table of a million broken entries gives a report of bounded size.
pub const MAX_LISTED_DEFECTS: usize = 256;

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Header(d) => write!(f, "header: {d}"),
            Self::Entry {
                index,
                name,
                defect,
            } => {
                write!(f, "entry {index} (`{}`): {defect}", printable(name))
            }
            Self::Description { problem } => write!(f, "descriptions: {problem}"),
            Self::Omitted { count } => write!(
                f,
                "{count} more entry defects are not listed (only the first \
                 {MAX_LISTED_DEFECTS} are)"
            ),
        }
    }
}

/// The result of checking a segment: its header, its entries and every defect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The canonical segment name.
    pub segment: String,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// The header's raw values (`None` when the file is shorter than the header).
    pub header: Option<HeaderInfo>,
    /// The entries that could be read, with their defects.
    pub entries: Vec<Entry>,
    /// Every defect, header defects first.
    pub defects: Vec<Defect>,
    /// The processes the runtime entry records as using the segment (see
    /// [`Segment::peers`]).
    pub peers: Vec<crate::Peer>,
    /// What the segment records about its structures, in the order they were described (see
    /// [`SegmentOptions::descriptions`]); structures made by other implementations have none.
    pub descriptions: Vec<crate::Description>,
}

impl Report {
    /// Whether no defect was found.
    pub fn is_sound(&self) -> bool {
        self.defects.is_empty()
    }

    /// How many defects were found, also those only counted ([`Defect::Omitted`]).
    pub fn defect_count(&self) -> u64 {
        self.defects
            .iter()
            .map(|d| match d {
                Defect::Omitted { count } => *count,
                _ => 1,
            })
            .fold(0, u64::saturating_add)
    }

    /// The description of the structure `name`, if the segment has one.
    pub fn description(&self, name: &str) -> Option<&crate::Description> {
        self.descriptions.iter().find(|d| d.name == name)
    }

    /// Whether the header carries the ZeroIPC magic (the file is meant to be a segment).
    pub fn is_zeroipc(&self) -> bool {
        self.header.is_some_and(|h| h.magic == table::MAGIC)
    }
}

/// What [`Segment::staleness`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Staleness {
    /// Not a ZeroIPC segment: never removed.
    NotZeroipc,
    /// A ZeroIPC segment with a process recorded as alive, or whose liveness cannot be told
    /// (another pid namespace): never removed.
    InUse,
    /// A ZeroIPC segment that records no process: made by another implementation, or by ours
    /// with every handle gone. Removed only when asked.
    Unrecorded,
    /// A ZeroIPC segment whose every recorded process is dead.
    Stale,
}

/// Checks the header and, as far as it can be trusted, every entry; `file` is the segment
/// file's device and inode, which the recorded processes map, when known.
fn build_report(
    segment: String,
    region: Region<'_>,
    file_size: u64,
    file: Option<crate::peers::FileId>,
) -> Report {
    let (header, header_defects) = table::inspect_header(region, file_size);
    let mut defects: Vec<Defect> = header_defects.into_iter().map(Defect::Header).collect();
    let mut entries = Vec::new();
    if let Some(info) = header {
        let table_end = table::table_end(info.max_entries);
        if info.max_entries > 0 && table_end <= file_size {
            // Clamp to what can be trusted: the file bounds every entry, and only slots that
            // exist are listed (an oversized entry_count is already reported above).
            let geometry = Geometry {
                max_entries: info.max_entries,
                memory_size: info.memory_size.min(file_size),
                table_end,
            };
            let table = Table::new(region, geometry);
            entries = table.entries_clamped();
            let mut omitted = 0u64;
            for e in &entries {
                for &defect in &e.defects {
                    if defects.len() < MAX_LISTED_DEFECTS {
                        defects.push(Defect::Entry {
                            index: e.index,
                            name: e.name.clone(),
                            defect,
                        });
                    } else {
                        omitted = omitted.saturating_add(1);
                    }
                }
            }
            if omitted > 0 {
                defects.push(Defect::Omitted { count: omitted });
            }
        }
    }
    // The processes the runtime entry records, if it is a sound entry.
    let peers = entries
        .iter()
        .find(|e| e.name == crate::runtime::NAME && e.is_sound())
        .and_then(|e| region.sub(e.offset, e.size))
        .map_or_else(Vec::new, |r| crate::runtime::peers_in(r, file));
    let mut descriptions = Vec::new();
    if let Some(area) = entries.iter().find(|e| e.name == crate::describe::NAME) {
        let read = region
            .sub(area.offset, area.size)
            .filter(|_| area.is_sound())
            .ok_or_else(|| "the entry is unsound".to_owned())
            .and_then(|r| crate::describe::Records::read(&r));
        let problems = match read {
            Ok(records) => {
                // The entry each name finds (the first of that name, as lookups do), if sound.
                let mut first: std::collections::HashMap<&str, Option<u64>> =
                    std::collections::HashMap::with_capacity(entries.len());
                for e in &entries {
                    first
                        .entry(e.name.as_str())
                        .or_insert_with(|| e.is_sound().then_some(e.offset));
                }
                let (found, problems) = records.all(|name| first.get(name).copied().flatten());
                descriptions = found;
                problems
            }
            Err(why) => vec![why],
        };
        let room = MAX_LISTED_DEFECTS.saturating_sub(defects.len());
        defects.extend(
            problems
                .into_iter()
                .take(room)
                .map(|problem| Defect::Description { problem }),
        );
    }
    Report {
        segment,
        file_size,
        header,
        entries,
        defects,
        peers,
        descriptions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A fresh segment that unlinks itself when dropped, also when a test panics.
    fn scratch(tag: &str, max_entries: u32, size: u64) -> Segment {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("/zipc-unit-{}-{tag}-{n}", std::process::id());
        SegmentOptions::new()
            .max_entries(max_entries)
            .unlink_on_drop(true)
            .create(&name, size)
            .unwrap()
    }

    fn bytes(seg: &Segment) -> Vec<u8> {
        std::fs::read(name::shm_path(seg.name())).unwrap()
    }

    fn zero_all(regions: &[Region<'_>]) -> std::result::Result<(), Access> {
        regions.iter().try_for_each(|r| r.zero(0, r.len()))
    }

    #[test]
    fn a_composite_whose_third_part_finds_the_table_full_changes_nothing() {
        let seg = scratch("cfull", 3, 1 << 16);
        seg.create_entries(&[("first", 64)], zero_all).unwrap();
        let before = bytes(&seg);
        let parts = [("c", 16), ("c_a", 16), ("c_b", 16), ("c_c", 16)];
        let mut ran = false;
        let e = seg
            .create_entries(&parts, |_| {
                ran = true;
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(e, Error::TableFull { max_entries: 3, .. }), "{e}");
        assert!(!ran, "nothing was initialised");
        assert_eq!(bytes(&seg), before, "not one byte changed");
        assert_eq!(seg.entries().unwrap().len(), 1);
    }

    #[test]
    fn a_composite_whose_third_part_finds_no_space_changes_nothing() {
        // Table end 32 + 48 * 8 = 416; parts of 250 bytes end at 666, 922 and 1178 > 1024.
        let seg = scratch("cspace", 8, 1024);
        let before = bytes(&seg);
        let parts = [("c", 250), ("c_a", 250), ("c_b", 250), ("c_c", 250)];
        let e = seg.create_entries(&parts, zero_all).unwrap_err();
        match &e {
            Error::OutOfSpace {
                name,
                requested: 250,
                offset: 928,
                available: 96,
                ..
            } => assert_eq!(name, "c_b"),
            other => panic!("expected no space for the third part, got {other}"),
        }
        assert_eq!(bytes(&seg), before);
        let e = seg
            .create_entries(&[("x", 8), ("x", 8)], zero_all)
            .unwrap_err();
        assert!(
            matches!(&e, Error::DuplicateEntry { name, .. } if name == "x"),
            "{e}"
        );
        assert_eq!(bytes(&seg), before);
    }

    #[test]
    fn a_composite_is_made_in_order_and_seen_whole_or_not_at_all() {
        let seg = scratch("cwhole", 64, 1 << 16);
        let stop = AtomicBool::new(false);
        let looking = AtomicBool::new(false);
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut looks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let n = seg.entries().unwrap().len();
                    assert_eq!(n % 4, 0, "an opener saw part of a composite: {n} entries");
                    looks += 1;
                    looking.store(true, Ordering::Relaxed);
                }
                looks
            });
            // The writer starts only once the watcher is looking, so the
            // two overlap even when the scheduler runs one before the other.
            while !looking.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            for i in 0..15 {
                let names: Vec<String> = ["", "_a", "_b", "_c"]
                    .iter()
                    .map(|suffix| format!("k{i}{suffix}"))
                    .collect();
                let parts: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 24)).collect();
                let regions = seg.create_entries(&parts, zero_all).unwrap();
                assert_eq!(regions.len(), 4);
            }
            stop.store(true, Ordering::Relaxed);
            assert!(watcher.join().unwrap() > 0);
        });
        let entries = seg.entries().unwrap();
        assert_eq!(entries.len(), 60);
        for pair in entries.windows(2) {
            assert_eq!(pair[1].offset, pair[0].offset + 24, "contiguous, in order");
        }
        assert_eq!(entries[1].name, "k0_a");
    }
}
