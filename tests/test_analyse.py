"""The analysis stage on tricky cells: reads, writes, mutations through aliases, effects, and the
findings with their cell:line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from nbharden import api
from nbharden.analyse import FullAnalysis
from nbharden.models import CellAnalysis, Effect

MakeNotebook = Callable[..., Path]


@pytest.fixture
def analyse(make_notebook: MakeNotebook) -> Callable[..., FullAnalysis]:
    def run(
        cells: Sequence[str | tuple[str, Sequence[str]]], counts: Sequence[int | None] | None = None
    ) -> FullAnalysis:
        result = api.analyze(make_notebook(cells, counts=counts))
        assert isinstance(result, FullAnalysis)
        return result

    return run


def cell(analysis: FullAnalysis, index: int) -> CellAnalysis:
    return next(c for c in analysis.cells if c.index == index)


def found(analysis: FullAnalysis, code: str) -> list[tuple[int, int]]:
    """(cell, line) of every finding with ``code``."""
    return [
        (f.span.cell, f.span.line)
        for f in analysis.findings
        if f.code == code and f.span is not None
    ]


# --- reads and writes -----------------------------------------------------------------------------


def test_rebinding_reads_the_old_value_first(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["x = 1", "def f(v):\n    return v + 1", "x = f(x)"])
    assert cell(a, 3).reads == ("f", "x")
    assert cell(a, 3).writes == ("x",)
    assert not found(a, "NBH101")


def test_names_bound_earlier_in_the_cell_are_not_reads(
    analyse: Callable[..., FullAnalysis],
) -> None:
    a = analyse(["a = 1\nb = a + 1\nc = b * unknown"])
    assert cell(a, 1).reads == ("unknown",)
    assert cell(a, 1).writes == ("a", "b", "c")
    assert found(a, "NBH101") == [(1, 3)]


def test_comprehension_variables_stay_in_their_scope(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(
        [
            "n = 3\nd = {'k': 1}",
            "squares = [i * i for i in range(n)]\ninv = {v: k for k, v in d.items()}\n"
            "any_big = any(s > n for s in squares)",
        ]
    )
    c = cell(a, 2)
    assert c.reads == (
        "range",
        "n",
        "d",
        "any",
    )  # builtins count as reads; i, k, v, s are comprehension-local
    assert c.writes == ("squares", "inv", "any_big")


def test_function_free_variables_are_reads_of_the_def(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["offset = 2", "def shift(y):\n    local = y + offset\n    return local"])
    c = cell(a, 2)
    assert c.reads == ("offset",)
    assert c.defines == ("shift",)
    assert c.writes == ("shift",)  # y and local belong to the function


def test_function_reading_a_global_bound_later_in_the_same_cell(
    analyse: Callable[..., FullAnalysis],
) -> None:
    a = analyse(["def g():\n    return later * 2\nlater = 5\nresult = g()"])
    assert cell(a, 1).reads == ()
    assert not found(a, "NBH101")


def test_conditional_assignment(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["flag = True", "if flag:\n    z = 1\nelse:\n    z = 2\nw = z + 1"])
    c = cell(a, 2)
    assert c.reads == ("flag",)
    assert c.writes == ("z", "w")


def test_loop_and_with_targets_are_writes(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(
        [
            "items = [1, 2]",
            "total = 0\nfor item in items:\n    total += item\nwith open('x.txt') as fh:\n"
            "    text = fh.read()",
        ]
    )
    c = cell(a, 2)
    assert c.reads == ("items", "open")
    assert set(c.writes) == {"total", "item", "fh", "text"}


def test_imports_and_definitions(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(
        [
            "import numpy as np\nfrom os import path as osp\nimport os.path\n"
            "class Box:\n    size = 1\ndef make():\n    return Box()"
        ]
    )
    c = cell(a, 1)
    assert c.imports == ("np", "osp", "os")
    assert c.defines == ("Box", "make")
    assert c.reads == ()


# --- mutation and aliasing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "mutated"),
    [
        ("df.dropna(inplace=True)", {"df"}),
        ("lst.append(1)", {"lst"}),
        ("d['k'] = 1", {"d"}),
        ("obj.attr = 1", {"obj"}),
        ("del d['k']", {"d"}),
        ("lst += [1]", {"lst"}),
        ("lst.sort()", {"lst"}),
        ("model.fit(X, y)", {"model"}),
        ("for d in [train, test]:\n    d['c'] = 1", {"train", "test"}),
        ("for d in (train, test):\n    d.drop(columns=['a'], inplace=True)", {"train", "test"}),
        ("alias = lst\nalias.append(1)", {"lst"}),
    ],
)
def test_in_place_mutation_and_aliasing(
    analyse: Callable[..., FullAnalysis], code: str, mutated: set[str]
) -> None:
    setup = "import numpy as np\ndf = d = lst = obj = model = train = test = X = y = None"
    a = analyse([setup, code])
    assert mutated <= set(cell(a, 2).mutates)


@pytest.mark.parametrize(
    "code",
    [
        "df = df.dropna()",  # rebinding, not a mutation
        "np.random.seed(0)",  # a module is not notebook data
        "def f(x):\n    x.append(1)",  # inside a function: changes only what the call is given
        "n = len(lst)",
    ],
)
def test_not_mutations(analyse: Callable[..., FullAnalysis], code: str) -> None:
    a = analyse(["import numpy as np\ndf = lst = None", code])
    mutates = set(cell(a, 2).mutates)
    assert not mutates & {"df", "np", "lst", "x"}


# --- effects --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "effect"),
    [
        ("import pandas as pd\ndf = pd.read_csv('data/x.csv')", Effect.FILE_READ),
        ("import pandas as pd\npd.DataFrame().to_csv('out.csv')", Effect.FILE_WRITE),
        ("fh = open('out.txt', 'w')", Effect.FILE_WRITE),
        ("import matplotlib.pyplot as plt\nplt.plot([1])\nplt.show()", Effect.PLOT),
        ("import requests\nr = requests.get('https://example.com', timeout=3)", Effect.NETWORK),
        ("import random\nv = random.random()", Effect.RANDOM),
        ("import time\nt = time.time()", Effect.CLOCK),
        ("import subprocess\nsubprocess.run(['ls'])", Effect.SHELL),
        ("!echo hi", Effect.SHELL),
        ("print('x')", Effect.PRINT),
    ],
)
def test_effects(analyse: Callable[..., FullAnalysis], code: str, effect: Effect) -> None:
    a = analyse([code])
    assert effect in cell(a, 1).effects


def test_display_only_cells(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["df = {'a': 1}", "df", "len(df)\ndf['a']", "df.update(b=2)"])
    assert Effect.DISPLAY in cell(a, 2).effects
    assert Effect.DISPLAY in cell(a, 3).effects
    assert Effect.DISPLAY not in cell(a, 4).effects  # a call that changes state is not display-only


# --- findings -------------------------------------------------------------------------------------


def test_nbh101_used_before_defined(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["y = x + 1", "x = 1", "\n\nz = x + w"])
    assert found(a, "NBH101") == [(1, 1), (3, 3)]
    assert ["'x'" in f.message for f in a.findings if f.code == "NBH101"] == [True, False]


def test_nbh102_out_of_order(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["a = 1", "b = 2", "c = a + b"], counts=[1, 3, 2])
    assert found(a, "NBH102") == [(3, 1)]
    in_order = analyse(["a = 1", "b = 2"], counts=[4, 7])
    assert found(in_order, "NBH102") == []


def test_nbh103_never_run(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["a = 1", "b = 2"], counts=[1, None])
    assert found(a, "NBH103") == [(2, 1)]


def test_nbh104_global_statement(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["counter = 0", "def bump():\n    global counter\n    counter += 1"])
    assert found(a, "NBH104") == [(2, 2)]


@pytest.mark.parametrize(
    ("code", "line", "col"),
    [
        ("api_key = 'sk-abcdefghijklmnopqrstuvwx123'", 1, 11),
        ("x = 1\npassword = 'hunter2hunter2'", 2, 12),
        ("engine_url = 'postgresql://admin:hunter2@db:5432/sales'", 1, 14),
        (
            "headers = {'Authorization': 'token'}\n"
            "TOKEN = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'",
            2,
            9,
        ),
    ],
)
def test_nbh201_secret(
    analyse: Callable[..., FullAnalysis], code: str, line: int, col: int
) -> None:
    a = analyse([code])
    secrets = [f for f in a.findings if f.code == "NBH201"]
    assert [(f.span.cell, f.span.line, f.span.col) for f in secrets if f.span] == [(1, line, col)]


@pytest.mark.parametrize(
    "code", ["name = 'sales report'", "path = 'data/x.csv'", "token_count = 'ABCDEFGHIJ'"]
)
def test_nbh201_not_for_ordinary_strings(analyse: Callable[..., FullAnalysis], code: str) -> None:
    assert found(analyse([code]), "NBH201") == []


def test_nbh202_absolute_path(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(
        [
            "import pandas as pd",
            "\ndf = pd.read_csv('/home/ana/data/sales.csv')\nrel = 'data/x.csv'",
        ]
    )
    assert [
        (f.span.cell, f.span.line, f.span.col) for f in a.findings if f.code == "NBH202" and f.span
    ] == [(2, 2, 18)]


def test_nbh401_unseeded_randomness(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(
        [
            "import numpy as np\nfrom sklearn.model_selection import train_test_split",
            "noise = np.random.rand(3)",
            "tr, te = train_test_split([1, 2, 3, 4])",
            "tr2, te2 = train_test_split([1, 2, 3, 4], random_state=0)",
        ]
    )
    assert found(a, "NBH401") == [(2, 1), (3, 1)]


def test_nbh401_not_after_seeding(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["import numpy as np\nnp.random.seed(0)", "noise = np.random.rand(3)"])
    assert found(a, "NBH401") == []


def test_nbh401_generators_need_a_seed_of_their_own(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(
        [
            "import numpy as np\nimport random",
            "rng = np.random.default_rng()\nx = rng.normal(size=3)",  # unseeded generator: flagged
            "rng2 = np.random.default_rng(42)\ny = rng2.normal(size=3)",  # seeded: fine
            "z = np.random.rand(3)",  # a seeded generator does not seed the global one
            "r = random.Random()\nr2 = random.Random(7)\nrs = np.random.RandomState(seed=None)",
            "np.random.seed()",  # reseeds from the system: not reproducible
        ]
    )
    assert found(a, "NBH401") == [(2, 1), (4, 1), (5, 1), (5, 3), (6, 1)]
    fixes = {f.span.cell: f.fix.value for f in a.findings if f.code == "NBH401" and f.span}
    assert fixes[2] == "none", "seeding the global generators does not make default_rng() reproducible"
    assert fixes[4] == "unsafe"


@pytest.mark.parametrize(
    ("call", "random"),
    [
        ("PCA(0.95)", False),
        ("PCA(n_components=0.9)", False),
        ("PCA()", False),
        ("PCA('mle')", False),
        ("PCA(2, svd_solver='full')", False),
        ("PCA(2)", True),
        ("PCA(n_components=k)", True),
        ("PCA(0.95, svd_solver='randomized')", True),
        ("PCA(2, random_state=0)", False),
    ],
)
def test_nbh401_pca_only_when_a_solver_may_be_random(
    analyse: Callable[..., FullAnalysis], call: str, random: bool
) -> None:
    a = analyse(["from sklearn.decomposition import PCA\nk = 3", f"pca = {call}"])
    assert found(a, "NBH401") == ([(2, 1)] if random else [])


def test_nbh601_star_import(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["x = 1", "import os\nfrom math import *"])
    assert found(a, "NBH601") == [(2, 2)]


def test_nbh602_bare_except(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(
        [
            "try:\n    x = int('a')\nexcept:\n    x = 0",
            "try:\n    y = 1\nexcept ValueError:\n    y = 0",
        ]
    )
    assert found(a, "NBH602") == [(1, 3)]


def test_findings_point_at_markdown_counted_cells(analyse: Callable[..., FullAnalysis]) -> None:
    """Cells are counted over all cells, markdown included, as Jupyter shows them."""
    a = analyse(
        ["md:# Title", "from math import *", "md:text", "try:\n    pass\nexcept:\n    pass"]
    )
    assert found(a, "NBH601") == [(2, 1)]
    assert found(a, "NBH602") == [(4, 3)]


def test_translated_magics_do_not_report_undefined_names(
    analyse: Callable[..., FullAnalysis],
) -> None:
    a = analyse(["%env A=1", "!echo hi", "files = !ls"])
    assert found(a, "NBH101") == []


def test_star_import_names_are_not_reported_undefined(analyse: Callable[..., FullAnalysis]) -> None:
    a = analyse(["from math import *", "root = sqrt(16)"])
    assert found(a, "NBH101") == []


def test_a_redefined_function_rebinds_the_functions_that_call_it(
    analyse: Callable[..., FullAnalysis],
) -> None:
    """Cell 4 redefines area: report (used later, calls area) and label (calls report) are defined
    again after it, so they call the new area as they did in the notebook; unused (never used after
    cell 4) and other (does not call area) are not."""
    a = analyse(
        [
            "def area(r):\n    return r",
            "def report(r):\n    return area(r)\ndef label(r):\n    return str(report(r))",
            "def unused(r):\n    return area(r)\ndef other(r):\n    return r",
            "def area(r):\n    return 2 * r\nhere = report(3)",
            "x = label(1) + str(report(2)) + str(other(3))",
        ]
    )
    assert cell(a, 4).writes == ("area", "report", "label", "here")
    assert not {"area", "report", "label"} & set(cell(a, 4).reads)  # all bound in cell 4 now
    assert {"label", "report", "other"} <= set(cell(a, 5).reads)
    assert a.facts is not None
    code = a.facts.cells[4].module.code
    assert "# label again, as cell 2 defined it: it calls report, redefined above" in code
    # before the rest of the cell, which calls the new ones too
    assert code.index("def label") < code.index("here = report(3)")


def test_copies_of_redefined_readers_keep_the_cells_line_numbers(
    analyse: Callable[..., FullAnalysis],
) -> None:
    """When the rest of the cell does not use them, the copies go at its end: a finding on a line
    after the redefinition still names that line."""
    a = analyse(
        [
            "def area(r):\n    return r",
            "def report(r):\n    return area(r)",
            "def area(r):\n    return 2 * r\ntoken = 'sk_live_0123456789abcdefghijklmn'",
            "x = report(2)",
        ]
    )
    assert a.facts is not None
    code = a.facts.cells[3].module.code
    assert code.index("token =") < code.index("def report")
    assert (3, 3) in found(a, "NBH201")
