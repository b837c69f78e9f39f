"""Structural figures of a source tree, read with `ast` only (nothing is imported or run).

    python bench/code_metrics.py [TREE]          # TREE defaults to the repository root
    python bench/code_metrics.py TREE --json     # the same figures as one JSON object
    python bench/code_metrics.py --table BEFORE.json AFTER.json   # before -> after, as Markdown

Prints, for the packages `workbench`, `cache`, `analysis`, `dashboards` (and, for lines of code
only, `tests` and `bench`):

- lines of code per package: physical lines, and code lines (not blank, not comment-only, not a
  docstring);
- the 10 longest functions (physical lines from `def` to the last line of the body; a nested
  function counts inside its parent and on its own);
- the largest parameter counts (every parameter, `*args` and `**kwargs` one each, `self`/`cls`
  of a method not counted) and every function above 8;
- places that build a cube key or cube attributes, outside the module that defines `cube_key`
  (see `key_places` for the three kinds counted);
- cube pipelines: functions of the `cache` package that invert an image themselves (call
  `prepare_image` or `invert`): each is a separate path from image bytes to a cube;
- import cycles among the project's modules (strongly connected components of the import graph:
  once over module-level imports, once over every import, function-local ones included), and
  imports that point up the layers (dashboards -> analysis -> cache -> workbench; the command-line
  modules `workbench.cli` and `workbench.commands.*` may import every layer);
- function-local imports: how many, how many are on the allowed list below (optional or heavy on
  purpose, each with its reason), and where the others are.

Duplicated blocks are counted by the `duplicates` tool when it is on PATH, over a copy of the
four packages plus `bench/` and `examples/` (tests left out), six lines or more.
"""
from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
from collections import defaultdict
from pathlib import Path

__all__ = ["ALLOWED_LOCAL_IMPORTS", "measure", "table", "main"]

PACKAGES = ("workbench", "cache", "analysis", "dashboards")
LOC_PACKAGES = PACKAGES + ("tests", "bench")
#: a layer may import its own and the lower layers only (higher number = upper layer)
LAYER = {"workbench": 0, "cache": 1, "analysis": 2, "dashboards": 3}
#: modules allowed to import every layer: the command line
TOP_MODULES = re.compile(r"^workbench\.(cli|commands)(\.|$)")

