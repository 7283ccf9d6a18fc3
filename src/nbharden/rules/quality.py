"""Code quality: what a package does differently from a notebook (NBH6xx)."""

from __future__ import annotations

from nbharden.models import Fix, Severity
from nbharden.rules.base import Rule


class NBH601(Rule):
    """## What it does

    `from module import *` hides which names a cell uses.

    ## Why it matters

    A star import binds names nobody can see in the code. Readers cannot tell where a name comes
    from, two star imports can silently shadow each other, and nbharden's def/use analysis cannot
    tell whether a name is defined by the import or by another cell, so step inputs and outputs may
    be wrong.

    ## Example

    ```python
    from pylab import *          # NBH601
    x = linspace(0, 1, 10)
    ```

    Use instead:

    ```python
    from numpy import linspace
    x = linspace(0, 1, 10)
    ```

    ## Fix safety

    No automatic fix. Import the names you use explicitly, or import the module (`import numpy as
    np`).
    """

    code = "NBH601"
    name = "star-import"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.analyse._CellVisitor.visit_ImportFrom"


class NBH602(Rule):
    """## What it does

    A bare `except:` catches everything, including KeyboardInterrupt and bugs.

    ## Why it matters

    `except:` (and `except BaseException:`) also catches KeyboardInterrupt, SystemExit and every
    programming error, so a pipeline can neither be stopped nor tell a real failure from an expected
    one. With `pass` in the handler, errors vanish and the pipeline continues with missing data.

    ## Example

    ```python
    try:
        value = float(row["price"])
    except:                 # NBH602
        value = None
    ```

    Use instead:

    ```python
    try:
        value = float(row["price"])
    except (KeyError, ValueError):
        value = None
    ```

    ## Fix safety

    No automatic fix: only you know which errors are expected. Name them in the except clause.
    """

    code = "NBH602"
    name = "bare-except"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.analyse._CellVisitor.visit_ExceptHandler"


class NBH603(Rule):
    """## What it does

    A cell that only displays values (`df.head()`, `x`) was dropped, or such a statement inside a kept
    cell.

    ## Why it matters

    Notebooks are full of cells that only show something: `df.head()`, `df.shape`, a bare variable
    name. They help exploration but do nothing in a pipeline, where nobody sees the display.
    nbharden drops cells whose every statement is such a display expression and reports them; values
    that matter are still checked by the generated tests. A display statement inside a cell that
    does more is dropped the same way and reported at its line: a preview of data the cell shows
    (`df.head()`, `df.describe()`, a bare frame, a count by group), or a display that is not the
    cell's last expression and so shows nothing. What a cell shows that the notebook computed (a
    metric, a table made from a model's results, a summary by group) is not dropped: it is kept as a
    result (NBH607).

    ## Example

    ```python
    # cell 6
    df.head()       # NBH603: the whole cell is dropped
    df.dtypes

    # cell 7
    df = df.dropna()
    df.describe()   # NBH603 at cell 7, line 2: this line is dropped, the dropna is kept
    ```

    ## Fix safety

    Safe: only expressions without side effects are dropped (names, attributes, subscripts and a
    known set of read-only methods such as `head`, `describe`, `info`); a cell that calls anything
    else is kept.
    """

    code = "NBH603"
    name = "no-effect-cell"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.emit.emit"
    fix_can_be_disabled = True


class NBH604(Rule):
    """## What it does

    A `print()` call became a logging call.

    ## Why it matters

    In a notebook, `print` is how you watch progress. In a production package, output belongs to the
    logging system: it can be filtered by level, sent to a file or a log service, and timestamped,
    and it does not pollute the standard output of a command-line tool. nbharden replaces
    `print(...)` with `logger.info(...)` on the module's logger.

    ## Example

    ```python
    print("rows after cleaning:", len(df))     # NBH604
    ```

    What nbharden generates:

    ```python
    logger.info("rows after cleaning: %s", len(df))
    ```

    ## Fix safety

    Safe: the same text is logged. `print` calls that write to a file (`file=...`) are left alone.
    """

    code = "NBH604"
    name = "print-to-logging"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.transform.codemods.PrintToLogging"
    fix_can_be_disabled = True


