"""A grammar of small notebooks built from the constructs that carry state between cells.

Every notebook it draws runs top to bottom without an error: the drawing keeps a model of the
namespace (which name holds which object, of which kind; which names a function or a generator reads
when it runs) and only draws a statement whose names hold what it needs at that point. Functions,
generators and closures read their globals when they run, as in Jupyter, so the model checks those
reads again before every call.

``notebooks()`` is the Hypothesis strategy; ``CONSTRUCTS`` names every construct it can draw (a test
holds it to the list of issue 11).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

#: Local modules a notebook may import from its own folder (drawn into ``Case.files`` when used).
HELPERS = """\
SCALE = {scale}
REGISTRY = []


def scaled(v):
    return v * SCALE


def register(v):
    REGISTRY.append(v)
    return len(REGISTRY)
"""
TOOLS_INIT = "from .sub import double\n"
TOOLS_SUB = """\
OFFSET = {offset}


def double(v):
    return 2 * v + OFFSET
"""

#: The names data lives under: few, so that cells rebind, alias and shadow each other's names.
DATA_NAMES = ("a", "b", "c", "n", "m", "xs", "ys", "d", "s", "total", "arr", "df", "o", "p")
FUNC_NAMES = ("f", "g", "h", "bump", "reset")
CLASS_NAMES = ("C", "Box")
GEN_NAMES = ("gen", "it")
RNG_NAMES = ("rng",)


@dataclass
class Obj:
    """One object of the modelled namespace."""

    kind: str  # int str list dict set array frame obj func fn1 cls gen rng counter module
    # what a function, generator or method reads when it runs: name -> kind it must hold
    lazy: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)  # a frame's columns
    cls: int | None = None  # an instance's class (object id)
    attrs: dict[str, str] = field(default_factory=dict)  # a module's or class's attributes
    sets_global: tuple[str, str] | None = (
        None  # (name, kind) a function binds with ``global`` when it runs
    )


@dataclass
class Env:
    names: dict[str, int] = field(default_factory=dict)
    objs: dict[int, Obj] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)  # constructs drawn, in order
    files: dict[str, str] = field(default_factory=dict)
    seeded: bool = False
    # (condition, whether it holds, name): a name bound or deleted on some paths only (``c_some_paths``),
    # which a later statement may read under a condition that holds only where the name is bound
    guarded: list[tuple[str, bool, str]] = field(default_factory=list)

    def new(self, obj: Obj) -> int:
        oid = len(self.objs) + 1
        self.objs[oid] = obj
        return oid

    def bind(self, name: str, obj: Obj | int) -> None:
        self.names[name] = obj if isinstance(obj, int) else self.new(obj)

    def kind(self, name: str) -> str | None:
        oid = self.names.get(name)
        return self.objs[oid].kind if oid is not None else None

    def of(self, *kinds: str) -> list[str]:
        """The names that hold a usable object of one of ``kinds``, sorted."""
        return sorted(
            n for n, oid in self.names.items() if self.objs[oid].kind in kinds and self.usable(n)
        )

    def usable(self, name: str, depth: int = 0) -> bool:
        """Whether calling or iterating what ``name`` holds works now (what it reads holds the right kinds)."""
        oid = self.names.get(name)
        if oid is None:
            return False
        obj = self.objs[oid]
        if depth > 6:
            return False
        for read, kind in obj.lazy.items():
            if self.kind(read) != kind:
                return False
            if (
                read == name
            ):  # a class whose methods name it: fine; a function calling itself: never ends
                if kind == "func":
                    return False
                continue
            if kind in ("func", "cls") and not self.usable(read, depth + 1):
                return False
        if obj.kind == "obj" and obj.cls is not None:
            cls = self.objs[obj.cls]
            return all(self.kind(r) == k for r, k in cls.lazy.items())
        return True

    def drop(self, name: str) -> None:
        self.names.pop(name, None)


Draw = Callable[[st.SearchStrategy], object]


def pick(draw: st.DrawFn, items: list[str] | tuple[str, ...]) -> str:
    return str(draw(st.sampled_from(sorted(items))))


def small(draw: st.DrawFn) -> int:
    return int(draw(st.integers(-3, 9)))


# --- expressions ------------------------------------------------------------------------------------


def int_expr(
    draw: st.DrawFn, env: Env, reads: dict[str, str], depth: int = 0, lazy: bool = False
) -> str:
    """An expression of type int, over the names ``env`` holds; the names it reads go into ``reads``."""
    options = ["literal"]
    names = {
        k: env.of(k)
        for k in (
            "int",
            "list",
            "dict",
            "set",
            "str",
            "array",
            "frame",
            "func",
            "obj",
            "counter",
            "fn1",
            "cls",
        )
    }
    # A call that binds a global (``global`` in the function) is only drawn as a statement (c_call): in an
    # expression it may run later (a body that runs later), never (``for _ in range(0)``, a short-circuit)
    # or not be emitted at all (a construct that drew a value and then chose a form without it), and the
    # model would hold a binding the notebook never made (the long run drew ``try: v = total[5]``).
    names["func"] = [n for n in names["func"] if env.objs[env.names[n]].sets_global is None]
    options += [k for k, v in names.items() if v]
    if depth > 1:
        options = [o for o in options if o in ("literal", "int")]
    choice = pick(draw, options)
    if choice == "literal":
        return str(small(draw))
    name = pick(draw, names[choice])
    reads.setdefault(name, choice)
    if choice == "int":
        op = pick(draw, ["{}", "{} + 1", "{} * 2", "{} - {}", "abs({})"])
        return op.format(name, name)
    if choice in ("list", "set"):
        return pick(draw, [f"len({name})", f"sum({name})"])
    if choice == "dict":
        return pick(draw, [f"len({name})", f"sum({name}.values())"])
    if choice == "str":
        return f"len({name})"
    if choice == "array":
        return pick(draw, [f"int({name}.sum())", f"len({name})"])
    if choice == "frame":
        return pick(draw, [f"len({name})", f"len({name}.columns)", f"int({name}.iloc[:, 0].sum())"])
    if choice == "func":
        called(env, name)
        return f"{name}()"
    if choice == "counter":
        return f"{name}()"
    if choice == "fn1":
        return f"{name}({int_expr(draw, env, reads, depth + 1, lazy)})"
    if choice == "cls":
        return f"{name}.count"
    return f"{name}.v"  # obj


def called(env: Env, name: str) -> None:
    """What a call of ``name`` does to the model: a function with ``global`` binds its name."""
    obj = env.objs[env.names[name]]
    if obj.sets_global:
        env.bind(obj.sets_global[0], Obj(obj.sets_global[1]))


def list_expr(draw: st.DrawFn, env: Env, reads: dict[str, str]) -> str:
    items = [int_expr(draw, env, reads, 1) for _ in range(draw(st.integers(0, 3)))]
    form = pick(draw, ["list", "range", "comp"])
    if form == "range":
        return f"list(range({draw(st.integers(0, 4))}))"
    if form == "comp" and items:
        return f"[v * 2 for v in [{', '.join(items)}]]"
    return "[" + ", ".join(items) + "]"


# --- constructs -------------------------------------------------------------------------------------
# Each takes (draw, env) and returns the lines of one statement (or a few), or None when the names it
# needs are not there. Registered in CONSTRUCTS under the name of the idea it tests.


def c_assign(draw: st.DrawFn, env: Env) -> list[str] | None:
    name = pick(draw, DATA_NAMES)
    reads: dict[str, str] = {}
    kind = pick(draw, ["int", "int", "list", "dict", "set", "str"])
    if kind == "int":
        text = int_expr(draw, env, reads)
    elif kind == "list":
        text = list_expr(draw, env, reads)
    elif kind == "dict":
        text = (
            "{"
            + ", ".join(
                f"{k!r}: {int_expr(draw, env, reads, 1)}"
                for k in ["k", "q"][: draw(st.integers(0, 2))]
            )
            + "}"
        )
    elif kind == "set":
        text = (
            "{"
            + ", ".join(int_expr(draw, env, reads, 1) for _ in range(draw(st.integers(1, 3))))
            + "}"
        )
    else:
        text = repr(pick(draw, ["ab", "xyz", ""]))
    env.bind(name, Obj(kind))
    return [f"{name} = {text}"]


def c_augassign(draw: st.DrawFn, env: Env) -> list[str] | None:
    """``x += ...`` on a name, ``xs[i] += ...``, ``d[k] += ...`` and ``o.v += ...``."""
    targets = env.of("int", "str", "list", "array", "dict", "obj", "cls")
    if not targets:
        return None
    name = pick(draw, targets)
    kind = env.kind(name)
    reads: dict[str, str] = {}
    value = int_expr(draw, env, reads, 1)
    if kind == "int":
        op = pick(draw, ["+=", "-=", "*=", "|=", "^="])
        return [f"{name} {op} {value}"]
    if kind == "str":
        return [f"{name} += {pick(draw, ['ab', 'z'])!r}"]
    if kind == "array":
        return [pick(draw, [f"{name} += {value}", f"{name}[0:1] += {value}"])]
    if kind == "dict":
        return [f"{name}['k'] = {name}.get('k', 0)", f"{name}['k'] += {value}"]
    if kind == "obj":
        return [f"{name}.v += {value}"]
    if kind == "cls":
        return [f"{name}.count += {value}"]
    form = pick(draw, ["name", "item"])
    if form == "name":
        return [f"{name} += [{value}]"]
    return [f"if {name}:", f"    {name}[{pick(draw, ['0', '-1'])}] += {value}"]


def c_global(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A function that rebinds or changes a global with ``global``; sometimes one that creates it."""
    fname = pick(draw, ["bump", "reset", "g"])
    ints = env.of("int")
    form = pick(draw, ["augment", "rebind", "create"] if ints else ["create", "rebind"])
    if form == "augment":
        target = pick(draw, ints)
        env.bind(fname, Obj("func", lazy={target: "int"}))
        return [
            f"def {fname}():",
            f"    global {target}",
            f"    {target} += 1",
            f"    return {target}",
        ]
    if form == "rebind":
        target = pick(draw, ["xs", "ys", "total"])
        env.bind(fname, Obj("func", sets_global=(target, "list")))
        return [
            f"def {fname}():",
            f"    global {target}",
            f"    {target} = [1, 2]",
            f"    return len({target})",
        ]
    target = pick(draw, ["fresh", "total", "n"])
    env.bind(fname, Obj("func", sets_global=(target, "int")))
    return [
        f"def {fname}():",
        f"    global {target}",
        f"    {target} = {small(draw)}",
        "    return 0",
    ]


