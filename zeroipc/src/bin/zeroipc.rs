//! `zeroipc`: inspect ZeroIPC shared-memory segments.
//!
//! ```text
//! zeroipc ls                          ZeroIPC segments in /dev/shm
//! zeroipc show SEG                    header and every entry, with the kind, type and length
//!                                     of each structure the segment describes
//! zeroipc dump SEG NAME               the elements of an array, queue or stack, decoded by
//!                                     field (--dtype or --schema/--type when undescribed)
//! zeroipc check SEG                   every defect of the header and table, and recorded
//!                                     processes that died (exit 1 if any)
//! zeroipc check SEG --structure queue:jobs   ... and of the queue `jobs`
//! zeroipc repair SEG --structure queue:jobs   undo the claims of processes that died
//!                                     inside an operation on `jobs`
//! zeroipc watch SEG [--once]          a live view of every entry: lengths, shared words,
//!                                     min/mean/max of numeric arrays
//! zeroipc gc [--dry-run]              remove the segments whose every recorded process is dead
//! zeroipc rm SEG                      unlink a segment
//! ```
//!
//! Every command takes `--json`. Exit codes: 0 success, 1 a defect was found or something was
//! not found or failed, 2 usage error. Read-only commands open segments read-only.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use zeroipc::{
    Description, DynLayout, Entry, HeaderInfo, Liveness, Peer, Report, Segment, SegmentOptions,
    Staleness, StructureKind, StructureReport,
};

/// Inspect ZeroIPC shared-memory segments (format v2).
#[derive(Debug, Parser)]
#[command(name = "zeroipc", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  zeroipc ls
  zeroipc show /sensors
  zeroipc dump /sensors temps --dtype '<f4'
  zeroipc check /sensors --json
  zeroipc check /jobs --structure queue:jobs --structure stack:undo
  zeroipc repair /jobs --structure queue:jobs
  zeroipc gc --dry-run --json
  zeroipc rm /sensors

Exit codes: 0 ok, 1 defect found / not found / failure, 2 usage error.";

