//! `zeroipc-codegen`: NumPy and C bindings from zeroipc schema files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use zeroipc_codegen::{Generated, Schema, write_if_changed};

/// Generate NumPy and C bindings for zeroipc shared-memory types from schema JSON files.
#[derive(Debug, Parser)]
#[command(name = "zeroipc-codegen", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  zeroipc-codegen generate --schema schemas/demo.json --python shared_types.py --c-header shared_types.h
  zeroipc-codegen check --schema schemas/demo.json --python shared_types.py --c-header shared_types.h

Exit codes: 0 success (check: files are current), 1 invalid schema, I/O error or stale files
(check prints a unified diff), 2 usage error.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the bindings (only files whose bytes change are touched).
    Generate(Outputs),
    /// Verify that the bindings on disk are current; print a unified diff and exit 1 if not.
    Check(Outputs),
}

#[derive(Debug, Args)]
struct Outputs {
    /// Schema JSON files (`zeroipc-schema/1`); their types are merged.
    #[arg(long = "schema", value_name = "FILE", required = true, num_args = 1..)]
    schemas: Vec<PathBuf>,
    /// Path of the NumPy module.
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Path of the C header.
    #[arg(long = "c-header", value_name = "PATH")]
    c_header: Option<PathBuf>,
}

fn file_name(path: &Path, fallback: &str) -> String {
    path.file_name()
        .map_or_else(|| fallback.to_owned(), |n| n.to_string_lossy().into_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Command::Generate(out) | Command::Check(out)) = &cli.command;
    let check = matches!(cli.command, Command::Check(_));
    let (python, c_header) = match (&out.python, &out.c_header) {
        (None, None) if check => {
            eprintln!("zeroipc-codegen: check needs --python and/or --c-header");
            return ExitCode::from(2);
        }
        (None, None) => (
            Some(PathBuf::from("shared_types.py")),
            Some(PathBuf::from("shared_types.h")),
        ),
        (p, c) => (p.clone(), c.clone()),
    };
    let schemas: Result<Vec<Schema>, _> =
        out.schemas.iter().map(|p| Schema::from_file(p)).collect();
    let generated = schemas.and_then(Schema::merge).and_then(|schema| {
        Generated::from_schema(
            schema,
            python.as_deref().map_or_else(
                || "shared_types.py".into(),
                |p| file_name(p, "shared_types.py"),
            ),
            c_header.as_deref().map_or_else(
                || "shared_types.h".into(),
                |p| file_name(p, "shared_types.h"),
            ),
        )
    });
    let generated = match generated {
        Ok(g) => g,
        Err(e) => {
            eprintln!("zeroipc-codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let targets: Vec<(&Path, &str)> = [
        python.as_deref().map(|p| (p, generated.python.as_str())),
        c_header
            .as_deref()
            .map(|p| (p, generated.c_header.as_str())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if check {
        let diffs = match generated.check(&targets) {
            Ok(diffs) => diffs,
            Err(e) => {
                eprintln!("zeroipc-codegen: {e}");
                return ExitCode::FAILURE;
            }
        };
        for d in &diffs {
            print!("{d}");
        }
        if diffs.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "zeroipc-codegen: {} file(s) are stale; run `zeroipc-codegen generate` with the same arguments",
            diffs.len()
        );
        return ExitCode::FAILURE;
    }
    for (path, text) in targets {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("zeroipc-codegen: cannot create `{}`: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        match write_if_changed(path, text) {
            Ok(true) => println!("wrote {}", path.display()),
            Ok(false) => println!("unchanged {}", path.display()),
            Err(e) => {
                eprintln!("zeroipc-codegen: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
