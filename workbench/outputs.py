"""Safe outputs: nothing the workbench did not write is ever deleted or overwritten.

An output folder (`OutputDir`) must be new, empty, or hold a previous output of the same command,
recognised only by its marker file `.workbench-output.json` (which lists every file the command
wrote, with size and SHA-256): a folder's contents are never taken as a sign of an earlier output
(a user's own `results.json` or `manifest.json` is the user's), and folders of versions before the
marker are the user's too. Anything else is refused with one line *before any compute*, unless
`overwrite=True` (`--overwrite`), which lets the command write into the folder while replacing only
the files it writes itself. A file is replaced only when the marker lists it with the same content
(the workbench wrote it and nobody changed it since) or with `overwrite`; files the previous output
listed but this one does not write are removed only when unchanged since the workbench wrote them.

Every file is written inside a `Staging` transaction: to a temporary name in its final folder,
flushed and fsync'd; only when every file of the output is staged are they renamed into place (the
marker last) and the folders fsync'd. A failure while staging removes the temporary files and
changes nothing; a failure while renaming reports which files were written. `OutputFile` applies
the same rules to a single file (`workbench query --out`, `workbench curve --plot`).

    out = OutputDir(path, "edit", overwrite=args.overwrite)   # checks, before any compute
    out.check_names(["edited.png", "metrics.json"])           # optional: refuse foreign files early
    with out.staging() as st:                                 # writes, all or nothing
        st.write_bytes("edited.png", data)
        st.write("maps/a.npy", lambda fh: np.save(fh, arr))
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from .errors import WorkbenchError, os_error_line

__all__ = ["MARKER", "TEMP_TAG", "OutputDir", "OutputFile", "OutputOptions", "Staging", "check_writable"]

MARKER = ".workbench-output.json"
TEMP_TAG = ".wb-tmp-"
_counter = itertools.count()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(path: Path, flag: str) -> None:
    """The nearest existing folder at or above `path` must be a writable folder."""
    base = _nearest_existing(path)
    if base.exists() and not base.is_dir():
        raise WorkbenchError(f"{flag} {path}: {base} is a file, not a folder: choose another path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise WorkbenchError(f"{flag} {path}: the folder {base} is not writable (permission denied or read-only): "
                             "choose a writable folder")


def _rel_ok(rel: str) -> str:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts or p.name.startswith(TEMP_TAG):
        raise ValueError(f"not a relative output name: {rel!r}")
    return p.as_posix()


class Staging:
    """The files of one output being written: temporary names until `commit` renames them all.

    Use through `OutputDir.staging()`; `write(rel, writer)` calls `writer(binary_file)`."""

    def __init__(self, owner: "OutputDir"):
        self.owner = owner
        self.staged: dict[str, Path] = {}
        self.created_dirs: list[Path] = []

    def _mkdirs(self, folder: Path) -> None:
        missing = []
        p = folder
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            self.created_dirs.append(d)

    def write(self, rel: str, writer: Callable[[BinaryIO], None]) -> None:
        """Stage `rel` (a path inside the output folder): `writer` writes its bytes to a file object."""
        rel = _rel_ok(rel)
        self.owner.check_names([rel])
        final = self.owner.path / rel
        try:
            self._mkdirs(final.parent)
            tmp = final.with_name(f"{TEMP_TAG}{os.getpid()}-{next(_counter)}-{final.name}")
            self.staged[rel] = tmp  # before opening: a failed write still removes its temp file
            with open(tmp, "wb") as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            if exc.filename is None or TEMP_TAG in str(exc.filename):
                exc.filename = str(final)
            raise WorkbenchError(os_error_line(exc, "could not write") + f"; nothing in {self.owner.path} was "
                                 "changed") from None

    def staged_path(self, rel: str) -> Path:
        """Where the staged (not yet committed) file `rel` lies now, to read it back."""
        return self.staged[_rel_ok(rel)]

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Stage `rel` with `data`."""
        self.write(rel, lambda fh: fh.write(data))

    def write_text(self, rel: str, text: str) -> None:
        """Stage `rel` with `text` (UTF-8)."""
        self.write_bytes(rel, text.encode("utf-8"))

    def abort(self) -> None:
        """Remove the temporary files (and the folders this staging created, when empty)."""
        for tmp in self.staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        for d in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()
        self.staged.clear()

    def commit(self) -> list[str]:
        """Rename every staged file into place, drop the previous output's stale files, write the
        marker last; returns the names written."""
        self.owner.check_names(list(self.staged))
        done: list[str] = []
        try:
            for rel, tmp in self.staged.items():
                os.replace(tmp, self.owner.path / rel)
                done.append(rel)
        except OSError as exc:
            if exc.filename is None or TEMP_TAG in str(exc.filename):
                exc.filename = str(self.owner.path / rel)
            for rel2 in self.staged:
                if rel2 not in done:
                    with contextlib.suppress(OSError):
                        self.staged[rel2].unlink()
            wrote = ", ".join(done) if done else "nothing"
            raise WorkbenchError(os_error_line(exc, "could not write") + f"; wrote {wrote} in {self.owner.path}, "
                                 "the other files were not written") from None
        self.owner._finish(done)
        return done