class NBH605(Rule):
    """## What it does

    `plt.show()` now saves the figure to `Config.output_dir`.

    ## Why it matters

    `plt.show()` displays a figure in the notebook; in a script without a display it does nothing
    (or blocks on a window). nbharden replaces it with saving the current figure as a file under the
    configured output folder, named after the step, so the plots a pipeline makes are kept.

    ## Example

    ```python
    df.plot(x="month", y="revenue")
    plt.show()                   # NBH605
    ```

    What nbharden generates:

    ```python
    df.plot(x="month", y="revenue")
    save_figure(config.output_dir / "revenue_by_month.png")
    ```

    ## Fix safety

    Safe: the figure is the same; it is written to a file instead of being shown.
    """

    code = "NBH605"
    name = "plot-saved"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.transform.codemods.ShowToSave"
    fix_can_be_disabled = True


class NBH606(Rule):
    """## What it does

    A function reads notebook state, so it stays inside its step instead of moving to module level.

    ## Why it matters

    nbharden moves functions and classes to module level so they can be imported and tested on their
    own. A function that reads a notebook variable it does not receive as a parameter (a global)
    depends on the step that defines that variable; moved to module level it would fail with
    NameError or read a stale value. Such a function stays nested inside its step, where it is
    harder to reuse and test.

    ## Example

    ```python
    threshold = config.threshold

    def is_outlier(x):
        return abs(x) > threshold     # NBH606: reads 'threshold'
    ```

    Use instead:

    ```python
    def is_outlier(x, threshold):
        return abs(x) > threshold
    ```

    ## Fix safety

    No automatic fix. Pass the value as a parameter (as in the example) and convert again: the
    function is then moved to module level.
    """

    code = "NBH606"
    name = "function-not-hoisted"
    severity = Severity.INFO
    fix = Fix.NONE
    detector = "nbharden.plan._def_findings"


class NBH607(Rule):
    """## What it does

    A value the notebook shows is kept as a result: bound to a name, logged, returned, saved.

    ## Why it matters

    The metric a notebook shows as a cell's last expression (`model.score(X_test, y_test)`,
    `cross_val_score(...)`, a leaderboard a helper builds, `grid.best_params_`) is what the notebook
    exists for. Left as a bare expression in a function, it is computed and thrown away: nobody sees
    it, and no test notices when it changes. nbharden binds it to a name (`accuracy` for a
    classifier's score, `r2` for a regressor's, `f1` for `f1_score`...), logs it as a structured
    event (`result name=accuracy value=0.778`; in the JSON log format the fields `event`, `result`
    and `value`), returns it from the step and from `run()` (a field of its `Results`), and writes
    the small ones (numbers, short texts, small lists, arrays and tables) to
    `output_dir/metrics.json`, so two runs can be compared. The recorded run pins its value in the
    generated tests. Previews of data (`df.head()`, `df.describe()`, a bare frame) are not results:
    they are dropped (NBH603).

    ## Example

    ```python
    model.fit(X_train, y_train)
    model.score(X_test, y_test)      # NBH607: the cell's last expression
    ```

    What nbharden generates:

    ```python
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    log_result("accuracy", accuracy)
    return model, accuracy
    ```

    ## Fix safety

    Safe: the expression is evaluated once, as in the notebook; it is only bound to a name that no
    other code uses, logged and returned. A value ended with `;` (not shown in the notebook) is left
    as it is.
    """

    code = "NBH607"
    name = "result-kept"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.plan._kept_results"
    fix_can_be_disabled = True


