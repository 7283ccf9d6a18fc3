"""IPython syntax: magics and shell lines, translated or removed (NBH5xx)."""

from __future__ import annotations

from nbharden.models import Fix, Severity
from nbharden.rules.base import Rule


class NBH501(Rule):
    """## What it does

    A `!pip install` / `%pip install` line was moved into the generated dependencies.

    ## Why it matters

    Installing packages from inside the code changes the environment while it runs, needs network
    access at run time and is not pinned anywhere a tool can see. The generated package declares
    these packages in its `pyproject.toml` instead, and the install line is removed from the code.

    ## Example

    ```python
    %pip install lightgbm==4.3.0        # NBH501
    import lightgbm as lgb
    ```

    What nbharden generates:

    ```python
    # pyproject.toml
    dependencies = ["lightgbm==4.3.0"]
    ```

    ## Fix safety

    Safe: applied by default. Install the generated package (or its dependencies) before running it.
    """

    code = "NBH501"
    name = "pip-install"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.transform.magics._Translator"


class NBH502(Rule):
    """## What it does

    An IPython magic or shell line that cannot be translated was removed.

    ## Why it matters

    Plain Python has no `get_ipython()`, so every magic must be translated (NBH503, NBH504) or
    removed. nbharden removes what it cannot translate faithfully: magics without a Python
    equivalent (`%store`, `%run` of another notebook, `%%html` widgets...), a `!cmd` that
    interpolates notebook variables (`!ls {folder}`, `!echo $name`), and magic code that does not
    parse. What it did is now missing from the generated code, so each removal is reported as a
    warning for you to check.

    ## Example

    ```python
    %store results                 # NBH502: no equivalent outside IPython
    !cp {src} backup/              # NBH502: interpolates a notebook variable
    ```

    Use instead:

    ```python
    shutil.copy(src, "backup/")
    ```

    ## Fix safety

    No automatic fix: the line is removed because no faithful translation exists. If it mattered for
    the results, rewrite it in Python in the notebook (as in the example) and convert again.
    """

    code = "NBH502"
    name = "magic-removed"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.transform.magics._Translator"


class NBH503(Rule):
    """## What it does

    An IPython magic was translated into plain Python (e.g. `%timeit f()` -> `f()`).

    ## Why it matters

    Some magics wrap ordinary code (`%time`, `%timeit`, `%%capture`), have a direct Python
    equivalent (`%env NAME=value` -> `os.environ["NAME"] = "value"`, `%%writefile f.py` ->
    `Path("f.py").write_text(...)`) or only steer the interactive session (`%matplotlib inline`,
    `%load_ext autoreload`, `%config`), which a script does not have. A magic the notebook defines
    itself (`@register_line_magic def hello(line)`, then `%hello fr`) is a call of its function with
    the arguments IPython would pass (`hello("fr")`, and `f(line, body)` for a cell magic), so the
    value it shows can flow on (`_`). nbharden keeps what they do to the data, drops the interactive
    part, and reports each translation so the change is visible.

    ## Example

    ```python
    %matplotlib inline                      # NBH503: dropped
    %timeit result = slow_sum(values)       # NBH503
    %env MODE=prod                          # NBH503
    ```

    What nbharden generates:

    ```python
    result = slow_sum(values)
    os.environ["MODE"] = "prod"
    ```

    ## Fix safety

    Safe: the code runs once instead of being timed (`%timeit` ran it many times; only side effects
    that depended on the repetition differ), and session-only magics do not change what the code
    computes.
    """

    code = "NBH503"
    name = "magic-translated"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.transform.magics._Translator"


class NBH504(Rule):
    """## What it does

    A `!cmd` shell line became a `subprocess.run` call.

    ## Why it matters

    `!cmd` runs a shell command through IPython. Plain Python cannot run it as written, so nbharden
    turns it into `subprocess.run` with the same command line and a shell, keeping IPython's
    behaviour of not failing when the command does (`check=False`); `files = !ls` captures the
    output lines. Shell commands make a pipeline depend on tools installed on the machine; each one
    is reported so you can decide whether to replace it with Python.

    ## Example

    ```python
    !mkdir -p output/figures        # NBH504
    files = !ls data                # NBH504
    ```

    What nbharden generates:

    ```python
    subprocess.run("mkdir -p output/figures", shell=True, check=False)
    files = subprocess.run(
        "ls data", shell=True, capture_output=True, text=True, check=False
    ).stdout.splitlines()
    ```

    ## Fix safety

    Safe: the same command runs through the same kind of shell, and a failure is ignored as it was
    in the notebook. Consider `check=True` or a Python equivalent once converted: an ignored failure
    in a pipeline usually means missing data later.
    """

    code = "NBH504"
    name = "shell-command"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.transform.magics._Translator"