class OutputDir:
    """An output folder of one `command` (see the module docstring). Raises `WorkbenchError` at
    construction when the folder may not be written (before any compute)."""

    def __init__(self, path: str | os.PathLike, command: str, *, overwrite: bool = False, flag: str = "--out"):
        raw = str(path)
        if raw == "":
            raise WorkbenchError(f"{flag} is empty: pass a folder path")
        self.path = Path(path).expanduser().absolute()
        self.command, self.overwrite, self.flag = command, overwrite, flag
        self.previous: dict[str, dict] = {}
        self._check_folder()

    # --- checks -------------------------------------------------------------------------
    def _check_folder(self) -> None:
        p = self.path
        if p.is_symlink() and not p.exists():
            raise WorkbenchError(f"{self.flag} {p} is a broken symbolic link (or a link loop): remove it or choose another folder")
        if p.exists() and not p.is_dir():
            raise WorkbenchError(f"{self.flag} {p} is a file, not a folder: pass a new or empty folder")
        check_writable(p, self.flag)
        if not p.exists():
            return
        entries = [e for e in p.iterdir() if not e.name.startswith(TEMP_TAG)]
        if not entries:
            return
        marker = p / MARKER
        meta = None
        if marker.is_file():
            try:
                meta = json.loads(marker.read_text())
            except (OSError, ValueError):
                meta = None
        if isinstance(meta, dict) and meta.get("command") == self.command and isinstance(meta.get("files"), dict) \
                and all(_listed(rel, rec) for rel, rec in meta["files"].items()):
            self.previous = dict(meta["files"])
            return
        if self.overwrite:
            return
        other = f" (it holds the output of `workbench {meta['command']}`)" if isinstance(meta, dict) and \
            meta.get("command") else ""
        names = ", ".join(sorted(e.name for e in entries)[:3]) + (" ..." if len(entries) > 3 else "")
        raise WorkbenchError(f"{self.flag} {p} is not empty{other} ({names}) and is no earlier output of `workbench "
                             f"{self.command}`: pass a new or empty folder, or --overwrite to write into it (only the "
                             f"files that `workbench {self.command}` writes are replaced)")

    def is_ours(self, rel: str) -> bool:
        """True when `rel` is missing or is a file the workbench wrote and nobody changed since."""
        f = self.path / rel
        if not f.exists() and not f.is_symlink():
            return True
        if f.is_symlink() or not f.is_file():
            return False
        rec = self.previous.get(rel)
        if not isinstance(rec, dict):
            return False
        try:
            return f.stat().st_size == rec.get("size") and _sha256(f) == rec.get("sha256")
        except OSError:
            return False

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse (one line) when a file the command is about to write exists and is not its own
        (or is a folder or a link), unless overwrite; call it before computing when names are known."""
        for rel in names:
            rel = _rel_ok(rel)
            f = self.path / rel
            if f.is_symlink() or (f.exists() and not f.is_file()):
                raise WorkbenchError(f"{f} exists and is not a plain file (a folder or a link): move it away or "
                                     f"choose another {self.flag}")
            if not self.overwrite and not self.is_ours(rel):
                raise WorkbenchError(f"{f} exists and was not written by `workbench {self.command}` (or was changed "
                                     f"since): move it away, choose another {self.flag}, or pass --overwrite")

    # --- writing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        """A transaction: files written inside it appear only when the block ends without error."""
        st = Staging(self)
        try:
            yield st
        except BaseException:
            st.abort()
            raise
        try:
            st.commit()
        except BaseException:
            st.abort()
            raise

    def _finish(self, written: list[str]) -> None:
        files: dict[str, dict] = {}
        for rel in written:
            f = self.path / rel
            files[rel] = {"size": f.stat().st_size, "sha256": _sha256(f)}
        for rel, rec in self.previous.items():  # the previous output's files that this one did not rewrite
            if rel in files or not isinstance(rec, dict):
                continue
            with contextlib.suppress(ValueError):
                _rel_ok(rel)
                if self.is_ours(rel) and (self.path / rel).is_file():
                    with contextlib.suppress(OSError):
                        (self.path / rel).unlink()
        doc = {"command": self.command, "package": "genrate-workbench", "files": files}
        tmp = self.path / f"{TEMP_TAG}{os.getpid()}-{next(_counter)}-{MARKER}"
        try:
            with open(tmp, "w") as fh:
                fh.write(json.dumps(doc, indent=1))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / MARKER)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            exc.filename = str(self.path / MARKER)
            raise WorkbenchError(os_error_line(exc, "could not write") + f"; wrote {', '.join(written)} in "
                                 f"{self.path}, but not its marker") from None
        for d in {(self.path / rel).parent for rel in written} | {self.path}:
            _sweep_temps(d)
            _fsync_dir(d)
        self.previous = files


class OutputFile:
    """One output file of `command`: refused before compute when it exists and is not the
    workbench's (`ours(path)` says whether an existing file was written by the command) unless
    `overwrite`; written to a temporary name in its folder, fsync'd and renamed."""

    def __init__(self, path: str | os.PathLike, command: str, *, overwrite: bool = False,
                 ours: Callable[[Path], bool] | None = None, flag: str = "--out"):
        if str(path) == "":
            raise WorkbenchError(f"{flag} is empty: pass a file path")
        self.path = Path(path).expanduser().absolute()
        self.command, self.flag = command, flag
        p = self.path
        if p.is_symlink() and not p.exists():
            raise WorkbenchError(f"{flag} {p} is a broken symbolic link (or a link loop): remove it or choose another file")
        if p.exists() and not p.is_file():
            raise WorkbenchError(f"{flag} {p} exists and is not a regular file (a folder or a device): pass a "
                                 "file path")
        check_writable(p.parent, flag)
        if p.exists() and not overwrite and not (ours is not None and _safe(ours, p)):
            raise WorkbenchError(f"{flag} {p} already exists and was not written by `workbench {command}`: choose "
                                 "another file name, or pass --overwrite to replace it")

    def write(self, writer: Callable[[BinaryIO], None]) -> Path:
        """Write the file (all or nothing); returns its path."""
        created: list[Path] = []
        tmp = self.path.with_name(f"{TEMP_TAG}{os.getpid()}-{next(_counter)}-{self.path.name}")
        try:
            p = self.path.parent
            while not p.exists():
                created.append(p)
                p = p.parent
            for d in reversed(created):
                d.mkdir()
            with open(tmp, "wb") as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            for d in created:
                with contextlib.suppress(OSError):
                    d.rmdir()
            if exc.filename is None or TEMP_TAG in str(exc.filename):
                exc.filename = str(self.path)
            raise WorkbenchError(os_error_line(exc, "could not write") + "; nothing was written") from None
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            for d in created:
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
        _fsync_dir(self.path.parent)
        return self.path

    def write_bytes(self, data: bytes) -> Path:
        """Write `data` (all or nothing)."""
        return self.write(lambda fh: fh.write(data))