def c_nonlocal(draw: st.DrawFn, env: Env) -> list[str] | None:
    name = pick(draw, ["counter", "tick"])
    start = small(draw)
    env.bind(name, Obj("counter"))
    return [
        "def make_counter(start):",
        "    count = start",
        "    def step():",
        "        nonlocal count",
        "        count += 1",
        "        return count",
        "    return step",
        f"{name} = make_counter({start})",
    ]


def c_call(draw: st.DrawFn, env: Env) -> list[str] | None:
    """Call a function (a plain one, a ``global`` one, a counter) and keep or drop its value."""
    funcs = env.of("func", "counter")
    if not funcs:
        return None
    name = pick(draw, funcs)
    if env.kind(name) == "func":
        called(env, name)
    target = pick(draw, ["r", "r", "_"])
    if target == "_":
        return [f"{name}()"]
    env.bind("r", Obj("int"))
    return [f"r = {name}()"]


def c_del(draw: st.DrawFn, env: Env) -> list[str] | None:
    names = [n for n in env.of("int", "list", "dict", "str", "set") if n not in ("r",)]
    if not names:
        return None
    name = pick(draw, names)
    kind = env.kind(name)
    form = pick(draw, ["name", "item"])
    if form == "item" and kind == "list":
        return [f"if {name}:", f"    del {name}[0]"]
    if form == "item" and kind == "dict":
        return [f"{name}.setdefault('q', 0)", f"del {name}['q']"]
    env.drop(name)
    return [f"del {name}"]


