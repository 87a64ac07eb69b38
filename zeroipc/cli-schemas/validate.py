"""Validates a `zeroipc ... --json` document (stdin) against the schema of its command.

Usage: python3 validate.py SCHEMA_DIR COMMAND < output.json
Exit 0 when valid; otherwise prints the first error and exits 1.
"""
import json
import pathlib
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

schema_dir, command = pathlib.Path(sys.argv[1]), sys.argv[2]
schemas = [json.loads(p.read_text()) for p in sorted(schema_dir.glob("*.json"))]
registry = Registry().with_resources(
    (s["$id"], Resource.from_contents(s)) for s in schemas
)
by_name = {s["$id"].rsplit("/", 1)[-1]: s for s in schemas}
schema = by_name[f"{command}.json"]
Draft202012Validator.check_schema(schema)
errors = sorted(
    Draft202012Validator(schema, registry=registry).iter_errors(json.load(sys.stdin)),
    key=lambda e: list(e.path),
)
if errors:
    first = errors[0]
    print(f"{command}: {first.message} at {list(first.path)}")
    sys.exit(1)
