"""The rule registry: every finding code nbharden emits, with its documentation (ruff style).

``RULES`` maps a code (``"NBH201"``) to its ``Rule``. The analysis stage takes a finding's default
severity and
fix grade from here (``get(code)``); ``nbharden rules [CODE]`` and ``docs/rules/<CODE>.md`` are
rendered from the
same texts (``render_markdown``), and a test keeps the committed pages equal to the rendering.

Regenerate the pages after editing a text: ``python -m nbharden.rules docs/rules``.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from nbharden.errors import UsageError
from nbharden.models import Fix, Severity


@dataclass(frozen=True)
class Rule:
    """One finding code and its documentation.

    ``summary`` is one line; ``why`` says why it matters; ``example`` is notebook code that
    triggers the rule and
    ``after`` (optional) what nbharden generates for it; ``fix_note`` explains the fix grade.
    """

    code: str
    name: str
    summary: str
    why: str
    example: str
    fix: Fix
    severity: Severity
    after: str = ""
    fix_note: str = ""

    @property
    def category(self) -> str:
        """The rule family, from the hundreds digit of the code."""
        return CATEGORIES.get(self.code[:4], "other")


#: Rule families by code prefix.
CATEGORIES: dict[str, str] = {
    "NBH1": "hidden state",
    "NBH2": "configuration and secrets",
    "NBH3": "network",
    "NBH4": "reproducibility",
    "NBH5": "IPython syntax",
    "NBH6": "code quality",
}


def _rule(
    code: str,
    name: str,
    summary: str,
    *,
    why: str,
    example: str,
    fix: Fix,
    severity: Severity,
    after: str = "",
    fix_note: str = "",
) -> Rule:
    # Texts are written as indented blocks in this file; strip the common indent and outer blank
    # lines.
    def clean(text: str) -> str:
        return textwrap.dedent(text).strip("\n")

    return Rule(
        code=code,
        name=name,
        summary=summary,
        why=" ".join(clean(why).split()),
        example=clean(example),
        fix=fix,
        severity=severity,
        after=clean(after),
        fix_note=" ".join(clean(fix_note).split()),
    )


_ALL: tuple[Rule, ...] = (
    # --- NBH1: hidden state ---
    _rule(
        "NBH101",
        "use-before-definition",
        "A name is read in a cell before any cell above it defines it.",
        why="""
            A script runs its code top to bottom, once. A notebook lets you run cells in any order,
            so a cell can read a variable that only a cell further down defines: it worked in your
            session because you ran the lower cell first. The generated package runs the cells in
            their order on the page, where the name does not exist yet, so it would fail with a
            NameError. nbharden cannot guess which order you meant.
        """,
        example="""
            # cell 1
            total = price * quantity   # NBH101: 'price' is defined in cell 2

            # cell 2
            price = 9.5
            quantity = 3
        """,
        after="""
            # move the definition above its first use, then convert again
            # cell 1
            price = 9.5
            quantity = 3

            # cell 2
            total = price * quantity
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix: moving cells changes what the notebook means. Reorder the cells (or
            define the name earlier), run "Restart & Run All" to check, and convert again.
        """,
    ),
    _rule(
        "NBH102",
        "execution-order",
        "Execution counts are out of order: the saved outputs may depend on hidden state.",
        why="""
            The execution counts ([3], [1], [7]...) show that the cells were last run in a different
            order from the one on the page, or that some were re-run. Values you see in the outputs
            may come from a state that a top-to-bottom run never reaches: a variable changed by a
            later cell, a deleted cell, a cell run twice. The generated package and its tests follow
            the page order, so they can disagree with the saved outputs.
        """,
        example="""
            # cell 1, execution count [4]
            df = df[df.price > 0]

            # cell 2, execution count [2]   <- NBH102: ran before cell 1
            df = load("sales.csv")
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix. Run "Restart & Run All" in Jupyter, check the results are still what
            you expect, save and convert again; when recording is on, nbharden records a fresh
            top-to-bottom run anyway.
        """,
    ),
    _rule(
        "NBH103",
        "unexecuted-cell",
        "A code cell was never run while other cells were.",
        why="""
            A code cell without an execution count, in a notebook whose other cells have one, was
            never run in the session that produced the saved outputs. Its code may be stale, broken
            or a leftover experiment, and the outputs of the cells below it were computed without
            it. The generated package runs every cell, so it runs code that was never tried.
        """,
        example="""
            # cell 3, execution count [3]
            model.fit(X, y)

            # cell 4, never run   <- NBH103
            model = tune(model, grid)

            # cell 5, execution count [4]
            score = model.score(X_test, y_test)
        """,
        fix=Fix.NONE,
        severity=Severity.INFO,
        fix_note="""
            No automatic fix. Delete the cell if it is a leftover, or run the notebook top to bottom
            and save it so the outputs include it.
        """,
    ),
    _rule(
        "NBH104",
        "global-in-function",
        "A function uses a `global` statement to change notebook state.",
        why="""
            A function that assigns notebook variables through `global` has effects that its
            signature does not show: what it changes depends on when it is called, and calling it
            twice gives different results. nbharden turns each step into a function with explicit
            inputs and outputs; a hidden write to a global cannot be expressed that way, so the step
            keeps the function as is and the data flow the plan shows is incomplete.
        """,
        example="""
            counter = 0

            def record(row):
                global counter          # NBH104
                counter += 1
                return row
        """,
        after="""
            def record(row, counter):
                return row, counter + 1
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix. Pass the value in and return the new one, as in the example.
        """,
    ),
    _rule(
        "NBH105",
        "stale-global",
        "A function reads a global that is defined or redefined after the function is defined.",
        why="""
            A function body reads a notebook variable, and a later cell assigns that variable again.
            What the function computes then depends on when it is called: before the reassignment it
            sees the old value, after it the new one. In a notebook this is easy to miss (the
            function "worked" when you tried it); in a package the step order decides, and moving
            the function to module level would freeze the wrong value.
        """,
        example="""
            # cell 1
            rate = 0.1
            def with_tax(x):
                return x * (1 + rate)   # NBH105: 'rate' is reassigned in cell 3

            # cell 3
            rate = 0.2
        """,
        after="""
            def with_tax(x, rate):
                return x * (1 + rate)
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix. Make the value a parameter of the function (as in the example) or give
            the two values different names. nbharden keeps such a function inside its step (see
            NBH606). When the global does not exist yet where the function is defined, nbharden
            defines the function in the step where the last name it reads is bound (reported as this
            rule), so the step's closure sees it, as the notebook's global lookup did.
        """,
    ),
    _rule(
        "NBH106",
        "output-history",
        "The code uses IPython's output history (`_`, `__`, `_N`, `Out[N]`, `In[N]`).",
        why="""
            `_` is the last displayed result, `__` the one before, `_3` and `Out[3]` the result of
            execution count 3, `In[3]` its source. These exist only in an interactive IPython
            session and change every time a cell is run, so code using them depends on the order in
            which cells were run. A script has no output history: the generated code would raise
            NameError or silently read something else.
        """,
        example="""
            # cell 4
            df.describe()

            # cell 5
            summary = _                # NBH106: the result of the previous cell
        """,
        after="""
            # cell 4
            summary = df.describe()
            summary
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix: which value `_` meant depends on the order the cells were run. Assign
            the value to a name where it is computed and use that name.
        """,
    ),
    # --- NBH2: configuration and secrets ---
    _rule(
        "NBH201",
        "hardcoded-secret",
        "A secret (password, token, API key, credentials in a URL) is written in the code.",
        why="""
            A secret in a notebook ends up in version control, in shared copies and in exported
            HTML, and it cannot be rotated without editing code. nbharden moves it (only the secret
            part of a string: a URL keeps its user and host) to a `SecretStr` field of the generated
            `Config`, read only from an environment variable, so the generated package contains no
            secret, its recordings refuse values that hold one, and its logs mask it.
            The finding names the cell and line so that you can also remove the secret from the
            notebook and rotate it: it may already be in your history.
        """,
        example="""
            API_KEY = "sk-live-8f2c0e1b7dA93kQz"                                  # NBH201
            engine = create_engine("postgresql://admin:Hunter2-Sales@db:5432/sales")   # NBH201
        """,
        after="""
            class Config(BaseSettings):    # required: no default, from the environment only
                API_KEY: SecretStr = Field(description="...; set ANALYSIS_API_KEY in the environment")
                postgres_password: SecretStr = Field(description="...; set ANALYSIS_POSTGRES_PASSWORD ...")

            # the step reads them as parameters: config.<field>.get_secret_value() at the call
            engine = create_engine(f"postgresql://admin:{postgres_password}@db:5432/sales")
        """,
        fix=Fix.SAFE,
        severity=Severity.ERROR,
        fix_note="""
            Safe: applied by default. The value is the same when the environment variable is set;
            the generated package refuses to start with a clear error when it is not.
        """,
    ),
    _rule(
        "NBH202",
        "absolute-path",
        "An absolute file path (`/home/ana/data.csv`, `C:\\data`) ties the code to one machine.",
        why="""
            An absolute path only exists on the machine where the notebook was written. The
            generated package would fail anywhere else: on a colleague's laptop, in CI, in a
            container. When the path is assigned to a name or passed to a file call, nbharden also
            lifts it into a `Config` field (reported as NBH203), so it can be changed without
            editing code, but the field's default is still the machine-specific path.
        """,
        example="""
            df = pd.read_csv("/home/ana/projects/sales/data/2023.csv")   # NBH202
        """,
        after="""
            class Config(BaseSettings):
                data_2023_csv: Path = Path("/home/ana/projects/sales/data/2023.csv")

            df = pd.read_csv(config.data_2023_csv)
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix: only you know where the file should live. Make the path relative to
            the notebook's folder (relative paths are resolved from there), or set the generated
            Config field in each environment.
        """,
    ),
    _rule(
        "NBH203",
        "path-lifted",
        "A relative file path literal was lifted into a `Config` field.",
        why="""
            Input and output locations are configuration, not logic: a production run reads a
            different file than the one you explored with. nbharden moves each file path literal
            into a field of the generated `Config`, with the literal as its default, so it can be
            set from the command line or the environment without touching code. A relative path
            stays relative: it resolves from `Config.data_dir` (the notebook's folder by default,
            env `<PKG>_DATA_DIR` or `--data-dir`), the working folder of a run, as Jupyter did when
            it ran the notebook there; so a moved or installed package works once `data_dir`
            points at the data.
        """,
        example="""
            df = pd.read_csv("data/sales.csv")     # NBH203
        """,
        after="""
            class Config(BaseSettings):
                sales_path: Path = Path("data/sales.csv")  # relative to data_dir

            df = pd.read_csv(config.sales_path)
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: applied by default; with the default config the code reads and writes the same
            files as the notebook did when run from its own folder.
        """,
    ),
    _rule(
        "NBH204",
        "url-lifted",
        "A URL literal was lifted into a `Config` field.",
        why="""
            Endpoints change between environments (a staging API, a mirror, a local test server).
            nbharden moves each URL literal into a field of the generated `Config`, with the literal
            as its default, so it can be changed without editing code and tests can point it at a
            fixture. URLs with credentials in them are secrets (NBH201) and are never given a
            default.
        """,
        example="""
            r = requests.get("https://api.example.com/v1/prices", timeout=10)   # NBH204
        """,
        after="""
            class Config(BaseSettings):
                prices_url: str = "https://api.example.com/v1/prices"

            r = requests.get(config.prices_url, timeout=10)
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: applied by default; with the default config the code calls the same URL.
        """,
    ),
    _rule(
        "NBH205",
        "config-constraint",
        "A Config field got a validation constraint that the notebook's use of it shows.",
        why="""
            A value that reaches a library call the wrong way fails late and far from its cause:
            `test_size=1.5` raises deep inside scikit-learn, `n_estimators=0` after the data has
            loaded, a mistyped input path after minutes of work. nbharden adds the constraint that
            the notebook itself shows: a float passed as `test_size=`, `frac=`... (or named as a
            fraction) must stay in (0, 1]; an int passed as a count (`n_estimators=`, `epochs=`, or
            named `n_rows`, `num_epochs`...) must stay positive; a seed must not be negative; a path
            the notebook reads, that exists now and that no cell writes, must exist. A bad value is
            rejected when `Config` is built, with an error naming the field.
        """,
        example="""
            test_size = 0.2                                   # parameters cell
            n_trees = 100
            model = RandomForestClassifier(n_estimators=n_trees)   # NBH205
        """,
        after="""
            class Config(BaseSettings):
                test_size: float = Field(default=0.2, gt=0, le=1)
                n_trees: int = Field(default=100, gt=0)
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: applied by default; the notebook's own values satisfy every constraint, so the
            default run is unchanged.
        """,
    ),
    _rule(
        "NBH206",
        "data-contract",
        "A step checks the columns and dtypes of a frame, as the recorded run had them.",
        why="""
            A pipeline that runs unattended gets new data: a file with a renamed column, an export
            where numbers arrive as text, an API that dropped a field. Without a check the step
            fails later with a `KeyError` far from the cause, or worse computes a wrong result on a
            column of strings. From the recorded run nbharden knows every frame a step takes in and
            every frame a step reads from a file or the network, with its columns and dtypes. The
            step checks them, on entry for its inputs and before it returns for what it read, and
            a violation raises `DataContractError` naming the step, the frame and the column.
        """,
        example="""
            sales = pd.read_csv(config.sales_path)       # NBH206: the run had region:str, amount:float64
        """,
        after="""
            def load(sales_path: Path) -> pd.DataFrame:
                sales = pd.read_csv(sales_path)
                require_columns(sales, "sales", "load", {"region": "object", "amount": "float64"})
                return sales
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: applied by default when the notebook is recorded; the recorded run satisfies every
            contract, so the default run is unchanged. Extra columns are allowed.
        """,
    ),
    # --- NBH3: network ---
    _rule(
        "NBH301",
        "network-no-timeout",
        "A network call has no timeout and can hang forever.",
        why="""
            `requests`, `urllib` and most HTTP clients wait forever by default. In a notebook you
            notice a hung cell and interrupt it; a scheduled job just hangs, holding its resources,
            until someone kills it. Every network call in production code needs a timeout.
        """,
        example="""
            r = requests.get(PRICES_URL)          # NBH301 (and NBH302)
        """,
        after="""
            # http_timeout() is Config.http_timeout (30 s by default), set once by pipeline.run
            r = call_with_retry(requests.get, PRICES_URL, timeout=http_timeout())
        """,
        fix=Fix.SAFE,
        severity=Severity.WARNING,
        fix_note="""
            Safe: applied by default. A call that completes gives the same result. One that used to
            wait forever for a server that never answers now fails with a timeout error instead,
            which is the point; set Config.http_timeout to suit your slowest legitimate call. A
            timeout the notebook gives is kept; a call with `**kwargs` gets none (the mapping may
            hold one) and stays reported. pandas readers on a URL (`pd.read_csv(url)`), which have
            no timeout option, get it as the socket default while they run (`read_url`); boto3
            clients as botocore's connect and read timeouts (`config=aws_config()`). See
            docs/scaffolding/retries.md.
        """,
    ),
    _rule(
        "NBH302",
        "network-no-retry",
        "A network call is not retried on transient failures.",
        why="""
            Networks fail briefly all the time: a dropped connection, a 503 during a deploy, a rate
            limit. In a notebook you re-run the cell; an unattended pipeline fails the whole run.
            Retrying with backoff on transient errors makes the pipeline survive them.
        """,
        example="""
            r = requests.get(PRICES_URL, timeout=10)          # NBH302
        """,
        after="""
            # support.call_with_retry: tenacity, Config.retry_attempts attempts (3), waiting
            # Config.retry_backoff (0.5 s), then twice that, ...; each retry is logged
            r = call_with_retry(requests.get, PRICES_URL, timeout=10)
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: applied by default. Only the call itself is retried, never the whole step, and
            only on connection errors, timeouts, HTTP 429 and 5xx: a 404 or any other error is
            returned or raised at once, as in the notebook, and after the last attempt the code
            gets the error (or the 429/5xx response) the notebook would have got. A retried GET gets
            the same answer from a server that behaves, and a run that fails anyway only fails
            later. Review calls that are not idempotent (a POST that creates something): a retry
            may send them twice; Config.retry_attempts = 1 turns retries off. boto3 clients retry
            with botocore's own standard mode, with the same number of attempts.
        """,
    ),
    # --- NBH4: reproducibility ---
    _rule(
        "NBH401",
        "unseeded-random",
        "Random numbers are drawn without a fixed seed, so results differ between runs.",
        why="""
            Train/test splits, sampling, model initialisation and shuffles that use an unseeded
            generator give a different result on every run. Results cannot be reproduced, a bug
            cannot be replayed, and the generated characterization tests can only check such values
            by type and shape.
        """,
        example="""
            idx = np.random.permutation(len(df))             # NBH401
            train, test = train_test_split(df, test_size=0.2)   # NBH401
            rng = np.random.default_rng()                    # NBH401: a generator without a seed
            pca = PCA(n_components=10)                       # NBH401: may use the randomized solver
            pca = PCA(0.95)                                  # fine: a full SVD, deterministic
        """,
        after="""
            class Config(BaseSettings):
                seed: int = Field(default=0, ge=0)

            def run(config: Config | None = None) -> dict[str, Any]:
                config = config if config is not None else Config()
                seed_everything(config.seed)   # random.seed + numpy.random.seed
                ...
        """,
        fix=Fix.UNSAFE,
        severity=Severity.WARNING,
        fix_note="""
            Unsafe (applied only with --unsafe-fixes): adds a `seed` field to Config and seeds
            `random` and numpy's global generator (which scikit-learn uses when `random_state` is
            not given) at pipeline start. That changes the numbers drawn: once, then they stay
            fixed. The recording seeds its first run the same way, so the seeded pipeline
            reproduces the recorded values. A generator the notebook makes itself without a seed
            (`np.random.default_rng()`, `random.Random()`) has no fix: give it a seed.
        """,
    ),
    # --- NBH5: IPython syntax ---
    _rule(
        "NBH501",
        "pip-install",
        "A `!pip install` / `%pip install` line was moved into the generated dependencies.",
        why="""
            Installing packages from inside the code changes the environment while it runs, needs
            network access at run time and is not pinned anywhere a tool can see. The generated
            package declares these packages in its `pyproject.toml` instead, and the install line is
            removed from the code.
        """,
        example="""
            %pip install lightgbm==4.3.0        # NBH501
            import lightgbm as lgb
        """,
        after="""
            # pyproject.toml
            dependencies = ["lightgbm==4.3.0"]
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: applied by default. Install the generated package (or its dependencies) before
            running it.
        """,
    ),
    _rule(
        "NBH502",
        "magic-removed",
        "An IPython magic or shell line that cannot be translated was removed.",
        why="""
            Plain Python has no `get_ipython()`, so every magic must be translated (NBH503, NBH504)
            or removed. nbharden removes what it cannot translate faithfully: magics without a
            Python equivalent (`%store`, `%run` of another notebook, `%%html` widgets...), a `!cmd`
            that interpolates notebook variables (`!ls {folder}`, `!echo $name`), and magic code
            that does not parse. What it did is now missing from the generated code, so each removal
            is reported as a warning for you to check.
        """,
        example="""
            %store results                 # NBH502: no equivalent outside IPython
            !cp {src} backup/              # NBH502: interpolates a notebook variable
        """,
        after="""
            shutil.copy(src, "backup/")
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix: the line is removed because no faithful translation exists. If it
            mattered for the results, rewrite it in Python in the notebook (as in the example) and
            convert again.
        """,
    ),
    _rule(
        "NBH503",
        "magic-translated",
        "An IPython magic was translated into plain Python (e.g. `%timeit f()` -> `f()`).",
        why="""
            Some magics wrap ordinary code (`%time`, `%timeit`, `%%capture`), have a direct Python
            equivalent (`%env NAME=value` -> `os.environ["NAME"] = "value"`, `%%writefile f.py` ->
            `Path("f.py").write_text(...)`) or only steer the interactive session (`%matplotlib
            inline`, `%load_ext autoreload`, `%config`), which a script does not have. A magic the
            notebook defines itself (`@register_line_magic def hello(line)`, then `%hello fr`) is a
            call of its function with the arguments IPython would pass (`hello("fr")`, and
            `f(line, body)` for a cell magic), so the value it shows can flow on (`_`). nbharden
            keeps what they do to the data, drops the interactive part, and reports each translation
            so the change is visible.
        """,
        example="""
            %matplotlib inline                      # NBH503: dropped
            %timeit result = slow_sum(values)       # NBH503
            %env MODE=prod                          # NBH503
        """,
        after="""
            result = slow_sum(values)
            os.environ["MODE"] = "prod"
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: the code runs once instead of being timed (`%timeit` ran it many times; only side
            effects that depended on the repetition differ), and session-only magics do not change
            what the code computes.
        """,
    ),
    _rule(
        "NBH504",
        "shell-command",
        "A `!cmd` shell line became a `subprocess.run` call.",
        why="""
            `!cmd` runs a shell command through IPython. Plain Python cannot run it as written, so
            nbharden turns it into `subprocess.run` with the same command line and a shell, keeping
            IPython's behaviour of not failing when the command does (`check=False`); `files = !ls`
            captures the output lines. Shell commands make a pipeline depend on tools installed on
            the machine; each one is reported so you can decide whether to replace it with Python.
        """,
        example="""
            !mkdir -p output/figures        # NBH504
            files = !ls data                # NBH504
        """,
        after="""
            subprocess.run("mkdir -p output/figures", shell=True, check=False)
            files = subprocess.run(
                "ls data", shell=True, capture_output=True, text=True, check=False
            ).stdout.splitlines()
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: the same command runs through the same kind of shell, and a failure is ignored as
            it was in the notebook. Consider `check=True` or a Python equivalent once converted: an
            ignored failure in a pipeline usually means missing data later.
        """,
    ),
    # --- NBH6: code quality ---
    _rule(
        "NBH601",
        "star-import",
        "`from module import *` hides which names a cell uses.",
        why="""
            A star import binds names nobody can see in the code. Readers cannot tell where a name
            comes from, two star imports can silently shadow each other, and nbharden's def/use
            analysis cannot tell whether a name is defined by the import or by another cell, so step
            inputs and outputs may be wrong.
        """,
        example="""
            from pylab import *          # NBH601
            x = linspace(0, 1, 10)
        """,
        after="""
            from numpy import linspace
            x = linspace(0, 1, 10)
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix. Import the names you use explicitly, or import the module (`import
            numpy as np`).
        """,
    ),
    _rule(
        "NBH602",
        "bare-except",
        "A bare `except:` catches everything, including KeyboardInterrupt and bugs.",
        why="""
            `except:` (and `except BaseException:`) also catches KeyboardInterrupt, SystemExit and
            every programming error, so a pipeline can neither be stopped nor tell a real failure
            from an expected one. With `pass` in the handler, errors vanish and the pipeline
            continues with missing data.
        """,
        example="""
            try:
                value = float(row["price"])
            except:                 # NBH602
                value = None
        """,
        after="""
            try:
                value = float(row["price"])
            except (KeyError, ValueError):
                value = None
        """,
        fix=Fix.NONE,
        severity=Severity.WARNING,
        fix_note="""
            No automatic fix: only you know which errors are expected. Name them in the except
            clause.
        """,
    ),
    _rule(
        "NBH603",
        "no-effect-cell",
        "A cell that only displays values (`df.head()`, `x`) was dropped.",
        why="""
            Notebooks are full of cells that only show something: `df.head()`, `df.shape`, a bare
            variable name. They help exploration but do nothing in a pipeline, where nobody sees the
            display. nbharden drops cells whose every statement is such a display expression and
            reports them; values that matter are still checked by the generated tests.
        """,
        example="""
            # cell 6
            df.head()       # NBH603: the whole cell is dropped
            df.dtypes
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: only expressions without side effects are dropped (names, attributes, subscripts
            and a known set of read-only methods such as `head`, `describe`, `info`); a cell that
            calls anything else is kept.
        """,
    ),
    _rule(
        "NBH604",
        "print-to-logging",
        "A `print()` call became a logging call.",
        why="""
            In a notebook, `print` is how you watch progress. In a production package, output
            belongs to the logging system: it can be filtered by level, sent to a file or a log
            service, and timestamped, and it does not pollute the standard output of a command-line
            tool. nbharden replaces `print(...)` with `logger.info(...)` on the module's logger.
        """,
        example="""
            print("rows after cleaning:", len(df))     # NBH604
        """,
        after="""
            logger.info("rows after cleaning: %s", len(df))
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: the same text is logged. `print` calls that write to a file (`file=...`) are left
            alone.
        """,
    ),
    _rule(
        "NBH605",
        "plot-saved",
        "`plt.show()` now saves the figure to `Config.output_dir`.",
        why="""
            `plt.show()` displays a figure in the notebook; in a script without a display it does
            nothing (or blocks on a window). nbharden replaces it with saving the current figure as
            a file under the configured output folder, named after the step, so the plots a pipeline
            makes are kept.
        """,
        example="""
            df.plot(x="month", y="revenue")
            plt.show()                   # NBH605
        """,
        after="""
            df.plot(x="month", y="revenue")
            save_figure(config.output_dir / "revenue_by_month.png")
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: the figure is the same; it is written to a file instead of being shown.
        """,
    ),
    _rule(
        "NBH606",
        "function-not-hoisted",
        "A function reads notebook state, so it stays inside its step instead of moving to module "
        "level.",
        why="""
            nbharden moves functions and classes to module level so they can be imported and tested
            on their own. A function that reads a notebook variable it does not receive as a
            parameter (a global) depends on the step that defines that variable; moved to module
            level it would fail with NameError or read a stale value. Such a function stays nested
            inside its step, where it is harder to reuse and test.
        """,
        example="""
            threshold = config.threshold

            def is_outlier(x):
                return abs(x) > threshold     # NBH606: reads 'threshold'
        """,
        after="""
            def is_outlier(x, threshold):
                return abs(x) > threshold
        """,
        fix=Fix.NONE,
        severity=Severity.INFO,
        fix_note="""
            No automatic fix. Pass the value as a parameter (as in the example) and convert again:
            the function is then moved to module level.
        """,
    ),
    _rule(
        "NBH607",
        "result-kept",
        "A value the notebook shows is kept as a result: bound to a name, logged, returned, saved.",
        why="""
            The metric a notebook shows as a cell's last expression (`model.score(X_test, y_test)`,
            `cross_val_score(...)`, a leaderboard a helper builds, `grid.best_params_`) is what the
            notebook exists for. Left as a bare expression in a function, it is computed and thrown
            away: nobody sees it, and no test notices when it changes. nbharden binds it to a name
            (`accuracy` for a classifier's score, `r2` for a regressor's, `f1` for `f1_score`...),
            logs it as a structured event (`result name=accuracy value=0.778`; in the JSON log format
            the fields `event`, `result` and `value`), returns it from the step and from `run()` (a
            field of its `Results`), and writes the small ones (numbers, short texts, small lists,
            arrays and tables) to `output_dir/metrics.json`, so two runs can be compared. The
            recorded run pins its value in the generated tests. Previews of data (`df.head()`,
            `df.describe()`, a bare frame) are not results: they are dropped (NBH603).
        """,
        example="""
            model.fit(X_train, y_train)
            model.score(X_test, y_test)      # NBH607: the cell's last expression
        """,
        after="""
            model.fit(X_train, y_train)
            accuracy = model.score(X_test, y_test)
            log_result("accuracy", accuracy)
            return model, accuracy
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: the expression is evaluated once, as in the notebook; it is only bound to a name
            that no other code uses, logged and returned. A value ended with `;` (not shown in the
            notebook) is left as it is.
        """,
    ),
    _rule(
        "NBH608",
        "unnamed-step",
        "Nothing names a step: no heading, no comment line, no recognisable action; it is called "
        "`cell_N`.",
        why="""
            A step function's name is what a reader of the package sees first. nbharden names a step
            after its heading (Markdown `#`, HTML `<h2>`, a bold first line, a `step:<name>` tag), else
            the first comment line of its first cell, else what it does (`load_<source>`,
            `train_<estimator>`, `evaluate`, `plot_<what>`, `save_<what>`, `clean_<frame>`), else the
            explanatory markdown above it, else what it produces (`prepare_<name>`). A step with none
            of these (code that binds nothing and has no text around it) is called `cell_N` after its
            first cell, which says nothing about it.
        """,
        example="""
            # cell 4: no markdown above, no comment, binds nothing
            os.environ["MODE"] = "fast"     # NBH608: the step is called cell_4
        """,
        after="""
            # cell 4
            # Switch to the fast mode           <- a first comment line names the step
            os.environ["MODE"] = "fast"
        """,
        fix=Fix.NONE,
        severity=Severity.INFO,
        fix_note="""
            No automatic fix. Add a heading or a markdown line above the cell, a comment as its first
            line, or a `step:<name>` tag, and convert again.
        """,
    ),
    _rule(
        "NBH609",
        "process-setting-moved",
        "A process-wide setting moves to the pipeline's start, out of the step functions.",
        why="""
            `warnings.filterwarnings("ignore")`, `pd.set_option("display.max_columns", None)`,
            `np.set_printoptions(...)`, `sns.set_theme()`, `plt.style.use(...)` and
            `plt.rcParams[...] = ...` change the whole process, not one computation. Inside a step
            function they change it for whoever calls the step (a test, another program importing
            the package), every time it runs. nbharden moves them into one function,
            `apply_settings()` in `steps.py`, which `run()` calls once before the steps. Only
            statements with literal arguments move; a pandas option that changes results
            (`mode.copy_on_write`, `future.*`) stays where it is.
        """,
        example="""
            import warnings
            warnings.filterwarnings("ignore")      # NBH609
            df = pd.read_csv("data.csv")
        """,
        after="""
            def apply_settings() -> None:
                warnings.filterwarnings("ignore")


            def load_data(data_path: Path) -> pd.DataFrame:
                df = pd.read_csv(data_path)
                return df
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: these settings change warnings, display and plot style, not computed values. They
            now apply from the start of the run, also to the steps before the cell that made them.
        """,
    ),
    _rule(
        "NBH610",
        "closure-lifted",
        "A function that reads notebook state moves to module level and takes that state as parameters.",
        why="""
            A notebook function looks its globals up when it is called: `predict_price(location,
            sqft)` reads the fitted `lr_clf` and the frame `X` as they are at the call. Kept inside
            its step and passed on as a value (NBH606), it cannot be imported, reused or tested on
            its own. nbharden moves it to module level with each notebook name it reads as a
            keyword-only parameter, typed from the recorded run, and makes every call pass the
            current values. The function is then usable with any fitted model:
            `predict_price("Whitefield", 1000, 3, 3, X=X, lr_clf=results.lr_clf)`.
        """,
        example="""
            def predict_price(location, sqft, bath, bhk):   # NBH610: reads X and lr_clf
                x = np.zeros(len(X.columns))
                ...
                return lr_clf.predict([x])[0]

            predict_price("Whitefield", 1000, 3, 3)
        """,
        after="""
            def predict_price(
                location: str, sqft: int, bath: int, bhk: int, *, X: pd.DataFrame, lr_clf: LinearRegression
            ) -> np.float64:
                ...

            price = predict_price("Whitefield", 1000, 3, 3, X=X, lr_clf=lr_clf)
        """,
        fix=Fix.SAFE,
        severity=Severity.INFO,
        fix_note="""
            Safe: each call passes the values the function would have looked up at that moment. Only
            functions whose every use is a direct call in step code are moved (not one passed as a
            value, called from another function, decorated, recursive, or reading the state in a
            default value); the others stay in their step (NBH606).
        """,
    ),
)

#: Every rule, by code, in code order.
RULES: dict[str, Rule] = {rule.code: rule for rule in _ALL}


def get(code: str) -> Rule:
    """The rule for ``code`` (``"NBH201"``, ``"nbh201"`` or its name ``"hardcoded-secret"``).

    Raises ``UsageError`` for an unknown code, listing where to look.
    """
    key = code.strip()
    rule = RULES.get(key.upper())
    if rule is not None:
        return rule
    for candidate in RULES.values():
        if candidate.name == key.lower():
            return candidate
    raise UsageError(f"unknown rule code '{code}'; run 'nbharden rules' for the list")


_FIX_TEXT = {
    Fix.NONE: "none (reported only)",
    Fix.SAFE: "safe (applied by default)",
    Fix.UNSAFE: "unsafe (applied only with --unsafe-fixes)",
}


def fix_text(fix: Fix) -> str:
    """A short description of a fix grade, as shown in ``nbharden rules`` and the docs."""
    return _FIX_TEXT[fix]


def render_markdown(rule: Rule) -> str:
    """The documentation page of ``rule`` (``docs/rules/<CODE>.md``), also shown by ``nbharden
    rules CODE``."""
    parts = [
        f"# {rule.code} {rule.name}",
        "",
        f"Category: {rule.category}. Severity: {rule.severity.value}. Fix: {fix_text(rule.fix)}.",
        "",
        "## What it does",
        "",
        rule.summary,
        "",
        "## Why it matters",
        "",
        rule.why,
        "",
        "## Example",
        "",
        "```python",
        rule.example,
        "```",
        "",
    ]
    if rule.after:
        # With a fix, ``after`` is what nbharden generates; without one, what the user should write.
        lead = "Use instead:" if rule.fix is Fix.NONE else "What nbharden generates:"
        parts += [lead, "", "```python", rule.after, "```", ""]
    parts += ["## Fix safety", "", rule.fix_note or f"Fix: {fix_text(rule.fix)}.", ""]
    return "\n".join(parts)


def render_index() -> str:
    """The rules overview page (``docs/rules/index.md``): one table row per rule."""
    lines = [
        "# Rules",
        "",
        "Every finding nbharden reports has a code. `nbharden rules` prints this table, "
        "`nbharden rules CODE` one page.",
        "",
        "| code | name | severity | fix | summary |",
        "|---|---|---|---|---|",
    ]
    for rule in RULES.values():
        summary = rule.summary.replace("|", "\\|")
        lines.append(
            f"| [{rule.code}]({rule.code}.md) | {rule.name} | {rule.severity.value} "
            f"| {rule.fix.value} | {summary} |"
        )
    return "\n".join(lines) + "\n"


def rendered_docs() -> dict[str, str]:
    """File name -> text of every page under ``docs/rules/``."""
    pages = {f"{rule.code}.md": render_markdown(rule) for rule in RULES.values()}
    pages["index.md"] = render_index()
    return pages


def _write_docs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered_docs().items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":  # maintainer helper: python -m nbharden.rules docs/rules
    _write_docs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules"))
