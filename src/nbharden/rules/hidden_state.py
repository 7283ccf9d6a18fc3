"""Hidden state: what a notebook's execution order and history hide (NBH1xx)."""

from __future__ import annotations

from nbharden.models import Fix, Severity
from nbharden.rules.base import Rule


class NBH101(Rule):
    """## What it does

    A name is read in a cell before any cell above it defines it.

    ## Why it matters

    A script runs its code top to bottom, once. A notebook lets you run cells in any order, so a
    cell can read a variable that only a cell further down defines: it worked in your session
    because you ran the lower cell first. The generated package runs the cells in their order on the
    page, where the name does not exist yet, so it would fail with a NameError. nbharden cannot
    guess which order you meant.

    ## Example

    ```python
    # cell 1
    total = price * quantity   # NBH101: 'price' is defined in cell 2

    # cell 2
    price = 9.5
    quantity = 3
    ```

    Use instead:

    ```python
    # move the definition above its first use, then convert again
    # cell 1
    price = 9.5
    quantity = 3

    # cell 2
    total = price * quantity
    ```

    ## Fix safety

    No automatic fix: moving cells changes what the notebook means. Reorder the cells (or define the
    name earlier), run "Restart & Run All" to check, and convert again.
    """

    code = "NBH101"
    name = "use-before-definition"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.analyse._read_findings"


class NBH102(Rule):
    """## What it does

    Execution counts are out of order: the saved outputs may depend on hidden state.

    ## Why it matters

    The execution counts ([3], [1], [7]...) show that the cells were last run in a different order
    from the one on the page, or that some were re-run. Values you see in the outputs may come from
    a state that a top-to-bottom run never reaches: a variable changed by a later cell, a deleted
    cell, a cell run twice. The generated package and its tests follow the page order, so they can
    disagree with the saved outputs.

    ## Example

    ```python
    # cell 1, execution count [4]
    df = df[df.price > 0]

    # cell 2, execution count [2]   <- NBH102: ran before cell 1
    df = load("sales.csv")
    ```

    ## Fix safety

    No automatic fix. Run "Restart & Run All" in Jupyter, check the results are still what you
    expect, save and convert again; when recording is on, nbharden records a fresh top-to-bottom run
    anyway.
    """

    code = "NBH102"
    name = "execution-order"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.analyse._execution_order_findings"


class NBH103(Rule):
    """## What it does

    A code cell was never run while other cells were.

    ## Why it matters

    A code cell without an execution count, in a notebook whose other cells have one, was never run
    in the session that produced the saved outputs. Its code may be stale, broken or a leftover
    experiment, and the outputs of the cells below it were computed without it. The generated
    package runs every cell, so it runs code that was never tried.

    ## Example

    ```python
    # cell 3, execution count [3]
    model.fit(X, y)

    # cell 4, never run   <- NBH103
    model = tune(model, grid)

    # cell 5, execution count [4]
    score = model.score(X_test, y_test)
    ```

    ## Fix safety

    No automatic fix. Delete the cell if it is a leftover, or run the notebook top to bottom and
    save it so the outputs include it.
    """

    code = "NBH103"
    name = "unexecuted-cell"
    severity = Severity.INFO
    fix = Fix.NONE
    detector = "nbharden.analyse._execution_order_findings"


class NBH104(Rule):
    """## What it does

    A function uses a `global` statement to change notebook state.

    ## Why it matters

    A function that assigns notebook variables through `global` has effects that its signature does
    not show: what it changes depends on when it is called, and calling it twice gives different
    results. nbharden turns each step into a function with explicit inputs and outputs; a hidden
    write to a global cannot be expressed that way, so the step keeps the function as is and the
    data flow the plan shows is incomplete.

    ## Example

    ```python
    counter = 0

    def record(row):
        global counter          # NBH104
        counter += 1
        return row
    ```

    Use instead:

    ```python
    def record(row, counter):
        return row, counter + 1
    ```

    ## Fix safety

    No automatic fix. Pass the value in and return the new one, as in the example.
    """

    code = "NBH104"
    name = "global-in-function"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.analyse._CellVisitor.visit_Global"


class NBH105(Rule):
    """## What it does

    A function reads a global that is defined or redefined after the function is defined.

    ## Why it matters

    A function body reads a notebook variable, and a later cell assigns that variable again. What
    the function computes then depends on when it is called: before the reassignment it sees the old
    value, after it the new one. In a notebook this is easy to miss (the function "worked" when you
    tried it); in a package the step order decides, and moving the function to module level would
    freeze the wrong value.

    ## Example

    ```python
    # cell 1
    rate = 0.1
    def with_tax(x):
        return x * (1 + rate)   # NBH105: 'rate' is reassigned in cell 3

    # cell 3
    rate = 0.2
    ```

    Use instead:

    ```python
    def with_tax(x, rate):
        return x * (1 + rate)
    ```

    ## Fix safety

    No automatic fix. Make the value a parameter of the function (as in the example) or give the two
    values different names. nbharden keeps such a function inside its step (see NBH606). When the
    global does not exist yet where the function is defined, nbharden defines the function in the
    step where the last name it reads is bound (reported as this rule), so the step's closure sees
    it, as the notebook's global lookup did.
    """

    code = "NBH105"
    name = "stale-global"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.plan._late_reader_findings"


class NBH106(Rule):
    """## What it does

    The code uses IPython's output history (`_`, `__`, `_N`, `Out[N]`, `In[N]`).

    ## Why it matters

    `_` is the last displayed result, `__` the one before, `_3` and `Out[3]` the result of execution
    count 3, `In[3]` its source. These exist only in an interactive IPython session and change every
    time a cell is run, so code using them depends on the order in which cells were run. A script
    has no output history: the generated code would raise NameError or silently read something else.

    ## Example

    ```python
    # cell 4
    df.describe()

    # cell 5
    summary = _                # NBH106: the result of the previous cell
    ```

    Use instead:

    ```python
    # cell 4
    summary = df.describe()
    summary
    ```

    ## Fix safety

    No automatic fix: which value `_` meant depends on the order the cells were run. Assign the
    value to a name where it is computed and use that name.
    """

    code = "NBH106"
    name = "output-history"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.analyse._read_findings"
