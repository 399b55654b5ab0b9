"""Load collector configs the way the collector does: several files merged, ``${env:...}`` expanded.

Maps are merged key by key; lists (pipeline processors, exporters...) are replaced by the
later file, never concatenated. Every value remembers the file and line it came from, so
lint messages can point at it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

#: ``${env:NAME}``, ``${env:NAME:-default}`` and the bare ``${NAME}`` form.
_ENV = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Path_ = tuple[str, ...]
_STR = "tag:yaml.org,2002:str"


class ConfigLoadError(ValueError):
    """A config file is missing, not YAML, or not a mapping at the top."""


@dataclass(frozen=True)
class Location:
    """Where a config value was written."""

    file: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else str(self.file)


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One lint problem, printed as ``file:line: severity: message [rule]``."""

    location: Location
    severity: Severity
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message} [{self.rule}]"


@dataclass
class MergedConfig:
    """The merged config plus the location of every key and the env variables it reads."""

    files: tuple[Path, ...]
    data: dict[str, Any]
    locations: dict[Path_, Location] = field(default_factory=dict)
    unset_vars: dict[str, Location] = field(default_factory=dict)
    """Variables used with no default and not set in the environment (they expand to "")."""

    def where(self, *path: str) -> Location:
        """The location of ``path``, or of its nearest ancestor we know."""
        keys: Path_ = tuple(path)
        while keys:
            if keys in self.locations:
                return self.locations[keys]
            keys = keys[:-1]
        return Location(self.files[-1])

    def get(self, *path: str) -> Any:
        """The value at ``path``, or ``None`` when any step is missing."""
        node: Any = self.data
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return node


def expand(text: str, environ: Mapping[str, str], unset: list[str]) -> Any:
    """Expand env references in one scalar; a lone reference is re-typed like the collector."""

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in environ:
            return environ[name]
        if default is None:
            unset.append(name)
            return ""
        return default

    whole = _ENV.fullmatch(text)
    out = _ENV.sub(repl, text)
    if whole:
        try:
            return yaml.safe_load(out) if out else None
        except yaml.YAMLError:
            return out
    return out


def _convert(
    node: yaml.Node,
    path: Path_,
    file: Path,
    environ: Mapping[str, str],
    locs: dict[Path_, Location],
    unset: dict[str, Location],
) -> Any:
    locs[path] = Location(file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            locs[(*path, key)] = Location(file, key_node.start_mark.line + 1)
            out[key] = _convert(value_node, (*path, key), file, environ, locs, unset)
            locs[(*path, key)] = Location(file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, str(i)), file, environ, locs, unset)
            for i, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    if node.tag == _STR and _ENV.search(node.value):
        missing: list[str] = []
        value = expand(node.value, environ, missing)
        for name in missing:
            unset.setdefault(name, Location(file, node.start_mark.line + 1))
        return value
    # Let PyYAML construct ints, bools, nulls... from the resolved tag.
    return yaml.safe_load(yaml.serialize(node))


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value  # scalars and lists replace what was there
    return base


def load(files: list[Path] | tuple[Path, ...], environ: Mapping[str, str]) -> MergedConfig:
    """Read and merge ``files`` in order, expanding env references with ``environ``.

    Raises:
        ConfigLoadError: A file is missing, unreadable, invalid YAML, or not a mapping.
    """
    if not files:
        raise ConfigLoadError("no config files given")
    merged = MergedConfig(tuple(files), {})
    for file in files:
        try:
            text = Path(file).read_text()
        except OSError as exc:
            raise ConfigLoadError(f"{file}: cannot read: {exc.strerror or exc}") from exc
        try:
            root = yaml.compose(text)
        except yaml.YAMLError as exc:
            raise ConfigLoadError(f"{file}: invalid YAML: {exc}") from exc
        if root is None:
            continue
        if not isinstance(root, yaml.MappingNode):
            raise ConfigLoadError(f"{file}:{root.start_mark.line + 1}: top level must be a map")
        locs: dict[Path_, Location] = {}
        data = _convert(root, (), Path(file), environ, locs, merged.unset_vars)
        _merge(merged.data, data)
        # A later file that sets a path owns its location (and its children's).
        merged.locations.update(locs)
    return merged