#: function-local imports that are fine, by imported module prefix: (reason, where it may be local).
#: `where` is a dotted prefix of the importing function's qualified name (`module.function`): a
#: module or package, or one function ("" = anywhere).
ALLOWED_LOCAL_IMPORTS: dict[str, tuple[str, str]] = {
    "panel": ("heavy (about 8 s): only the dashboards need it", ""),
    "bokeh": ("heavy, comes with Panel: only the dashboards need it", ""),
    "playwright": ("optional (test extra): browser tests and screenshots only", ""),
    "dask.distributed": ("heavy; only `--scheduler`/`--local-cluster` batches use a cluster", ""),
    "distributed": ("heavy; only `--scheduler`/`--local-cluster` batches use a cluster", ""),
    "transformers": ("heavy (about 7 s on top of torch); only text-conditioned models need a text encoder", ""),
    "sklearn": ("optional (test extra)", ""),
    "matplotlib": ("optional (test extra)", ""),
    "pysaliency": ("optional: only for comparing with pysaliency's metrics", ""),
    "psutil": ("optional (test extra)", ""),
    "google_crc32c": ("optional C extension; a pure-Python fallback exists", ""),
    "cv2": ("heavy-ish (1.3 s): only the classical edit baselines use OpenCV", "workbench.editing"),
    "skimage.restoration": ("heavy-ish (0.2-0.8 s): only the biharmonic edit baseline uses it, and `workbench "
                            "--help` imports workbench.editing", "workbench.editing.baselines"),
    "scipy.stats": ("heavy (1-3 s): `import analysis` loads analysis.fluctuation, whose significance maps alone "
                    "need the normal distribution", "analysis.fluctuation"),
    "huggingface_hub": ("its constants read HF_HOME and HF_HUB_OFFLINE once, when imported, and the command line "
                        "sets the offline default after `workbench --help` has imported the adapters",
                        "workbench.adapters.loading"),
    # `import cache` (and so `import analysis`: the accessor, CubeParams, fluctuation maps of arrays)
    # does not load the Zarr stack (0.6-0.9 s, 170 modules); opening a store does
    "cache.store": ("heavy (Zarr, 0.6-0.9 s): `import cache` gives `cache.CubeStore` lazily", "cache.__getattr__"),
    "cache.open": ("heavy (Zarr, 0.6-0.9 s): `import cache` gives `cache.open_store` lazily", "cache.__getattr__"),
    "cache.slots": ("heavy (Zarr, 0.6-0.9 s): `import cache` registers the accessor, which reads a store's group "
                    "only when asked to select an image from it", "cache.accessor.select_image"),
    # a store opened to read cubes (queries, the dashboards, analysis) does not load the engine that computes them
    "cache.build": ("computing only (about 1 s: the estimators, scipy.stats): a store opened to read cubes does not "
                    "load them", "cache.store"),
    "cache.batch": ("computing only (about 1 s: the batch engine and the model loader): a store opened to read "
                    "cubes does not load it", "cache.store"),
    "dask.array": ("heavy (about 0.5 s): only creating a group writes its template through dask",
                   "cache.slots.create_group"),
    "fcntl": ("POSIX only: absent on Windows, where the group lock is skipped", "cache.slots"),
    # `workbench --help` imports every command module to build its parser: a command loads the
    # layers above the engine (and the libraries help does not load) inside the function that runs
    # it, so that help and a bad flag answer at once; the engine's own modules load with help anyway
    "diffusers": ("heavy (about 10 s on top of torch): `workbench --help` imports the adapters, which load it "
                  "only when a model is built", ""),
    "cache": ("heavy (xarray, Zarr, scipy): `workbench --help` imports every command module, a command loads "
              "the layers above the engine when it runs", "workbench.commands"),
    "analysis": ("heavy (xarray, scipy, plotly): `workbench --help` imports every command module, a command "
                 "loads the layers above the engine when it runs", "workbench.commands"),
    "dashboards": ("heavy (Panel, about 8 s): only `workbench dashboard` loads them, when it runs",
                   "workbench.commands"),
    "plotly": ("0.1-0.2 s that `workbench --help` need not pay: only the HTML figures of `curve` and `edit` "
               "draw with it", "workbench.commands"),
}


# ----------------------------------------------------------------------------------------- files
def _py_files(root: Path, package: str) -> list[Path]:
    base = root / package
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError):
        return None


# ----------------------------------------------------------------------------------- lines of code
def _docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def _code_lines(text: str, tree: ast.Module | None) -> int:
    """Lines carrying a token that is not a comment, not layout, and not part of a docstring."""
    skip = _docstring_lines(tree) if tree is not None else set()
    layout = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
              tokenize.ENDMARKER, tokenize.ENCODING}
    lines: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in layout:
                lines.update(range(tok.start[0], tok.end[0] + 1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return sum(1 for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#"))
    return len(lines - skip)


def lines_of_code(root: Path) -> dict[str, dict[str, int]]:
    """{package: {"files", "lines", "code"}} for the project's packages, tests and bench."""
    out = {}
    for pkg in LOC_PACKAGES:
        files = _py_files(root, pkg)
        lines = code = 0
        for f in files:
            text = f.read_text(encoding="utf-8")
            lines += len(text.splitlines())
            code += _code_lines(text, _parse(f))
        out[pkg] = {"files": len(files), "lines": lines, "code": code}
    return out


# ------------------------------------------------------------------------------------- functions
def _functions(tree: ast.Module, module: str):
    """(qualified name, node, is_method) of every function, nested ones included."""
    def walk(node, prefix, in_class):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}.{child.name}"
                yield name, child, in_class
                yield from walk(child, name, False)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}.{child.name}", True)
            else:
                yield from walk(child, prefix, in_class)
    yield from walk(tree, module, False)


def _param_count(fn: ast.FunctionDef, is_method: bool) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)
    if is_method and not static and names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)