def c_inplace(draw: st.DrawFn, env: Env) -> list[str] | None:
    """In-place methods: append, extend, update, sort, add, pop."""
    names = env.of("list", "dict", "set", "array")
    if not names:
        return None
    name = pick(draw, names)
    kind = env.kind(name)
    reads: dict[str, str] = {}
    value = int_expr(draw, env, reads, 1)
    if kind == "list":
        return [
            pick(
                draw,
                [
                    f"{name}.append({value})",
                    f"{name}.extend([{value}, 1])",
                    f"{name}.sort()",
                    f"{name}.reverse()",
                    f"{name}.insert(0, {value})",
                    f"{name}.sort(reverse=True)",
                ],
            )
        ]
    if kind == "dict":
        return [
            pick(
                draw,
                [
                    f"{name}.update({{'k': {value}}})",
                    f"{name}.setdefault('z', {value})",
                    f"{name}.clear()",
                ],
            )
        ]
    if kind == "set":
        return [
            pick(
                draw,
                [
                    f"{name}.add({value})",
                    f"{name}.discard({value})",
                    f"{name}.update({{{value}, 7}})",
                ],
            )
        ]
    return [pick(draw, [f"{name}.sort()", f"{name}[0:1] = {value}", f"{name}.fill({value})"])]


def c_pandas(draw: st.DrawFn, env: Env) -> list[str] | None:
    """pandas: a frame, ``df[col] = ...``, and methods with ``inplace=True``."""
    frames = env.of("frame")
    if not frames or draw(st.integers(0, 4)) == 0:
        name = pick(draw, ["df", "p"])
        values = [small(draw) for _ in range(3)]
        env.bind(name, Obj("frame", columns=["a", "b"]))
        return [f"{name} = pd.DataFrame({{'a': {values}, 'b': [3, 1, 2]}})"]
    name = pick(draw, frames)
    obj = env.objs[env.names[name]]
    col = obj.columns[0]
    form = pick(draw, ["setcol", "sort", "drop", "rename", "reset", "fillna"])
    if form == "setcol" or len(obj.columns) < 2:
        new = pick(draw, ["c", "e", col])
        if new not in obj.columns:
            obj.columns.append(new)
        reads: dict[str, str] = {}
        return [f"{name}[{new!r}] = {name}[{col!r}] * {int_expr(draw, env, reads, 1)}"]
    if form == "sort":
        return [f"{name}.sort_values({col!r}, ascending=False, inplace=True)"]
    if form == "drop":
        gone = obj.columns.pop()
        return [f"{name}.drop(columns=[{gone!r}], inplace=True)"]
    if form == "rename":
        old = obj.columns.pop()
        new = pick(draw, [c for c in ["z", "w", "y", "u", "t"] if c not in obj.columns])
        obj.columns.append(new)
        return [f"{name}.rename(columns={{{old!r}: {new!r}}}, inplace=True)"]
    if form == "reset":
        return [f"{name}.reset_index(drop=True, inplace=True)"]
    return [f"{name}.fillna(0, inplace=True)"]