#[derive(Debug, Subcommand)]
enum Command {
    /// List the ZeroIPC segments in /dev/shm (other files are skipped).
    Ls,
    /// Show a segment's header and every table entry.
    Show {
        /// Segment name, with or without the leading `/`.
        segment: String,
    },
    /// Print the elements of an array, queue (oldest first) or stack (bottom first) without
    /// changing it, decoded by field name with the layout the segment describes it with, or
    /// with the one given (memory stays bounded whatever the structure's size).
    Dump {
        /// Segment name.
        segment: String,
        /// Entry name.
        name: String,
        /// The element layout as a NumPy dtype: `<i4`, `<f8`, `|u1`, or a record such as
        /// `[('x', '<f4'), ('n', '<u4')]`.
        #[arg(long, conflicts_with = "schema")]
        dtype: Option<String>,
        /// A zeroipc schema file (`schemas/*.json`) whose type `--type` is the element.
        #[arg(long, requires = "type_name", value_name = "FILE")]
        schema: Option<std::path::PathBuf>,
        /// The type of `--schema`.
        #[arg(long = "type", value_name = "NAME", requires = "schema")]
        type_name: Option<String>,
        /// The structure's kind (`array`, `queue`, `stack`) when the segment does not describe
        /// it; `array` by default then.
        #[arg(long)]
        kind: Option<String>,
        /// The first element to print.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// How many elements to print at most (all from `--start` by default).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Validate the header and table; list every defect (exit 1 if any).
    Check {
        /// Segment name.
        segment: String,
        /// Also check entry ENTRY as a structure of KIND (`array`, `queue`, `stack`,
        /// `semaphore`, `mutex`, `barrier`, `latch`, `once`, `rwlock`, `event`, `monitor`,
        /// `signal`): its
        /// header, geometry and shared words, their values by name, and who holds it (the
        /// format does not record kinds). Repeatable.
        #[arg(long = "structure", value_name = "KIND:ENTRY", value_parser = parse_structure)]
        structures: Vec<(StructureKind, String)>,
    },
    /// Undo the claims of processes that died inside a queue or stack operation (exit 1 if
    /// claims of dead processes are left that cannot be undone yet).
    Repair {
        /// Segment name.
        segment: String,
        /// The structure ENTRY of KIND (`queue`, `stack`; `array` has nothing to repair).
        /// Repeatable; at least one.
        #[arg(long = "structure", value_name = "KIND:ENTRY", value_parser = parse_structure, required = true)]
        structures: Vec<(StructureKind, String)>,
        /// How long a claim not known to have succeeded must stay stuck before it is undone.
        #[arg(long, default_value_t = 100)]
        stall_ms: u64,
    },
    /// Remove the ZeroIPC segments in /dev/shm whose every recorded process is dead (other
    /// files, and segments with a live or undecidable process, are never touched).
    Gc {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Also remove segments that record no process at all (made by other
        /// implementations, or left by ours once every handle was gone).
        #[arg(long)]
        unrecorded: bool,
        /// Only segments whose name (without the leading `/`) starts with PREFIX.
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
    },
    /// A live view of every entry, refreshed until interrupted: the kind, type, capacity and
    /// length of each described structure, the shared words of each primitive by name, and
    /// for numeric arrays the minimum, mean and maximum.
    Watch {
        /// Segment name.
        segment: String,
        /// Milliseconds between refreshes.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print one snapshot and exit (with --json: one JSON document; without --once,
        /// --json prints one document per line per refresh).
        #[arg(long)]
        once: bool,
    },
    /// Unlink a segment (refuses files that are not ZeroIPC segments).
    Rm {
        /// Segment name.
        segment: String,
        /// Remove the name even if it does not hold a ZeroIPC segment.
        #[arg(long)]
        force: bool,
    },
}

/// A failure: the message goes to stderr; the exit code is 2 for a usage error (an invalid name
/// or argument), 1 otherwise.
struct Failure(String, u8);

/// Exit code of a usage error, as clap uses for unparsable arguments.
const USAGE: u8 = 2;

impl Failure {
    /// A failure that is not a usage error (exit code 1).
    fn other(msg: String) -> Self {
        Self(msg, 1)
    }
}

impl From<zeroipc::Error> for Failure {
    fn from(e: zeroipc::Error) -> Self {
        use zeroipc::Error as E;
        let code = match e {
            E::InvalidSegmentName { .. }
            | E::InvalidEntryName { .. }
            | E::InvalidArgument { .. } => USAGE,
            _ => 1,
        };
        Self(e.to_string(), code)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Ls => ls(cli.json),
        Command::Show { segment } => show(segment, cli.json),
        Command::Dump {
            segment,
            name,
            dtype,
            schema,
            type_name,
            kind,
            start,
            count,
        } => dump(
            &DumpArgs {
                segment,
                name,
                dtype: dtype.as_deref(),
                schema: schema.as_deref().zip(type_name.as_deref()),
                kind: kind.as_deref(),
                range: (*start, *count),
            },
            cli.json,
        ),
        Command::Check {
            segment,
            structures,
        } => check(segment, structures, cli.json),
        Command::Repair {
            segment,
            structures,
            stall_ms,
        } => repair(segment, structures, *stall_ms, cli.json),
        Command::Gc {
            dry_run,
            unrecorded,
            prefix,
        } => gc(*dry_run, *unrecorded, prefix.as_deref(), cli.json),
        Command::Watch {
            segment,
            interval_ms,
            once,
        } => watch(segment, *interval_ms, *once, cli.json),
        Command::Rm { segment, force } => rm(segment, *force, cli.json),
    };
    match result {
        Ok(code) => code,
        Err(Failure(msg, code)) => {
            eprintln!("zeroipc: {msg}");
            ExitCode::from(code)
        }
    }
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
    );
}

fn header_json(h: &HeaderInfo) -> Value {
    json!({
        "magic": h.magic,
        "version": h.version,
        "entry_count": h.entry_count,
        "max_entries": h.max_entries,
        "memory_size": h.memory_size,
        "next_offset": h.next_offset,
    })
}

fn entry_json(e: &Entry, structure: Option<&Structure>) -> Value {
    let mut v = json!({
        "index": e.index,
        "name": e.name,
        "offset": e.offset,
        "size": e.size,
        "defects": e.defects.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    if let (Some(s), Some(map)) = (structure, v.as_object_mut()) {
        map.insert("structure".into(), s.json());
    }
    v
}

/// What `show` and `check` say about a described structure: what the segment records, and
/// its capacity and length as read now.
struct Structure {
    description: Description,
    capacity: Option<u64>,
    len: Option<u64>,
}

impl Structure {
    fn type_name(&self) -> Option<String> {
        self.description.layout.as_ref().map(DynLayout::type_name)
    }

    fn json(&self) -> Value {
        let d = &self.description;
        json!({
            "kind": d.kind,
            "type": self.type_name(),
            "elem_size": d.layout.as_ref().map(DynLayout::size),
            "dtype": d.layout.as_ref().map(DynLayout::numpy_dtype),
            "fingerprint": format!("{:#018x}", d.fingerprint),
            "capacity": self.capacity,
            "len": self.len,
        })
    }
}

/// The described structures of the segment of `report`, by entry name, with their capacity
/// and length read from `seg` (when it could be opened).
fn structures_of(report: &Report, seg: Option<&Segment>) -> HashMap<String, Structure> {
    report
        .descriptions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let live = seg
                .filter(|_| i < LIVE_LIMIT)
                .map_or_else(Live::default, |seg| Live::read(seg, d));
            let s = Structure {
                description: d.clone(),
                capacity: live.capacity,
                len: live.len,
            };
            (d.name.clone(), s)
        })
        .collect()
}

/// What a described structure's words say now.
#[derive(Default)]
struct Live {
    kind: Option<StructureKind>,
    capacity: Option<u64>,
    len: Option<u64>,
    /// A primitive's shared words by name.
    state: Vec<(&'static str, i64)>,
    /// A container's element layout.
    layout: Option<DynLayout>,
}

impl Live {
    /// Reads the structure `d` describes: a container's capacity and length, or a primitive's
    /// length and words; nothing for a kind this release does not know or that fails.
    fn read(seg: &Segment, d: &Description) -> Self {
        let Some(kind) = d.structure_kind() else {
            return Self::default();
        };
        let container = matches!(
            kind,
            StructureKind::Array | StructureKind::Queue | StructureKind::Stack
        );
        let mut live = Self {
            kind: Some(kind),
            ..Self::default()
        };
        if container && let Ok(p) = seg.peek(&d.name, Some(kind), None, 0, 0) {
            (live.capacity, live.len, live.layout) =
                (Some(p.capacity), Some(p.len), Some(p.layout));
        } else if let Ok(r) = seg.check_structure(&d.name, kind) {
            (live.len, live.state) = (r.len, r.state);
        }
        live
    }
}

/// How many described structures `show`, `check` and `watch` read live (capacity, length,
/// audit, statistics); the rest are listed from their descriptions alone. Each read looks the
/// structure up in the table, so this bounds the work on a hostile segment describing
/// millions.
const LIVE_LIMIT: usize = 1024;

/// `segment` opened read-only for inspection (segments of other users too).
fn inspect_open(segment: &str) -> zeroipc::Result<Segment> {
    Segment::options()
        .read_only(true)
        .allow_foreign_owner(true)
        .open(segment)
}

/// The report as JSON, without its entries (see [`print_report_json`]).
fn report_json(r: &Report) -> Value {
    json!({
        "segment": r.segment,
        "file_size": r.file_size,
        "header": r.header.as_ref().map(header_json),
        "defects": r.defects.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "peers": r.peers.iter().map(peer_json).collect::<Vec<_>>(),
        "sound": r.is_sound(),
    })
}

/// Prints `head` (a report's JSON object) with its `entries`, written one at a time: the JSON
/// of a table of a million entries is never held whole.
fn print_report_json(
    head: &Value,
    r: &Report,
    structures: &HashMap<String, Structure>,
) -> Result<(), Failure> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    write_with_array(&mut out, head, "entries", |item| {
        r.entries
            .iter()
            .try_for_each(|e| item(&entry_json(e, structures.get(&e.name))))
    })
    .map_err(|e| Failure::other(format!("cannot write the output: {e}")))
}

/// Writes the JSON object `head` (not empty) with one more field, `key`: an array whose items
/// `items` hands to the writer it is given one at a time, so that the array is never held
/// whole. Flushes `out`.
fn write_with_array<W: std::io::Write>(
    out: &mut W,
    head: &Value,
    key: &str,
    items: impl FnOnce(&mut dyn FnMut(&Value) -> std::io::Result<()>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let json_err = |e: serde_json::Error| std::io::Error::other(e.to_string());
    let head = serde_json::to_string_pretty(head).map_err(json_err)?;
    let head = head.strip_suffix("\n}").unwrap_or(&head);
    write!(out, "{head},\n  {}: [", Value::from(key))?;
    let mut first = true;
    items(&mut |v| {
        write!(out, "{}\n    ", if first { "" } else { "," })?;
        first = false;
        serde_json::to_writer(&mut *out, v).map_err(json_err)
    })?;
    writeln!(out, "{}]\n}}", if first { "" } else { "\n  " })?;
    out.flush()
}

/// The regular files in /dev/shm, sorted, whose names start with `prefix` (a leading `/`
/// ignored) if given.
fn shm_names(prefix: Option<&str>) -> Result<Vec<String>, Failure> {
    let prefix = prefix.map(|p| p.trim_start_matches('/'));
    let dir = std::fs::read_dir("/dev/shm")
        .map_err(|e| Failure::other(format!("cannot list /dev/shm: {e}")))?;
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
        .collect();
    names.sort();
    Ok(names)
}

fn ls(as_json: bool) -> Result<ExitCode, Failure> {
    let mut found = Vec::new();
    for name in shm_names(None)? {
        // Anything that cannot be opened or is not a ZeroIPC segment is skipped.
        let Ok(report) = Segment::inspect(&name) else {
            continue;
        };
        if report.is_zeroipc() {
            found.push(report);
        }
    }
    if as_json {
        let list: Vec<Value> = found
            .iter()
            .map(|r| {
                json!({
                    "segment": r.segment,
                    "size": r.file_size,
                    "entry_count": r.header.map(|h| h.entry_count),
                    "max_entries": r.header.map(|h| h.max_entries),
                    "defects": r.defect_count(),
                })
            })
            .collect();
        print_json(&Value::Array(list));
    } else {
        println!(
            "{:<32} {:>12} {:>9} {:>8}",
            "SEGMENT", "SIZE", "ENTRIES", "DEFECTS"
        );
        for r in &found {
            let (count, max) = r.header.map_or((0, 0), |h| (h.entry_count, h.max_entries));
            println!(
                "{:<32} {:>12} {:>9} {:>8}",
                r.segment,
                r.file_size,
                format!("{count}/{max}"),
                r.defect_count()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(segment: &str, as_json: bool) -> Result<ExitCode, Failure> {
    let report = Segment::inspect(segment)?;
    if !report.is_zeroipc() {
        return Err(Failure::other(format!(
            "`{}` is not a ZeroIPC segment",
            report.segment
        )));
    }
    let seg = inspect_open(segment).ok();
    let structures = structures_of(&report, seg.as_ref());
    let peers = &report.peers;
    if as_json {
        print_report_json(&report_json(&report), &report, &structures)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("segment      {}", report.segment);
    println!("file size    {}", report.file_size);
    if let Some(h) = &report.header {
        println!("magic        {:#010x}", h.magic);
        println!("version      {}", h.version);
        println!("entries      {} of {}", h.entry_count, h.max_entries);
        println!("memory_size  {}", h.memory_size);
        println!("next_offset  {}", h.next_offset);
    }
    println!();
    println!(
        "{:>5}  {:<31} {:>10} {:>10}  {:<9} {:<20} {:>6} {:>10} {:>10}",
        "INDEX", "NAME", "OFFSET", "SIZE", "KIND", "TYPE", "ELEM", "CAPACITY", "LEN"
    );
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for e in &report.entries {
        let mark = if e.is_sound() {
            String::new()
        } else {
            format!("  ({} defect(s))", e.defects.len())
        };
        let s = structures.get(&e.name);
        let layout = s.and_then(|s| s.description.layout.as_ref());
        println!(
            "{:>5}  {:<31} {:>10} {:>10}  {:<9} {:<20} {:>6} {:>10} {:>10}{mark}",
            e.index,
            e.name.escape_debug().to_string(),
            e.offset,
            e.size,
            dash(s.map(|s| s.description.kind.clone())),
            dash(s.and_then(Structure::type_name)),
            dash(layout.map(|l| l.size().to_string())),
            dash(s.and_then(|s| s.capacity).map(|c| c.to_string())),
            dash(s.and_then(|s| s.len).map(|l| l.to_string())),
        );
    }
    for d in &report.defects {
        println!("defect: {d}");
    }
    if !peers.is_empty() {
        println!();
        for p in peers {
            println!("peer         pid {} ({})", p.pid, liveness_name(p.liveness));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn liveness_name(l: Liveness) -> &'static str {
    match l {
        Liveness::Alive => "alive",
        Liveness::Dead => "dead",
        _ => "unknown",
    }
}

fn peer_json(p: &Peer) -> Value {
    json!({ "pid": p.pid, "liveness": liveness_name(p.liveness) })
}

/// The arguments of `zeroipc dump`.
struct DumpArgs<'a> {
    segment: &'a str,
    name: &'a str,
    dtype: Option<&'a str>,
    schema: Option<(&'a std::path::Path, &'a str)>,
    kind: Option<&'a str>,
    range: (u64, Option<u64>),
}

/// How many elements `dump` reads at a time.
const DUMP_CHUNK: usize = 4096;

fn dump(args: &DumpArgs<'_>, as_json: bool) -> Result<ExitCode, Failure> {
    let usage = |msg: String| Failure(msg, USAGE);
    let layout = match (args.dtype, args.schema) {
        (Some(dtype), _) => Some(
            DynLayout::from_dtype(dtype).map_err(|e| usage(format!("--dtype `{dtype}`: {e}")))?,
        ),
        (None, Some((file, type_name))) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Failure::other(format!("cannot read the schema `{}`: {e}", file.display()))
            })?;
            Some(
                DynLayout::from_schema(&text, type_name)
                    .map_err(|e| usage(format!("--schema `{}`: {e}", file.display())))?,
            )
        }
        (None, None) => None,
    };
    let kind = args
        .kind
        .map(|k| match StructureKind::from_name(k) {
            Some(kind @ (StructureKind::Array | StructureKind::Queue | StructureKind::Stack)) => {
                Ok(kind)
            }
            _ => Err(usage(format!(
                "--kind `{k}`: dump reads an `array`, `queue` or `stack`"
            ))),
        })
        .transpose()?;
    let seg = inspect_open(args.segment)?;
    let described = seg.description(args.name)?;
    // Undescribed structures are arrays unless told otherwise.
    let kind = kind.or_else(|| described.is_none().then_some(StructureKind::Array));
    if described.is_none() && layout.is_none() {
        return Err(Failure::other(format!(
            "entry `{}` of segment `{}` is not described (it was made by another \
             implementation, or with descriptions off): give its layout with --dtype or \
             --schema FILE --type NAME",
            args.name,
            seg.name()
        )));
    }
    let first = seg.peek(args.name, kind, layout.as_ref(), 0, 0)?;
    let len = usize::try_from(first.len).unwrap_or(usize::MAX);
    let (start, count) = args.range;
    let start = usize::try_from(start)
        .ok()
        .filter(|&s| s <= len)
        .ok_or_else(|| {
            usage(format!(
                "--start {start} is past the {} elements of the {}",
                first.len, first.kind
            ))
        })?;
    let end = count.map_or(len, |c| {
        usize::try_from(c).map_or(len, |c| start.saturating_add(c).min(len))
    });
    let kind = Some(first.kind);
    let layout = first.layout;
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    // The elements, `DUMP_CHUNK` at a time; a queue or stack may change meanwhile, so each
    // chunk is a snapshot of its own and the output ends where the structure does.
    let each = |f: &mut dyn FnMut(usize, zeroipc::Value) -> std::io::Result<()>| {
        let mut at = start;
        while at < end {
            let n = (end - at).min(DUMP_CHUNK);
            let chunk = seg
                .peek(args.name, kind, Some(&layout), at, n)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            for (i, bytes) in (at..).zip(&chunk.elements) {
                let v = layout
                    .read(bytes)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                f(i, v)?;
            }
            if chunk.elements.len() < n {
                break;
            }
            at += n;
        }
        Ok(())
    };
    let written = if as_json {
        let head = json!({
            "segment": seg.name(),
            "name": args.name,
            "kind": first.kind.name(),
            "type": layout.type_name(),
            "dtype": layout.numpy_dtype(),
            "elem_size": layout.size(),
            "described": described.is_some(),
            "capacity": first.capacity,
            "len": first.len,
            "start": start,
        });
        write_with_array(&mut out, &head, "values", |item| {
            each(&mut |_, v| item(&value_json(&v)))
        })
    } else {
        each(&mut |i, v| writeln!(out, "{i}\t{v}")).and_then(|()| out.flush())
    };
    written.map_err(|e| Failure::other(format!("cannot write the output: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// A decoded element as JSON: numbers, arrays, objects by field name; a float that is not a
/// number as the string `"NaN"`, `"inf"` or `"-inf"`.
fn value_json(v: &zeroipc::Value) -> Value {
    use zeroipc::Value as V;
    match v {
        V::Unsigned(u) => json!(u),
        V::Signed(i) => json!(i),
        V::Float(f) => serde_json::Number::from_f64(*f).map_or_else(
            || {
                Value::from(if f.is_nan() {
                    "NaN"
                } else if *f > 0.0 {
                    "inf"
                } else {
                    "-inf"
                })
            },
            Value::Number,
        ),
        V::Array(items) => Value::Array(items.iter().map(value_json).collect()),
        V::Struct(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// `KIND:ENTRY` of `--structure`; the entry may itself contain `:`.
fn parse_structure(arg: &str) -> Result<(StructureKind, String), String> {
    let (kind, entry) = arg
        .split_once(':')
        .ok_or_else(|| format!("`{arg}` is not KIND:ENTRY"))?;
    let kind = StructureKind::from_name(kind).ok_or_else(|| {
        let known: Vec<_> = StructureKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind `{kind}`; known: {}", known.join(", "))
    })?;
    Ok((kind, entry.to_owned()))
}

fn structure_json(r: &StructureReport) -> Value {
    json!({
        "name": r.name,
        "kind": r.kind.name(),
        "geometry": r.geometry,
        "len": r.len,
        "state": r.state.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "holders": r.holders.iter().map(|p| json!({
            "pid": p.pid,
            "liveness": liveness_name(p.liveness),
        })).collect::<Vec<_>>(),
        "defects": r.defects.iter().map(|d| json!({
            "slot": d.slot,
            "in_flight": d.in_flight,
            "problem": d.problem,
            "holder": d.holder.map(|p| json!({
                "pid": p.pid,
                "liveness": liveness_name(p.liveness),
            })),
        })).collect::<Vec<_>>(),
        "sound": r.is_sound(),
    })
}

fn check(
    segment: &str,
    structures: &[(StructureKind, String)],
    as_json: bool,
) -> Result<ExitCode, Failure> {
    let report = Segment::inspect(segment)?;
    let mut checked = Vec::new();
    let seg = if structures.is_empty() {
        inspect_open(segment).ok()
    } else {
        let seg = inspect_open(segment)?;
        for (kind, entry) in structures {
            checked.push(seg.check_structure(entry, *kind)?);
        }
        Some(seg)
    };
    // Every structure the segment describes is checked as the kind it is, too (the first
    // `LIVE_LIMIT` of them: a hostile segment can describe millions); one that fails its
    // check is a defect of the segment, not a failure of the command.
    let mut failed = Vec::new();
    if let Some(seg) = &seg {
        for d in report.descriptions.iter().take(LIVE_LIMIT) {
            let Some(kind) = d.structure_kind() else {
                continue;
            };
            if structures.iter().any(|(_, e)| *e == d.name) {
                continue;
            }
            match seg.check_structure(&d.name, kind) {
                Ok(r) => checked.push(r),
                Err(e) => failed.push(format!("described {kind} `{}`: {e}", d.name)),
            }
        }
    }
    let described = structures_of(&report, seg.as_ref());
    let dead: Vec<&Peer> = report
        .peers
        .iter()
        .filter(|p| p.liveness == Liveness::Dead)
        .collect();
    let sound = report.is_sound()
        && dead.is_empty()
        && failed.is_empty()
        && checked.iter().all(StructureReport::is_sound);
    if as_json {
        let mut value = report_json(&report);
        if let Some(defects) = value["defects"].as_array_mut() {
            defects.extend(failed.iter().map(|f| Value::from(f.as_str())));
        }
        value["structures"] = checked.iter().map(structure_json).collect();
        value["dead_peers"] = dead.iter().map(|p| p.pid).collect();
        value["sound"] = sound.into();
        print_report_json(&value, &report, &described)?;
    } else {
        if report.is_sound() && dead.is_empty() && failed.is_empty() {
            println!(
                "{}: no defects ({} entries)",
                report.segment,
                report.entries.len()
            );
        }
        for d in &report.defects {
            println!("{}: {d}", report.segment);
        }
        for f in &failed {
            println!("{}: {f}", report.segment);
        }
        for p in &dead {
            println!(
                "{}: process {} is recorded as using the segment but is dead (it stopped \
                 without letting go; what it was doing may be left half done)",
                report.segment, p.pid
            );
        }
        for r in &checked {
            let len = r.len.map_or(String::new(), |l| format!(", length {l}"));
            let state = if r.is_sound() {
                "no defects"
            } else {
                "defects:"
            };
            println!(
                "{} {} `{}` ({}{len}): {state}",
                report.segment, r.kind, r.name, r.geometry
            );
            if !r.state.is_empty() {
                let words: Vec<String> = r.state.iter().map(|(k, v)| format!("{k} {v}")).collect();
                println!("  {}", words.join(", "));
            }
            for p in &r.holders {
                println!("  held by pid {} ({})", p.pid, liveness_name(p.liveness));
            }
            for d in &r.defects {
                let note = if d.in_flight { " [in flight]" } else { "" };
                println!("  {d}{note}");
            }
        }
    }
    Ok(if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Without `--force`, removes only what `Segment::open` accepts: a ZeroIPC segment of a
/// supported version, with a sound table, owned by the caller.
fn repair(
    segment: &str,
    structures: &[(StructureKind, String)],
    stall_ms: u64,
    as_json: bool,
) -> Result<ExitCode, Failure> {
    let seg = Segment::open(segment)?;
    let mut results = Vec::new();
    let mut pending = 0;
    for (kind, entry) in structures {
        let r = seg.recover_structure(entry, *kind, Duration::from_millis(stall_ms))?;
        pending += r.pending;
        results.push((kind, entry, r));
    }
    if as_json {
        let list: Vec<Value> = results
            .iter()
            .map(|(kind, entry, r)| {
                json!({
                    "name": entry,
                    "kind": kind.name(),
                    "undone": r.undone,
                    "lost": r.lost,
                    "pending": r.pending,
                })
            })
            .collect();
        print_json(&json!({ "segment": seg.name(), "structures": list }));
    } else {
        for (kind, entry, r) in &results {
            println!(
                "{} {kind} `{entry}`: {} claim(s) of dead processes undone, {} item(s) lost, {} \
                 left for later",
                seg.name(),
                r.undone,
                r.lost,
                r.pending
            );
        }
    }
    Ok(if pending == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn staleness_name(s: Staleness) -> &'static str {
    match s {
        Staleness::NotZeroipc => "not-zeroipc",
        Staleness::InUse => "in-use",
        Staleness::Unrecorded => "unrecorded",
        Staleness::Stale => "stale",
        _ => "unknown",
    }
}

fn gc(
    dry_run: bool,
    unrecorded: bool,
    prefix: Option<&str>,
    as_json: bool,
) -> Result<ExitCode, Failure> {
    let mut found = Vec::new();
    for name in shm_names(prefix)? {
        // What cannot be opened or judged (another user's, removed meanwhile) is left alone.
        let judged = if dry_run {
            Segment::staleness(&name).map(|s| {
                let removable = s == Staleness::Stale || (unrecorded && s == Staleness::Unrecorded);
                (s, removable)
            })
        } else {
            Segment::remove_if_stale(&name, unrecorded)
        };
        match judged {
            Ok((Staleness::NotZeroipc, _)) | Err(_) => {}
            Ok((staleness, removed)) => found.push((format!("/{name}"), staleness, removed)),
        }
    }
    let verb = if dry_run { "would_remove" } else { "removed" };
    if as_json {
        let list: Vec<Value> = found
            .iter()
            .map(|(name, s, removed)| {
                json!({ "segment": name, "staleness": staleness_name(*s), verb: removed })
            })
            .collect();
        print_json(&json!({ "dry_run": dry_run, "segments": list }));
    } else {
        for (name, s, removed) in &found {
            let action = match (removed, dry_run) {
                (true, true) => "would remove",
                (true, false) => "removed",
                (false, _) => "kept",
            };
            println!("{action:<12} {name:<32} {}", staleness_name(*s));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(segment: &str, force: bool, as_json: bool) -> Result<ExitCode, Failure> {
    let removed = if force {
        Segment::inspect(segment)?.segment
    } else {
        let opened = SegmentOptions::new().read_only(true).open(segment);
        match opened {
            Ok(seg) => seg.name().to_owned(),
            Err(
                e @ (zeroipc::Error::InvalidSegmentName { .. } | zeroipc::Error::NotFound { .. }),
            ) => {
                return Err(e.into());
            }
            Err(e) => {
                return Err(Failure::other(format!(
                    "refusing to remove it: {e}; pass --force to remove it anyway"
                )));
            }
        }
    };
    Segment::unlink(segment)?;
    if as_json {
        print_json(&json!({ "removed": removed }));
    } else {
        println!("removed {removed}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One entry as `watch` shows it.
struct Watched {
    name: String,
    kind: Option<String>,
    type_name: Option<String>,
    capacity: Option<u64>,
    len: Option<u64>,
    state: Vec<(&'static str, i64)>,
    stats: Option<Stats>,
    /// A signal's value, decoded.
    value: Option<zeroipc::Value>,
}

/// The minimum, mean and maximum of the numbers of a numeric array (NaNs left out).
#[derive(Clone, Copy)]
struct Stats {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Stats {
    fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.sum += x;
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Every number of `v`, in order.
fn numbers(v: &zeroipc::Value, f: &mut impl FnMut(f64)) {
    match v {
        zeroipc::Value::Array(items) => items.iter().for_each(|i| numbers(i, f)),
        zeroipc::Value::Struct(fields) => fields.iter().for_each(|(_, i)| numbers(i, f)),
        other => {
            if let Some(x) = other.as_f64() {
                f(x);
            }
        }
    }
}

/// The statistics of the numeric array `name` of `layout`, read `DUMP_CHUNK` elements at a time.
fn array_stats(seg: &Segment, name: &str, layout: &DynLayout, len: u64) -> Option<Stats> {
    layout.leaf_scalar()?;
    let mut stats = Stats {
        count: 0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
    };
    let len = usize::try_from(len).ok()?;
    let mut at = 0;
    while at < len {
        let n = (len - at).min(DUMP_CHUNK);
        let chunk = seg
            .peek(name, Some(StructureKind::Array), Some(layout), at, n)
            .ok()?;
        for bytes in &chunk.elements {
            if let Ok(v) = layout.read(bytes) {
                numbers(&v, &mut |x| stats.add(x));
            }
        }
        at += n;
    }
    Some(stats)
}

/// What `watch` shows of every entry of `report`, read from `seg` now.
fn watched(report: &Report, seg: &Segment) -> Vec<Watched> {
    let described: HashMap<&str, &Description> = report
        .descriptions
        .iter()
        .map(|d| (d.name.as_str(), d))
        .collect();
    let mut read = 0usize;
    report
        .entries
        .iter()
        .map(|e| {
            let mut w = Watched {
                name: e.name.clone(),
                kind: None,
                type_name: None,
                capacity: None,
                len: None,
                state: Vec::new(),
                stats: None,
                value: None,
            };
            let Some(d) = described.get(e.name.as_str()) else {
                return w;
            };
            w.kind = Some(d.kind.clone());
            w.type_name = d.layout.as_ref().map(DynLayout::type_name);
            read += 1;
            if read > LIVE_LIMIT {
                return w;
            }
            let live = Live::read(seg, d);
            (w.capacity, w.len, w.state) = (live.capacity, live.len, live.state);
            match (live.kind, &live.layout) {
                (Some(StructureKind::Array), Some(layout)) => {
                    w.stats = array_stats(seg, &d.name, layout, live.len.unwrap_or(0));
                }
                (Some(kind @ StructureKind::Signal), _) => {
                    if let Ok(p) = seg.peek(&d.name, Some(kind), None, 0, 1) {
                        w.value = p.elements.first().and_then(|b| p.layout.read(b).ok());
                    }
                }
                _ => {}
            }
            w
        })
        .collect()
}

fn watched_json(w: &Watched) -> Value {
    json!({
        "name": w.name,
        "kind": w.kind,
        "type": w.type_name,
        "capacity": w.capacity,
        "len": w.len,
        "state": w.state.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "value": w.value.as_ref().map(value_json),
        "stats": w.stats.map(|s| json!({
            "count": s.count,
            "min": (s.count > 0).then_some(s.min),
            "mean": s.mean(),
            "max": (s.count > 0).then_some(s.max),
        })),
    })
}

fn watch(segment: &str, interval_ms: u64, once: bool, as_json: bool) -> Result<ExitCode, Failure> {
    let seg = inspect_open(segment)?;
    loop {
        let report = Segment::inspect(segment)?;
        let entries = watched(&report, &seg);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let written = if as_json {
            let head = json!({
                "segment": report.segment,
                "time_ms": millis,
                "peers": report.peers.iter().map(peer_json).collect::<Vec<_>>(),
                "defects": report.defect_count(),
            });
            let mut doc = Vec::new();
            write_with_array(&mut doc, &head, "entries", |item| {
                entries.iter().try_for_each(|w| item(&watched_json(w)))
            })
            .and_then(|()| {
                if once {
                    out.write_all(&doc)
                } else {
                    // One document per line.
                    let v: Value = serde_json::from_slice(&doc).map_err(std::io::Error::other)?;
                    serde_json::to_writer(&mut out, &v).map_err(std::io::Error::other)?;
                    writeln!(out)
                }
            })
            .and_then(|()| out.flush())
        } else {
            print_watch(&mut out, &report, &entries, once).and_then(|()| out.flush())
        };
        written.map_err(|e| Failure::other(format!("cannot write the output: {e}")))?;
        if once {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(interval_ms.max(10)));
    }
}

fn print_watch(
    out: &mut impl std::io::Write,
    report: &Report,
    entries: &[Watched],
    once: bool,
) -> std::io::Result<()> {
    if !once {
        // Clear the screen and go home, as `watch(1)` does.
        write!(out, "\x1b[2J\x1b[H")?;
    }
    writeln!(
        out,
        "{}  ({} entries, {} peers, {} defects)",
        report.segment,
        entries.len(),
        report.peers.len(),
        report.defect_count()
    )?;
    writeln!(
        out,
        "{:<31} {:<9} {:<20} {:>10} {:>10}  DETAILS",
        "NAME", "KIND", "TYPE", "CAPACITY", "LEN"
    )?;
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for w in entries {
        let mut details = match (&w.stats, w.state.is_empty()) {
            (Some(s), _) => match s.mean() {
                Some(mean) => format!("min {} mean {mean:.6} max {}", s.min, s.max),
                None => "no numbers".into(),
            },
            (None, false) => w
                .state
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            (None, true) => String::new(),
        };
        if let Some(v) = &w.value {
            details = format!("value {v}; {details}");
        }
        writeln!(
            out,
            "{:<31} {:<9} {:<20} {:>10} {:>10}  {details}",
            w.name.escape_debug().to_string(),
            dash(w.kind.clone()),
            dash(w.type_name.clone()),
            dash(w.capacity.map(|c| c.to_string())),
            dash(w.len.map(|l| l.to_string())),
        )?;
    }
    Ok(())
}