def _called_names(fn: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                out.add(f.id)
            elif isinstance(f, ast.Attribute):
                out.add(f.attr)
    return out


def _own_nodes(fn: ast.AST):
    """The nodes of a function's body, not descending into nested functions or classes."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _is_attr_dict(node: ast.AST) -> bool:
    """A dict display or dict(...) call with the cube attribute key 'model_fingerprint'."""
    if isinstance(node, ast.Dict):
        return any(isinstance(k, ast.Constant) and k.value == "model_fingerprint" for k in node.keys)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return any(k.arg == "model_fingerprint" for k in node.keywords)
    return False


# ----------------------------------------------------------------------------------------- imports
def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _targets(node, module: str, is_pkg: bool, known: set[str]) -> list[str]:
    """The imported module names (project modules resolved to the deepest known module)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = _resolve(module, is_pkg, node)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for n in names:
        while n and n not in known and "." in n and n.split(".")[0] in PACKAGES:
            n = n.rsplit(".", 1)[0]
        out.append(n)
    return out


def _local_allowed(imported: str, importer: str) -> str | None:
    top = imported.split(".")[0]
    for prefix, (reason, where) in ALLOWED_LOCAL_IMPORTS.items():
        if prefix and not (imported == prefix or imported.startswith(prefix + ".")):
            continue
        if where and not (importer == where or importer.startswith(where + ".")):
            continue
        if not prefix and (top in sys.stdlib_module_names or top == "__future__"):
            continue
        return reason
    return None


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def _layer(module: str) -> int | None:
    if TOP_MODULES.match(module):
        return None
    return LAYER.get(module.split(".")[0])


# ------------------------------------------------------------------------------------------ measure
def tree_name(root: Path) -> str:
    """What the figures were measured on, without the machine's path: the short commit of `root`
    (with `-dirty` for uncommitted changes) when `root` is the top of a git checkout, else its folder's name."""
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    top = git("rev-parse", "--show-toplevel")
    if top and Path(top).resolve() == Path(root).resolve():
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")
    return Path(root).resolve().name


def measure(root: Path) -> dict:
    """Every figure of the module docstring for the tree at `root`, as a JSON-able dict."""
    root = Path(root)
    parsed = {}
    for pkg in PACKAGES:
        for f in _py_files(root, pkg):
            tree = _parse(f)
            if tree is not None:
                parsed[_module_name(root, f)] = (f, tree)
    known = set(parsed)

    funcs, params = [], []
    key_defs = {m for m, (_, t) in parsed.items()
                if any(isinstance(n, ast.FunctionDef) and n.name == "cube_key" for n in t.body)}
    attr_dicts, key_calls, fingerprints, pipelines = [], [], [], []
    for module, (path, tree) in parsed.items():
        for name, fn, is_method in _functions(tree, module):
            funcs.append((fn.end_lineno - fn.lineno + 1, name))
            params.append((_param_count(fn, is_method), name))
            if module in key_defs:
                continue
            own = list(_own_nodes(fn))
            calls = {n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in own
                     if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}
            if any(_is_attr_dict(n) for n in own):
                attr_dicts.append(name)
            if "cube_key" in calls:
                key_calls.append(name)
            if "fingerprint" in calls and not module.startswith("workbench.adapters") \
                    and not module.startswith("workbench.families"):
                fingerprints.append(name)
            if module.split(".")[0] == "cache" and calls & {"prepare_image", "invert"}:
                pipelines.append(name)

    graph_top: dict[str, set[str]] = defaultdict(set)
    graph_all: dict[str, set[str]] = defaultdict(set)
    local, upward = [], set()
    for module, (path, tree) in parsed.items():
        is_pkg = path.name == "__init__.py"
        graph_top[module], graph_all[module] = set(), set()
        scopes = {}
        for name, fn, _ in _functions(tree, module):
            for n in _own_nodes(fn):
                if isinstance(n, (ast.Import, ast.ImportFrom)):
                    scopes[id(n)] = name
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = _targets(node, module, is_pkg, known)
            in_fn = id(node) in scopes
            for t in targets:
                if t in known and t != module:
                    graph_all[module].add(t)
                    if not in_fn:
                        graph_top[module].add(t)
                    lo, hi = _layer(module), _layer(t)
                    if lo is not None and hi is not None and hi > lo:
                        upward.add(f"{module} -> {t}")
            if in_fn:  # one count per import statement; allowed when all its modules are
                reasons = [_local_allowed(t, scopes[id(node)]) for t in targets] or [None]
                reason = None if None in reasons else reasons[0]
                local.append({"where": f"{path.relative_to(root)}:{node.lineno}", "function": scopes[id(node)],
                              "imports": ", ".join(sorted(set(targets))), "allowed": reason})

    funcs.sort(key=lambda x: (-x[0], x[1]))
    params.sort(key=lambda x: (-x[0], x[1]))
    not_allowed = [x for x in local if x["allowed"] is None]
    per_file = defaultdict(int)
    for x in not_allowed:
        per_file[x["where"].split(":")[0]] += 1
    return {
        "tree": tree_name(root),
        "lines_of_code": lines_of_code(root),
        "longest_functions": [{"lines": n, "function": f} for n, f in funcs[:10]],
        "largest_parameter_count": params[0][0] if params else 0,
        "functions_over_8_parameters": [{"parameters": n, "function": f} for n, f in params if n > 8],
        "key_places": {"attribute_dicts": sorted(attr_dicts), "cube_key_calls": sorted(key_calls),
                       "fingerprint_calls": sorted(fingerprints),
                       "total": len(set(attr_dicts) | set(key_calls) | set(fingerprints))},
        "cube_pipelines": sorted(pipelines),
        "import_cycles_module_level": _sccs(graph_top),
        "import_cycles_any_import": _sccs(graph_all),
        "upward_imports": sorted(upward),
        "function_local_imports": {
            "total": len(local), "allowed": len(local) - len(not_allowed), "other": len(not_allowed),
            "other_per_file": dict(sorted(per_file.items(), key=lambda kv: (-kv[1], kv[0]))),
            "allowed_list": {k or "(any upper layer)": f"{r}{' (in ' + w + ')' if w else ''}"
                             for k, (r, w) in ALLOWED_LOCAL_IMPORTS.items()},
        },
        "duplicated_blocks": duplicated_blocks(root),
    }


def duplicated_blocks(root: Path) -> dict:
    """Pairs of places sharing 6+ lines, by the `duplicates` tool over the packages, bench and
    examples (tests left out); None where the tool is not installed."""
    tool = shutil.which("duplicates")
    if tool is None:
        return {"pairs": None, "note": "`duplicates` not on PATH"}
    with tempfile.TemporaryDirectory() as tmp:
        for part in PACKAGES + ("bench", "examples"):
            if (root / part).is_dir():
                shutil.copytree(root / part, Path(tmp) / part,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "results", "reference"))
        run = subprocess.run([tool, "--repo", tmp, "--most", "200", "--seconds", "120"],
                             capture_output=True, text=True, check=False)
    lines = run.stdout.splitlines()
    first = lines[0] if lines else ""
    m = re.match(r"(\d+) pairs?", first)
    pairs = 0 if first.startswith("no duplicates") else (int(m.group(1)) if m else None)
    return {"pairs": pairs, "rows": [ln for ln in lines[1:] if re.match(r"D\d+ ", ln)]}