@dataclass(frozen=True)
class OutputOptions:
    """Where a command writes, parsed once from its flags: `path` (`--out`, or the flag named by
    `flag`), `overwrite` (`--overwrite`: write into a folder or over a file that is not an earlier
    output of the command). `folder(command)` and `file(command, ours=)` open it under the rules above
    (`OutputDir`, `OutputFile`), checked before any compute."""

    path: str | os.PathLike
    overwrite: bool = False
    flag: str = "--out"

    def folder(self, command: str) -> "OutputDir":
        """The output folder of `command` (refused with one line when it may not be written)."""
        return OutputDir(self.path, command, overwrite=self.overwrite, flag=self.flag)

    def file(self, command: str, *, ours: Callable[[Path], bool] | None = None) -> "OutputFile":
        """The output file of `command`; `ours(path)` recognises an existing file the command wrote."""
        return OutputFile(self.path, command, overwrite=self.overwrite, ours=ours, flag=self.flag)


def _sweep_temps(folder: Path) -> None:
    """Remove temporary files that a killed workbench process left in `folder` (its own names only,
    and only when the process that made them is gone)."""
    for f in folder.glob(f"{TEMP_TAG}*"):
        pid = f.name[len(TEMP_TAG):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                f.unlink()
        except OSError:
            pass


def _listed(rel, rec) -> bool:
    """A marker entry the workbench could have written: a relative name inside the folder with a
    size and a SHA-256 (an edited marker naming `../x` or lacking hashes owns nothing)."""
    try:
        _rel_ok(str(rel))
    except ValueError:
        return False
    return isinstance(rec, dict) and isinstance(rec.get("size"), int) and isinstance(rec.get("sha256"), str) and \
        len(rec["sha256"]) == 64


def _safe(ours: Callable[[Path], bool], p: Path) -> bool:
    try:
        return bool(ours(p))
    except Exception:
        return False