class NBH608(Rule):
    """## What it does

    Nothing names a step: no heading, no comment line, no recognisable action; it is called
    `cell_N`.

    ## Why it matters

    A step function's name is what a reader of the package sees first. nbharden names a step after
    its heading (Markdown `#`, HTML `<h2>`, a bold first line, a `step:<name>` tag), else the first
    comment line of its first cell, else what it does (`load_<source>`, `train_<estimator>`,
    `evaluate`, `plot_<what>`, `save_<what>`, `clean_<frame>`), else the explanatory markdown above
    it, else what it produces (`prepare_<name>`). A step with none of these (code that binds nothing
    and has no text around it) is called `cell_N` after its first cell, which says nothing about it.

    ## Example

    ```python
    # cell 4: no markdown above, no comment, binds nothing
    os.environ["MODE"] = "fast"     # NBH608: the step is called cell_4
    ```

    Use instead:

    ```python
    # cell 4
    # Switch to the fast mode           <- a first comment line names the step
    os.environ["MODE"] = "fast"
    ```

    ## Fix safety

    No automatic fix. Add a heading or a markdown line above the cell, a comment as its first line,
    or a `step:<name>` tag, and convert again.
    """

    code = "NBH608"
    name = "unnamed-step"
    severity = Severity.INFO
    fix = Fix.NONE
    detector = "nbharden.plan._raw_steps"


class NBH609(Rule):
    """## What it does

    A process-wide setting moves to the pipeline's start, out of the step functions.

    ## Why it matters

    `warnings.filterwarnings("ignore")`, `pd.set_option("display.max_columns", None)`,
    `np.set_printoptions(...)`, `sns.set_theme()`, `plt.style.use(...)` and `plt.rcParams[...] =
    ...` change the whole process, not one computation. Inside a step function they change it for
    whoever calls the step (a test, another program importing the package), every time it runs.
    nbharden moves them into one function, `apply_settings()` in `steps.py`, which `run()` calls
    once before the steps. Only statements with literal arguments move; a pandas option that changes
    results (`mode.copy_on_write`, `future.*`) stays where it is.

    ## Example

    ```python
    import warnings
    warnings.filterwarnings("ignore")      # NBH609
    df = pd.read_csv("data.csv")
    ```

    What nbharden generates:

    ```python
    def apply_settings() -> None:
        warnings.filterwarnings("ignore")


    def load_data(data_path: Path) -> pd.DataFrame:
        df = pd.read_csv(data_path)
        return df
    ```

    ## Fix safety

    Safe: these settings change warnings, display and plot style, not computed values. They now
    apply from the start of the run, also to the steps before the cell that made them.
    """

    code = "NBH609"
    name = "process-setting-moved"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.plan._settings_findings"
    fix_can_be_disabled = True


class NBH610(Rule):
    """## What it does

    A function that reads notebook state moves to module level and takes that state as parameters.

    ## Why it matters

    A notebook function looks its globals up when it is called: `predict_price(location, sqft)`
    reads the fitted `lr_clf` and the frame `X` as they are at the call. Kept inside its step and
    passed on as a value (NBH606), it cannot be imported, reused or tested on its own. nbharden
    moves it to module level with each notebook name it reads as a keyword-only parameter, typed
    from the recorded run, and makes every call pass the current values. The function is then usable
    with any fitted model: `predict_price("Whitefield", 1000, 3, 3, X=X, lr_clf=results.lr_clf)`.

    ## Example

    ```python
    def predict_price(location, sqft, bath, bhk):   # NBH610: reads X and lr_clf
        x = np.zeros(len(X.columns))
        ...
        return lr_clf.predict([x])[0]

    predict_price("Whitefield", 1000, 3, 3)
    ```

    What nbharden generates:

    ```python
    def predict_price(
        location: str, sqft: int, bath: int, bhk: int, *, X: pd.DataFrame, lr_clf: LinearRegression
    ) -> np.float64:
        ...

    price = predict_price("Whitefield", 1000, 3, 3, X=X, lr_clf=lr_clf)
    ```

    ## Fix safety

    Safe: each call passes the values the function would have looked up at that moment. Only
    functions whose every use is a direct call in step code are moved (not one passed as a value,
    called from another function, decorated, recursive, or reading the state in a default value),
    and only when the state is read while the call runs: a generator function, or one returning a
    function, lambda or generator expression that reads the state, reads it later, when a later
    cell may have bound it again. The others stay in their step (NBH606).
    """

    code = "NBH610"
    name = "closure-lifted"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.plan._def_findings"
    fix_can_be_disabled = True