def _print(r: dict) -> None:
    print(f"tree: {r['tree']}")
    print("\nlines of code per package (files / physical lines / code lines):")
    for pkg, v in r["lines_of_code"].items():
        print(f"  {pkg:<11} {v['files']:>4} {v['lines']:>7} {v['code']:>7}")
    print("\n10 longest functions (lines):")
    for x in r["longest_functions"]:
        print(f"  {x['lines']:>4}  {x['function']}")
    print(f"\nlargest parameter count: {r['largest_parameter_count']}")
    print(f"functions with more than 8 parameters: {len(r['functions_over_8_parameters'])}")
    for x in r["functions_over_8_parameters"]:
        print(f"  {x['parameters']:>3}  {x['function']}")
    k = r["key_places"]
    print(f"\nplaces that build a cube key or attributes (functions, outside the key module): {k['total']}")
    for label in ("attribute_dicts", "cube_key_calls", "fingerprint_calls"):
        print(f"  {label}: {len(k[label])}  {', '.join(k[label])}")
    print(f"\ncube pipelines (cache functions that invert an image): {len(r['cube_pipelines'])}")
    for p in r["cube_pipelines"]:
        print(f"  {p}")
    for label in ("import_cycles_module_level", "import_cycles_any_import"):
        print(f"\n{label.replace('_', ' ')}: {len(r[label])}")
        for c in r[label]:
            print("  " + " <-> ".join(c))
    print(f"\nimports pointing up the layers: {len(r['upward_imports'])}")
    for u in r["upward_imports"]:
        print(f"  {u}")
    li = r["function_local_imports"]
    print(f"\nfunction-local imports: {li['total']} ({li['allowed']} on the allowed list, {li['other']} others)")
    for f, n in li["other_per_file"].items():
        print(f"  {n:>3}  {f}")
    print("allowed function-local imports:")
    for k2, why in li["allowed_list"].items():
        print(f"  {k2}: {why}")
    d = r["duplicated_blocks"]
    print(f"\nduplicated blocks (6+ lines, outside tests): {d['pairs']}")
    for row in d.get("rows", []):
        print(f"  {row}")


