"""The in-kernel recorder, run by the kernel at start-up (``--IPKernelApp.exec_files``);
never imported by nbharden.

It reads its schedule from the JSON file named by ``NBHARDEN_RECORDER``, loads
``_values.py`` from the path given there, and hooks IPython's ``pre_run_cell`` /
``post_run_cell`` events. Before the first cell of each step it stores the step's
inputs, after the last cell its outputs, each value written at once (so a later in-place
change cannot touch it) to a content-addressed file, and one JSON line per value to the
log. Just before the first cell it seeds the global generators like
``seed_everything(seed)`` (the seed of this run, from the schedule); when a step changed
their state, the state as the step started is stored too, so its test can restore it.
Every failure of its own is logged and swallowed: the recorder must never break the
notebook's run.

Why one long function (the house rule is 80 lines): ``exec_files`` runs this file in the
notebook's own namespace, so every top-level name would become a global the notebook can see,
shadow or overwrite (hidden state of exactly the kind nbharden reports). Everything lives in
the closure of ``_nbharden_install_recorder``, which deletes itself once it has run; its parts
are nested functions, and the value handling sits in ``_values.py``, loaded as a module.
"""


def _nbharden_install_recorder() -> None:
    import base64
    import collections
    import hashlib
    import importlib.util
    import json
    import os
    import pathlib
    import pickle
    import re
    import sys
    import time
    import weakref
    from typing import Any

    with open(os.environ["NBHARDEN_RECORDER"], encoding="utf-8") as fh:
        config = json.load(fh)

    def load(name: str, path: str) -> Any:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module

    values = load("_nbharden_values", config["values_module"])
    shapes = load("_nbharden_secret_shapes", config["shapes_module"])
    runtime = load("_nbharden_runtime_secrets", config["secrets_module"])
    http = load("_nbharden_http", config["http_module"]) if config.get("http_module") else None
    files = load("_nbharden_files", config["files_module"]) if config.get("files_module") else None
    figures = (
        load("_nbharden_figures", config["figures_module"])
        if config.get("figures_module")
        else None
    )

    shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821 - defined inside the kernel
    cells: list[dict[str, Any]] = config["cells"]
    out_dir = config["out"]
    cap = int(config["cap_bytes"])
    secrets = set(config["secrets"])
    # secret values: hard-coded ones, and those the run reads (environment, .env) or makes (a
    # token of a known shape): a value that holds one is never stored, no log line carries one,
    # and errors, printed and displayed text have them replaced
    known = runtime.RuntimeSecrets(shapes, config.get("secret_values", []))
    known.watch_environ(lambda frame: frame.f_globals is shell.user_ns)
    known.watch_dotenv()
    known.guard_outputs(shell)
    os.makedirs(os.path.join(out_dir, "values"), exist_ok=True)
    log = open(config["log"], "a", encoding="utf-8")  # noqa: SIM115 - open for the kernel's lifetime
    state: dict[str, Any] = {"pointer": 0, "current": None, "stored": 0, "capped": False}
    # the global generators' state as each step started: stored if the step draws from them
    entry_random: dict[str, Any] = {}
    seed = config.get("seed")
    # Config fields made from literals (name -> [literal, annotation]): not names in the notebook
    lifted: dict[str, list[str]] = config.get("lifted", {})

    def emit(record: dict[str, Any]) -> None:
        line = json.dumps(record, allow_nan=True)
        for form in known.forms:
            line = line.replace(form, "<redacted>")
        log.write(line + "\n")
        log.flush()

    def redacted(entry: dict[str, Any], why: str) -> dict[str, Any]:
        entry.pop("fingerprint", None)
        entry.update(kind="redacted", note=f"holds {why}: never recorded", digest="redacted")
        return entry

    def store(text: str, suffix: str) -> tuple[str, str, int]:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        rel = f"values/{digest[:24]}{suffix}"
        path = os.path.join(out_dir, rel)
        size = len(text.encode("utf-8"))
        if not os.path.exists(path):  # the same content is stored once
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            state["stored"] += size
        return rel, digest, size

    def fits(size: int) -> bool:
        if state["stored"] + size <= cap:
            return True
        state["capped"] = True
        return False

    def snapshot(obj: object, name: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": values.type_name(obj),
            "annotation": values.annotation(obj),
        }
        if name in secrets:
            entry.update(kind="redacted", note="a secret: never recorded", digest="redacted")
            return entry
        obj = values.without_timings(obj)  # a search's fit times differ between runs
        reason = values.describe_unserialisable(obj)
        if reason is not None:
            entry.update(kind="described", note=f"cannot be stored: {reason}", digest=entry["type"])
            entry["fingerprint"] = {"type": entry["type"]}
            return entry
        fp = values.fingerprint(obj)
        why = known.holds(json.dumps(fp, default=str))
        if why:
            return redacted(entry, why)
        entry["fingerprint"] = fp
        size = values.data_bytes(obj)
        if size and not fits(size):
            # storing it would copy it whole (as JSON text or a pickle): the fingerprint, made
            # block by block, is all that is kept
            entry.update(kind="fingerprint" if "shape" in fp or "learned" in fp else "described")
            entry["note"] = f"over the {cap} byte recording cap: fingerprint only"
            entry["digest"] = hashlib.sha256(
                json.dumps(fp, sort_keys=True, default=str).encode()
            ).hexdigest()
            return entry
        try:
            text = values.dumps(obj)
        except values.Unencodable as exc:
            text = None
            note = str(exc)
        except (RecursionError, ValueError, TypeError, OverflowError) as exc:
            text = None
            note = f"{type(exc).__name__}: {exc}"
        why = known.holds(text, name) if text is not None else None
        if why:
            return redacted(entry, why)
        if text is not None:
            if fits(len(text.encode("utf-8"))):
                rel, digest, size = store(text, ".json")
                entry.update(kind="value", file=rel, sha256=digest, bytes=size, digest=digest)
            else:
                entry.update(
                    kind="fingerprint", note=f"over the {cap} byte recording cap: fingerprint only"
                )
                entry["digest"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
            return entry
        try:
            blob = values.dumps_pickle(obj)
        except values.Forbidden as exc:
            # a pickle that names code (a __reduce__ payload, a class of the notebook) is never
            # stored: the tests compare the value by its fingerprint
            entry.update(kind="fingerprint" if "shape" in fp or "learned" in fp else "described")
            entry["note"] = f"{note}; not stored as a pickle: {exc}"
            entry["digest"] = hashlib.sha256(
                json.dumps(fp, sort_keys=True, default=str).encode()
            ).hexdigest()
            return entry
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError, ValueError) as exc:
            entry.update(kind="fingerprint" if "shape" in fp or "learned" in fp else "described")
            entry["note"] = f"{note}; not picklable either ({type(exc).__name__}: {exc})"
            entry["digest"] = hashlib.sha256(
                json.dumps(fp, sort_keys=True, default=str).encode()
            ).hexdigest()
            return entry
        why = known.holds_bytes(base64.b64decode(blob))
        if why:
            return redacted(entry, why)
        if fits(len(blob)):
            rel, digest, size = store(blob, ".pkl.b64")
            entry.update(
                kind="pickle", file=rel, sha256=digest, bytes=size, digest=digest, note=note
            )
        else:
            entry.update(
                kind="fingerprint",
                note=f"{note}; over the {cap} byte recording cap: fingerprint only",
            )
            entry["digest"] = hashlib.sha256(blob.encode("ascii")).hexdigest()
        return entry

    immutable = (int, float, complex, str, bytes, bool, type(None))
    # per name, the object its last step returned: the end-of-run record is taken only
    # when the name still holds that very object (a later def, import or loop variable
    # rebinds names outside any step's outputs). A weak reference where the object takes
    # one (arrays, frames: a dropped one must be freed), else the object itself (an id
    # alone could be reused by a new object at the same address).
    made: dict[str, Any] = {}

    def holder(obj: object) -> Any:
        try:
            return weakref.ref(obj)
        except TypeError:
            return lambda: obj

    # values the notebook showed that the pipeline keeps as results under a name of their own
    # (``accuracy = model.score(...)``): the cell's last value, or the objects a display() showed
    shown: dict[str, Any] = {}
    displayed: list[Any] = []

    def keep_shown(current: dict[str, Any], result: object) -> None:
        for name, how, ordinal, expected in current.get("shown", []):
            if how == "bind":
                shown[name] = getattr(result, "result", None)
            elif how == "display" and len(displayed) == expected:
                shown[name] = displayed[ordinal]  # else not recorded: display() ran in a loop...

    def install_display_hook() -> None:
        import builtins

        from IPython.core import display_functions

        original = display_functions.display

        def display(*objs: Any, **kwargs: Any) -> Any:
            current = state["current"]
            if current is not None and current.get("shown"):
                displayed.extend(objs)
            return original(*objs, **kwargs)  # type: ignore[no-untyped-call]

        display_functions.display = display
        for module in ("IPython.display", "IPython.core.display"):
            loaded = __import__(module, fromlist=["display"])
            if getattr(loaded, "display", None) is original:
                setattr(loaded, "display", display)  # noqa: B010
        if getattr(builtins, "display", None) is original:
            setattr(builtins, "display", display)  # noqa: B010 - IPython put it there

    def install_print_keeper() -> None:
        """Keep the computed values a cell prints that the pipeline keeps as results
        (``print("accuracy:", accuracy_score(y, p))``; ``[name, "print", code, 0]`` in the
        cell's "shown"): an AST transformer wraps each, where the print evaluates it, in a
        call that keeps the value under the result's name and returns it unchanged."""
        import ast
        import builtins

        def keep(name: str, value: Any) -> Any:
            shown[name] = value
            return value

        setattr(builtins, "_nbharden_keep_printed", keep)  # noqa: B010 - no notebook global

        def printed_nodes(module: ast.Module) -> list[ast.expr]:
            calls = [
                s.value
                for s in module.body
                if isinstance(s, ast.Expr)
                and isinstance(s.value, ast.Call)
                and isinstance(s.value.func, ast.Name)
                and s.value.func.id == "print"
            ]
            inner = [
                [n for n in ast.walk(c) if isinstance(n, ast.expr) and n not in (c, c.func)]
                for c in calls
            ]
            position = lambda n: (n.lineno, n.col_offset)  # noqa: E731
            return [n for nodes in inner for n in sorted(nodes, key=position)]

        class Wrap(ast.NodeTransformer):
            def __init__(self, names: dict[int, str]) -> None:
                self.names = names

            def visit(self, node: Any) -> Any:
                name = self.names.get(id(node))
                if name is None:
                    return super().visit(node)
                func = ast.Name("_nbharden_keep_printed", ast.Load())
                return ast.copy_location(ast.Call(func, [ast.Constant(name), node], []), node)

        class KeepPrinted(ast.NodeTransformer):
            def visit_Module(self, module: ast.Module) -> ast.Module:
                try:
                    current = state["current"] or {}
                    wanted = [(e[0], e[2]) for e in current.get("shown", []) if e[1] == "print"]
                    if not wanted:
                        return module
                    nodes = printed_nodes(module)
                    names: dict[int, str] = {}
                    for name, code in wanted:  # in order: the same code printed twice, twice
                        target = ast.dump(ast.parse(code, mode="eval").body)
                        found = (n for n in nodes if id(n) not in names and ast.dump(n) == target)
                        node = next(found, None)
                        if node is not None:
                            names[id(node)] = name
                    wrapped: ast.Module = Wrap(names).visit(module)
                    return ast.fix_missing_locations(wrapped)
                except Exception as exc:  # noqa: BLE001 - the cell runs as it is
                    emit({"event": "recorder-error", "message": f"{type(exc).__name__}: {exc}"})
                    return module

        shell.ast_transformers.append(KeepPrinted())

    def record(requests: list[Any], phase: str) -> None:
        ns = collections.ChainMap(shown, shell.user_ns)
        for step, names in requests:
            seen: dict[int, str] = {}
            for name in names:
                started = time.perf_counter()
                try:
                    if name not in ns and name in lifted:
                        # a literal the package reads from its Config (a path, a URL): the
                        # value the step is given there, so its test can replay it
                        text, kind = lifted[name]
                        ns_value: Any = pathlib.Path(text) if kind == "Path" else text
                        entry: dict[str, Any] = snapshot(ns_value, name)
                    elif name not in ns:
                        entry = {
                            "kind": "missing",
                            "note": "not defined at this point",
                            "digest": "missing",
                        }
                    else:
                        obj = ns[name]
                        if step == "__final__" and (
                            type(obj) in immutable or name not in made or made[name]() is not obj
                        ):
                            continue  # unchanged since its step, or no longer its value
                        if phase == "out" and step != "__final__":
                            made[name] = holder(obj)
                        alias = seen.get(id(obj))
                        entry = (
                            {"alias_of": alias}
                            if alias not in (None, name) and phase == "in"
                            else {}
                        )
                        seen.setdefault(id(obj), name)
                        entry.update(snapshot(obj, name))
                except Exception as exc:  # noqa: BLE001 - the recorder must never break the run
                    entry = {
                        "kind": "described",
                        "note": f"recorder failed: {type(exc).__name__}: {exc}",
                    }
                    entry["digest"] = "failed"
                entry.update(event="value", step=step, phase=phase, name=name)
                entry["seconds"] = round(time.perf_counter() - started, 6)
                emit(entry)

    def random_before(requests: list[Any]) -> None:
        for step, _names in requests:
            entry_random[step] = values.random_state()

    def random_after(requests: list[Any]) -> None:
        for step, _names in requests:
            before = entry_random.pop(step, None)
            if before is None or values.random_state() == before:
                continue  # the step did not draw from the global generators
            text = json.dumps({"format": 1, "random_state": before}, separators=(",", ":"))
            rel, digest, size = store(text, ".json")
            emit(
                {
                    "event": "random",
                    "step": step,
                    "file": rel,
                    "sha256": digest,
                    "bytes": size,
                }
            )

    # the figures the current cell showed (display, the inline backend's show and its flush at the
    # cell's end): id -> [figure, fingerprint as last shown, shown at the cell's end]
    shown_figures: dict[int, list[Any]] = {}

    def watch_figures(module: Any) -> None:
        formatter = shell.display_formatter
        original = formatter.format

        def format_hook(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if state["current"] is not None and module.is_figure(obj):
                try:
                    print_ = module.fingerprint(obj)
                except Exception as exc:  # noqa: BLE001
                    print_ = {"failed": f"{type(exc).__name__}: {exc}"}
                shown_figures[id(obj)] = [obj, print_, bool(state.get("ending"))]
            return original(obj, *args, **kwargs)

        def ending() -> None:  # registered before the inline backend's flush: runs first
            state["ending"] = True

        formatter.format = format_hook
        shell.events.register("post_execute", ending)

    def emit_figures(index: int) -> None:
        for _figure, print_, at_end in shown_figures.values():
            why = known.holds(json.dumps(print_))
            if why:
                print_ = {"failed": f"holds {why}: never recorded"}
            emit({"event": "figure", "cell": index, "fingerprint": print_, "at_end": at_end})
        shown_figures.clear()

    def pre_run_cell(info: object) -> None:
        try:
            shown_figures.clear()
            state["ending"] = False
            if seed is not None and not state.get("seeded"):
                # exactly what a generated package's support.seed_everything(seed) does, just
                # before the first cell (papermill's parameters included): not at start-up,
                # where IPython draws its banner's tip once per kernel_info request, a number
                # of times that depends on timing
                state["seeded"] = True
                values.seed_everything(int(seed))
            raw = getattr(info, "raw_cell", None)
            state["current"] = None
            # cells run in order; a cell that matches none (papermill's injected
            # parameters) is not ours
            for pos in range(state["pointer"], len(cells)):
                if cells[pos]["source"] == raw:
                    state["pointer"] = pos + 1
                    state["current"] = cells[pos]
                    break
            current = state["current"]
            if current is None:
                return
            displayed.clear()
            emit({"event": "cell", "index": current["index"]})
            record(current["before"], "in")
            random_before(current["before"])
        except Exception as exc:  # noqa: BLE001
            emit({"event": "recorder-error", "message": f"{type(exc).__name__}: {exc}"})

    def post_run_cell(result: object) -> None:
        try:
            current = state["current"]
            if current is None:
                return
            error = getattr(result, "error_in_exec", None) or getattr(
                result, "error_before_exec", None
            )
            if error is not None:
                emit(
                    {
                        "event": "cell-error",
                        "index": current["index"],
                        "ename": type(error).__name__,
                    }
                )
                return
            keep_shown(current, result)
            emit_figures(current["index"])
            random_after(current["after"])
            record(current["after"], "out")
            emit({"event": "cell-done", "index": current["index"], "stored": state["stored"]})
        except Exception as exc:  # noqa: BLE001
            emit({"event": "recorder-error", "message": f"{type(exc).__name__}: {exc}"})

    # %timeit / %%timeit run their code once here, at the top level, as the generated code
    # does (NBH503): timing loops would repeat a body that changes its data in place
    timeit_options = re.compile(r"^\s*(?:-[nrp]\s*\d+\s+|-[tcqo]\s+)+")

    def timeit_once(line: str, cell: str | None = None) -> object:
        found = timeit_options.match(line)
        options = found.group(0) if found else ""
        code = line[found.end() :] if found else line
        if cell is not None:
            if code.strip():
                shell.ex(shell.transform_cell(code))  # the setup line
            shell.ex(shell.transform_cell(cell))
            return None
        try:
            compiled = compile(code.strip(), "<timeit>", "eval")
        except SyntaxError:
            shell.ex(shell.transform_cell(code))
            return None
        result = eval(compiled, shell.user_global_ns, shell.user_ns)  # noqa: S307 - the notebook's own code
        return result if "-o" in options.split() else None

    def on_response(
        library: str, method: str, url: str, status: int, headers: list[Any], body: bytes
    ) -> None:
        # a response the notebook received: kept (base64) for the generated tests to serve back
        current = state["current"]
        entry: dict[str, Any] = {
            "event": "http",
            "cell": current["index"] if current is not None else None,
            "library": library,
            "method": method,
            "status": status,
        }
        why = known.holds(url) or known.holds(json.dumps(headers)) or known.holds_bytes(body)
        text = base64.b64encode(body).decode("ascii")
        if why:
            entry["note"] = f"holds {why}: not recorded"
        elif not fits(len(text)):
            entry["note"] = f"over the {cap} byte recording cap: not recorded"
        else:
            rel, digest, size = store(text, ".http.b64")
            entry.update(url=url, headers=headers, file=rel, sha256=digest, bytes=size)
        emit(entry)

    if http is not None:
        http.watch(
            on_response,
            # not fatal: the response is only not kept, and its test skips saying so
            lambda exc: emit({"event": "http-error", "message": f"{type(exc).__name__}: {exc}"}),
        )
    # a line magic or shell command (%%writefile, %save, !cp) is not in the generated code: what its
    # cell writes is not checked there
    magic_line = re.compile(r"^\s*[%!]", re.MULTILINE)

    def file_used(event: str, cell: int, path: str) -> None:
        current = state["current"]
        if event == "write" and current is not None and magic_line.search(current["source"]):
            return
        emit({"event": event, "cell": cell, "path": path})

    if files is not None:  # the files the cells read (the generated tests copy them) and write
        files.watch(
            lambda: state["current"]["index"] if state["current"] is not None else None, file_used
        )
    if figures is not None:
        watch_figures(figures)
    shell.register_magic_function(timeit_once, "line_cell", "timeit")
    if any(cell.get("shown") for cell in cells):
        install_display_hook()
    if any(entry[1] == "print" for cell in cells for entry in cell.get("shown", [])):
        install_print_keeper()
    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)
    emit(
        {
            "event": "ready",
            "pid": os.getpid(),
            "hashseed": os.environ.get("PYTHONHASHSEED"),
            "seed": config.get("seed"),
            "figures": figures is not None,
        }
    )


try:
    _nbharden_install_recorder()
finally:
    del _nbharden_install_recorder