def c_numpy(draw: st.DrawFn, env: Env) -> list[str] | None:
    name = pick(draw, ["arr", "a"])
    reads: dict[str, str] = {}
    line = f"{name} = np.arange({draw(st.integers(1, 5))}) * {int_expr(draw, env, reads, 1)}"
    env.bind(name, Obj("array"))
    return [line]


def c_alias(draw: st.DrawFn, env: Env) -> list[str] | None:
    """``b = a`` then a mutation of one of them (in this statement or a later one)."""
    names = env.of("list", "dict", "set", "array", "frame", "obj", "int")
    if not names:
        return None
    source = pick(draw, names)
    alias = pick(draw, [n for n in DATA_NAMES if n != source])
    env.bind(alias, env.names[source])
    lines = [f"{alias} = {source}"]
    if draw(st.booleans()):
        mutated = c_inplace(draw, env)
        if mutated:
            lines += mutated
    return lines


def c_closure(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A function that reads globals when it runs, or captures one in a default argument."""
    name = pick(draw, ["f", "h", "f"])
    reads: dict[str, str] = {}
    body = int_expr(draw, env, reads, lazy=True)
    form = pick(draw, ["plain", "default", "lambda"])
    if form == "default" and env.of("int"):
        captured = pick(draw, env.of("int"))
        env.bind(name, Obj("func", lazy=reads))  # one that calls itself is never usable
        return [f"def {name}(k={captured}):", f"    return k + {body}"]
    env.bind(name, Obj("func", lazy=reads))
    if form == "lambda":
        return [f"{name} = lambda: {body}"]
    return [f"def {name}():", f"    return {body}"]


def c_redefine_function(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A function defined again, and one that calls it (it sees the latest definition)."""
    funcs = [n for n in env.of("func") if env.objs[env.names[n]].sets_global is None]
    if not funcs:
        return None
    name = pick(draw, funcs)
    value = small(draw)
    caller = pick(draw, [n for n in ("g", "h", "f") if n != name])
    if draw(st.booleans()):
        env.bind(name, Obj("func"))
        return [f"def {name}():", f"    return {value}"]
    env.bind(caller, Obj("func", lazy={name: "func"}))
    return [f"def {caller}():", f"    return {name}() * 2"]


def c_class(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A class (defined or defined again) and instances of it; its methods read the class by name."""
    classes = env.of("cls")
    if classes and draw(st.booleans()):
        cls = pick(draw, classes)
        obj = pick(draw, ["o", "p"])
        reads: dict[str, str] = {}
        line = f"{obj} = {cls}({int_expr(draw, env, reads, 1)})"
        env.bind(obj, Obj("obj", cls=env.names[cls]))
        return [line]
    name = pick(draw, CLASS_NAMES)
    start = small(draw)
    env.bind(name, Obj("cls", lazy={name: "cls"}))
    return [
        f"class {name}:",
        f"    count = {start}",
        "    tags = []",
        "",
        "    def __init__(self, v):",
        "        self.v = v",
        "",
        "    def total(self):",
        f"        return self.v + {name}.count",
        "",
        "    def fit(self, v):",
        "        self.v = self.v + v",
        "        return self",
    ]


def c_class_attribute(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A class attribute changed from outside the class."""
    classes = env.of("cls")
    if not classes:
        return None
    cls = pick(draw, classes)
    reads: dict[str, str] = {}
    value = int_expr(draw, env, reads, 1)
    return [
        pick(
            draw,
            [f"{cls}.count += {value}", f"{cls}.tags.append({value})", f"{cls}.count = {value}"],
        )
    ]


def an_instance(draw: st.DrawFn, env: Env) -> tuple[list[str], str] | None:
    """(lines, name) of an instance to use: one the namespace holds, or ``o`` made first from a class it
    holds (the lines); None when it holds neither."""
    objs = env.of("obj")
    lines = []
    if not objs:
        classes = env.of("cls")
        if not classes:
            return None
        cls = pick(draw, classes)
        env.bind("o", Obj("obj", cls=env.names[cls]))
        lines.append(f"o = {cls}({small(draw)})")
        objs = ["o"]
    return lines, pick(draw, objs)


def c_method(draw: st.DrawFn, env: Env) -> list[str] | None:
    found = an_instance(draw, env)
    if found is None:
        return None
    lines, obj = found
    line = pick(draw, [f"r = {obj}.total()", f"{obj}.v = {obj}.total()", f"r = {obj}.v"])
    if line.startswith("r = "):
        env.bind("r", Obj("int"))
    return [*lines, line]


def c_fit(draw: st.DrawFn, env: Env) -> list[str] | None:
    """An object fitted in place, as a model is (``model.fit(X, y)``): the fit changes it and returns it;
    a statement that fits without binding, or binds what the fit returns."""
    found = an_instance(draw, env)
    if found is None:
        return None
    lines, obj = found
    reads: dict[str, str] = {}
    value = int_expr(draw, env, reads, 1)
    if draw(st.booleans()):
        return [*lines, f"{obj}.fit({value})"]
    target = pick(draw, ["o", "p"])
    env.bind(target, env.names[obj])  # the same object: the fit returns it
    return [*lines, f"{target} = {obj}.fit({value})"]


def c_comprehension(draw: st.DrawFn, env: Env) -> list[str] | None:
    """Comprehension scopes: the loop variable does not leak; reads of globals inside them."""
    reads: dict[str, str] = {}
    value = int_expr(draw, env, reads, 1)
    # may shadow a global of the same name inside the comprehension, unless the value reads that global
    var = pick(
        draw, [v for v in ("i", "v", "n") if v not in reads and f"{v}(" not in value] or ["j_"]
    )
    target = pick(draw, ["ys", "d", "s", "total"])
    form = pick(draw, ["list", "dict", "set", "gensum", "nested"])
    if form == "list":
        env.bind(target, Obj("list"))
        return [f"{target} = [{var} + {value} for {var} in range(3)]"]
    if form == "dict":
        env.bind(target, Obj("dict"))
        return [f"{target} = {{str({var}): {value} for {var} in range(2)}}"]
    if form == "set":
        env.bind(target, Obj("set"))
        return [f"{target} = {{{var} * {value} for {var} in range(3)}}"]
    if form == "nested":
        env.bind(target, Obj("list"))
        return [
            f"{target} = [{var} * j for {var} in range(2) for j in range({var} + 2) if j != {value}]"
        ]
    env.bind(target, Obj("int"))
    return [f"{target} = sum({var} * {value} for {var} in range(4))"]


def c_walrus(draw: st.DrawFn, env: Env) -> list[str] | None:
    reads: dict[str, str] = {}
    value = int_expr(draw, env, reads, 1)
    form = pick(draw, ["if", "comp", "expr"])
    if form == "if":
        env.bind("m", Obj("int"))
        env.bind("b", Obj("int"))
        return [f"if (m := {value}) > 2:", "    b = m", "else:", "    b = -m"]
    if form == "comp":
        env.bind("last", Obj("int"))
        env.bind("ys", Obj("list"))
        return [f"ys = [(last := v * 2) for v in range({draw(st.integers(1, 3))})]"]
    env.bind("m", Obj("int"))
    env.bind("c", Obj("list"))
    return [f"c = [m := {value}, m + 1]"]


def c_loop(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A for loop whose variable (and accumulator) are used after the loop, in this cell or later."""
    var = pick(draw, ["i", "k", "n"])
    acc = pick(draw, ["total", "a", "n"])
    count = draw(st.integers(1, 4))
    if acc == var:
        acc = "total"
    lines = []
    if env.kind(acc) != "int" or draw(st.booleans()):
        lines.append(f"{acc} = 0")
    # both are ints from here on (inside the loop too): bind them before drawing what the body reads
    env.bind(acc, Obj("int"))
    env.bind(var, Obj("int"))
    step = int_expr(draw, env, {}, 1) if draw(st.booleans()) else var
    lines += [f"for {var} in range({count}):", f"    {acc} += {step}"]
    if draw(st.booleans()):
        lines += [f"while {acc} > 100:", f"    {acc} -= 7"]
    return lines


def c_try(draw: st.DrawFn, env: Env) -> list[str] | None:
    """try/except/finally binding names (and the ``as`` name, unbound after the handler)."""
    lists = env.of("list")
    source = pick(draw, lists) if lists else "[]"
    env.bind("v", Obj("int"))
    env.bind("done", Obj("int"))
    lines = [
        "try:",
        f"    v = {source}[5]",
        "except IndexError as err:",
        "    v = len(str(err))",
        "else:",
        "    v = v + 1",
        "finally:",
        f"    done = {small(draw)}",
    ]
    return lines


def c_except_as(draw: st.DrawFn, env: Env) -> list[str] | None:
    """``except E as x`` where x holds an earlier value: Python deletes x when the handler ends (even one
    its body bound again), so after a handler that ran x has no value; after one that did not run, x
    keeps the earlier value, and the cell (or a later one) may read it. Whether the handler runs is
    fixed by the code (``int("x")`` always raises), so the model knows which."""
    earlier = [n for n in env.of("int", "list", "dict", "str", "set", "array") if n != "v"]
    if not earlier:
        return None
    name = pick(draw, earlier)
    runs = draw(st.booleans())
    text = "x" if runs else str(small(draw))
    lines = ["try:", f"    v = int({text!r})", f"except ValueError as {name}:"]
    lines.append(f"    v = len(str({name}))")
    if draw(st.booleans()):
        lines.append(f"    {name} = v")  # bound in the handler: deleted when it ends all the same
    env.bind("v", Obj("int"))
    if runs:
        env.drop(name)
    after = pick(draw, ["nothing", "rebind"] if runs else ["nothing", "rebind", "read"])
    if after == "rebind":
        env.bind(name, Obj("int"))
        lines.append(f"{name} = v * 2")
    elif after == "read":
        lines.append(f"v = v + len(str({name}))")
    return lines


def c_conditional(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A definition made in one branch or the other of an ``if``."""
    reads: dict[str, str] = {}
    cond = int_expr(draw, env, reads, 1)
    form = pick(draw, ["value", "def"])
    if form == "value":
        name = pick(draw, ["z", "a", "b"])
        env.bind(name, Obj("int"))
        return [f"if {cond} > 1:", f"    {name} = 1", "else:", f"    {name} = 2"]
    name = pick(draw, ["f", "h"])
    env.bind(name, Obj("func"))
    return [
        f"if {cond} > 1:",
        f"    def {name}():",
        "        return 10",
        "else:",
        f"    def {name}():",
        "        return 20",
    ]


def c_some_paths(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A name bound or deleted on some paths only: an ``if`` without ``else``, a loop that may run zero times,
    ``contextlib.suppress`` around a division that may raise, ``del`` in a branch. Literals fix which path
    runs, so the model knows whether the name is bound after; ``c_guarded_read`` may read it later under a
    condition true only when it is (in the notebook, the read does not run when the name is unbound)."""
    k, j = small(draw), small(draw)
    form = pick(draw, ["if", "loop", "suppress", "del"])
    name = pick(draw, ["m", "z", "b"])
    if form == "del":
        earlier = env.of("int", "list", "dict", "str", "set", "array")
        if not earlier:
            return None
        name = pick(draw, earlier)
        if k > j:
            env.drop(name)
        env.guarded.append((f"{k} <= {j}", k <= j, name))
        return [f"if {k} > {j}:", f"    del {name}"]
    if form == "if":
        lines, cond, taken = [f"if {k} > {j}:", f"    {name} = {k} * 2"], f"{k} > {j}", k > j
    elif form == "loop":
        count = int(draw(st.integers(0, 2)))
        lines = [f"for i in range({count}):", f"    {name} = i + {k}"]
        cond, taken = f"{count} > 0", count > 0
        if taken:
            env.bind("i", Obj("int"))
    else:
        divisor = int(draw(st.sampled_from([0, 1])))
        lines = [
            "from contextlib import suppress",
            "with suppress(ZeroDivisionError):",
            f"    {name} = {k} // {divisor}",
        ]
        cond, taken = f"{divisor} != 0", divisor != 0
    if taken:
        env.bind(name, Obj("int"))
    env.guarded.append((cond, taken, name))
    return lines


def c_guarded_read(draw: st.DrawFn, env: Env) -> list[str] | None:
    """Read a name ``c_some_paths`` bound on some paths only, under a condition that holds only when it is
    bound: ``if 3 > 1: w = len(str(m))`` (``w`` itself is then bound on some paths only)."""
    readable = [(c, t, n) for c, t, n in env.guarded if not t or env.kind(n) is not None]
    if not readable:
        return None
    cond, holds, name = readable[int(draw(st.integers(0, len(readable) - 1)))]
    if holds:
        env.bind("w", Obj("int"))
    return [f"if {cond}:", f"    w = len(str({name}))"]


def _helpers(draw: st.DrawFn, env: Env) -> None:
    if "helpers.py" not in env.files:
        env.files["helpers.py"] = HELPERS.format(scale=draw(st.integers(2, 5)))


def _tools(draw: st.DrawFn, env: Env) -> None:
    if "tools/sub.py" not in env.files:
        env.files["tools/__init__.py"] = TOOLS_INIT
        env.files["tools/sub.py"] = TOOLS_SUB.format(offset=draw(st.integers(0, 3)))


def c_star_import(draw: st.DrawFn, env: Env) -> list[str] | None:
    _helpers(draw, env)
    env.bind("SCALE", Obj("int"))
    env.bind("REGISTRY", Obj("list"))
    env.bind("scaled", Obj("fn1"))
    env.bind("register", Obj("fn1"))
    return ["from helpers import *"]


def c_local_module(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A module (or a package) next to the notebook, imported by name."""
    form = pick(draw, ["import", "from", "package", "package_from"])
    if form in ("import", "from"):
        _helpers(draw, env)
        if form == "import":
            env.bind("helpers", Obj("module"))
            env.bind("scaled", Obj("fn1"))
            return ["import helpers", "scaled = helpers.scaled"]
        env.bind("register", Obj("fn1"))
        return ["from helpers import register"]
    _tools(draw, env)
    env.bind("double", Obj("fn1"))
    if form == "package":
        return ["import tools.sub", "double = tools.sub.double"]
    return ["from tools import double"]


def c_generator(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A generator made in one cell and consumed with next() in this and later cells."""
    gens = env.of("gen")
    if gens and draw(st.booleans()):
        name = pick(draw, gens)
        env.bind("r", Obj("int"))
        return [pick(draw, [f"r = next({name})", f"r = next({name}) + next({name})"])]
    name = pick(draw, GEN_NAMES)
    reads: dict[str, str] = {}
    value = int_expr(draw, env, reads, 1, lazy=True)
    if pick(draw, ["expression", "function"]) == "expression":
        env.bind(name, Obj("gen", lazy=reads))
        return [f"{name} = (i * {value} for i in range(1000))"]
    env.bind("counting", Obj("genfunc"))
    env.bind(name, Obj("gen", lazy=reads))
    return [
        "def counting():",
        "    k = 0",
        "    while True:",
        "        k += 1",
        f"        yield k + {value}",
        f"{name} = counting()",
    ]


def c_random(draw: st.DrawFn, env: Env) -> list[str] | None:
    """Randomness seeded once and drawn from in several cells."""
    if not env.seeded or draw(st.integers(0, 5)) == 0:
        env.seeded = True
        seed = draw(st.integers(0, 99))
        env.bind("rng", Obj("rng"))
        return [
            f"random.seed({seed})",
            f"np.random.seed({seed})",
            f"rng = np.random.default_rng({seed})",
        ]
    name = pick(draw, ["a", "n", "r"])
    env.bind(name, Obj("int"))
    source = pick(
        draw,
        (
            ["random.randint(0, 99)", "int(np.random.randint(0, 99))", "int(rng.integers(0, 99))"]
            if env.kind("rng") == "rng"
            else ["random.randint(0, 99)"]
        ),
    )
    return [f"{name} = {source}"]


def c_show(draw: st.DrawFn, env: Env) -> list[str] | None:
    """A cell that ends with an expression (Jupyter shows its value)."""
    reads: dict[str, str] = {}
    lists = env.of("list")
    if lists and draw(st.booleans()):
        name = pick(draw, lists)
        return [f"{name}.pop() if {name} else None"]
    return [int_expr(draw, env, reads)]


CONSTRUCTS: dict[str, Callable[[st.DrawFn, Env], list[str] | None]] = {
    "assignment": c_assign,
    "augmented assignment": c_augassign,
    "global": c_global,
    "nonlocal": c_nonlocal,
    "call": c_call,
    "del": c_del,
    "in-place method": c_inplace,
    "pandas in place": c_pandas,
    "numpy": c_numpy,
    "aliasing": c_alias,
    "closure or default argument": c_closure,
    "redefined function": c_redefine_function,
    "class and redefined class": c_class,
    "class attribute from outside": c_class_attribute,
    "method call": c_method,
    "object fitted in place": c_fit,
    "comprehension scope": c_comprehension,
    "walrus": c_walrus,
    "loop variable after the loop": c_loop,
    "try/except/finally": c_try,
    "except as an earlier name": c_except_as,
    "conditional definition": c_conditional,
    "name bound on some paths only": c_some_paths,
    "read under the condition that bound it": c_guarded_read,
    "star import of a local module": c_star_import,
    "local module": c_local_module,
    "generator across cells": c_generator,
    "seeded randomness": c_random,
    "shown value": c_show,
}


# --- notebooks --------------------------------------------------------------------------------------

IMPORTS = "import random\nimport numpy as np\nimport pandas as pd"
MARKDOWN = "## "


@dataclass(frozen=True)
class Case:
    """A drawn notebook: its cells (a cell starting with ``## `` is a markdown heading) and the local
    modules beside it (relative path -> source)."""

    cells: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()
    constructs: tuple[str, ...] = ()

    def render(self) -> str:
        """The notebook as text, one block per cell, for a failure message or a regression fixture."""
        parts = []
        for i, cell in enumerate(self.cells, start=1):
            kind = "markdown" if cell.startswith(MARKDOWN) else "code"
            parts.append(f"# --- cell {i} ({kind})\n{cell}")
        for path, text in self.files:
            parts.append(f"# --- file {path}\n{text.rstrip()}")
        return "\n".join(parts)

    def to_json(self) -> dict[str, object]:
        return {"cells": list(self.cells), "files": dict(self.files)}


def kept(env: Env) -> str | None:
    """A last cell that keeps the value of every name the notebook still holds, calling what can be
    called (so closures, generators and methods run once more against the final globals)."""
    items = []
    for name in sorted(env.names):
        if not env.usable(name):
            continue
        kind = env.kind(name)
        if kind in ("int", "str", "list", "dict", "set", "array", "frame"):
            items.append(f"{name!r}: {name}")
        elif kind in ("func", "counter"):
            called(env, name)
            items.append(f"{name!r}: {name}()")
        elif kind == "fn1":
            items.append(f"{name!r}: {name}(3)")
        elif kind == "gen":
            items.append(f"{name!r}: next({name})")
        elif kind == "cls":
            items.append(f"{name!r}: ({name}.count, list({name}.tags))")
        elif kind == "obj":
            items.append(f"{name!r}: ({name}.v, {name}.total())")
        elif kind == "rng":
            items.append(f"{name!r}: int({name}.integers(0, 10**6))")
    if not items:
        return None
    return "kept = {" + ", ".join(items) + "}"


@st.composite
def notebooks(draw: st.DrawFn, max_cells: int = 7) -> Case:
    """A notebook of 1 to ``max_cells`` code cells after an imports cell, with markdown headings
    here and there (a section groups its cells into one step), and usually a last cell that keeps
    every value."""
    env = Env()
    cells = [IMPORTS]
    for _ in range(draw(st.integers(1, max_cells))):
        if draw(st.integers(0, 3)) == 0:
            cells.append(f"{MARKDOWN}Section {len(cells) + 1}")
        lines: list[str] = []
        for _ in range(draw(st.integers(1, 3))):
            name = draw(st.sampled_from(sorted(CONSTRUCTS)))
            drawn = CONSTRUCTS[name](draw, env)
            if drawn:
                lines += drawn
                env.used.append(name)
        if lines:
            cells.append("\n".join(lines))
    if draw(st.integers(0, 3)) != 0:
        last = kept(env)
        if last:
            cells.append(last)
    return Case(tuple(cells), tuple(sorted(env.files.items())), tuple(env.used))