def table(before: dict, after: dict) -> str:
    """The before -> after figures of two `measure` results as Markdown table rows."""
    def loc(r, pkg):
        return r["lines_of_code"].get(pkg, {}).get("code", 0)

    def top(r):
        f = r["longest_functions"][0]
        return f"{f['lines']} (`{f['function']}`)"

    def local(r):
        li = r["function_local_imports"]
        return f"{li['total']} ({li['other']} not on the allowed list)"

    rows = [(f"code lines, `{pkg}/`", loc(before, pkg), loc(after, pkg)) for pkg in LOC_PACKAGES]
    rows += [
        ("longest function (lines)", top(before), top(after)),
        ("10th longest function (lines)", before["longest_functions"][-1]["lines"],
         after["longest_functions"][-1]["lines"]),
        ("largest parameter count", before["largest_parameter_count"], after["largest_parameter_count"]),
        ("functions with more than 8 parameters", len(before["functions_over_8_parameters"]),
         len(after["functions_over_8_parameters"])),
        ("places that build a key or cube attributes", before["key_places"]["total"], after["key_places"]["total"]),
        ("... of them: attribute dicts outside `cache.keys`", len(before["key_places"]["attribute_dicts"]),
         len(after["key_places"]["attribute_dicts"])),
        ("cube pipelines (cache functions that invert an image)", len(before["cube_pipelines"]),
         len(after["cube_pipelines"])),
        ("duplicated blocks (6+ lines, outside tests)", before["duplicated_blocks"]["pairs"],
         after["duplicated_blocks"]["pairs"]),
        ("import cycles (any import)", len(before["import_cycles_any_import"]), len(after["import_cycles_any_import"])),
        ("imports pointing up the layers", len(before["upward_imports"]), len(after["upward_imports"])),
        ("function-local imports", local(before), local(after)),
    ]
    out = ["| figure | before | after |", "|---|---|---|"]
    out += [f"| {name} | {b} | {a} |" for name, b, a in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command line: print (or --json) the figures for TREE, or --table BEFORE.json AFTER.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the text report")
    ap.add_argument("--table", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="print the before -> after Markdown table of two --json outputs")
    args = ap.parse_args(argv)
    if args.table:
        before, after = (json.loads(Path(p).read_text()) for p in args.table)
        print(table(before, after))
        return 0
    root = Path(args.tree)
    if not (root / "workbench").is_dir():
        print(f"code_metrics: error: {root} has no workbench/ folder (give the repository root)", file=sys.stderr)
        return 2
    r = measure(root)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        _print(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
