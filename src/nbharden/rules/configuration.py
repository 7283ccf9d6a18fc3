"""Configuration and secrets: what moves out of the code into Config (NBH2xx)."""

from __future__ import annotations

from nbharden.models import Fix, Severity
from nbharden.rules.base import Rule


class NBH201(Rule):
    """## What it does

    A secret (password, token, API key, credentials in a URL) is written in the code.

    ## Why it matters

    A secret in a notebook ends up in version control, in shared copies and in exported HTML, and it
    cannot be rotated without editing code. nbharden moves it (only the secret part of a string: a
    URL keeps its user and host) to a `SecretStr` field of the generated `Config`, read only from an
    environment variable, so the generated package contains no secret, its recordings refuse values
    that hold one, and its logs mask it. The finding names the cell and line so that you can also
    remove the secret from the notebook and rotate it: it may already be in your history.

    ## Example

    ```python
    API_KEY = "sk-live-8f2c0e1b7dA93kQz"                                  # NBH201
    engine = create_engine("postgresql://admin:Hunter2-Sales@db:5432/sales")   # NBH201
    ```

    What nbharden generates:

    ```python
    class Config(BaseSettings):    # required: no default, from the environment only
        API_KEY: SecretStr = Field(description="...; set ANALYSIS_API_KEY in the environment")
        postgres_password: SecretStr = Field(description="...; set ANALYSIS_POSTGRES_PASSWORD ...")

    # the step reads them as parameters: config.<field>.get_secret_value() at the call
    engine = create_engine(f"postgresql://admin:{postgres_password}@db:5432/sales")
    ```

    ## Fix safety

    Safe: applied by default. The value is the same when the environment variable is set; the
    generated package refuses to start with a clear error when it is not.
    """

    code = "NBH201"
    name = "hardcoded-secret"
    severity = Severity.ERROR
    fix = Fix.SAFE
    detector = "nbharden.analyse._secret_finding"


class NBH202(Rule):
    r"""## What it does

    An absolute file path (`/home/ana/data.csv`, `C:\data`) ties the code to one machine.

    ## Why it matters

    An absolute path only exists on the machine where the notebook was written. The generated
    package would fail anywhere else: on a colleague's laptop, in CI, in a container. When the path
    is assigned to a name or passed to a file call, nbharden also lifts it into a `Config` field
    (reported as NBH203), so it can be changed without editing code, but the field's default is
    still the machine-specific path.

    ## Example

    ```python
    df = pd.read_csv("/home/ana/projects/sales/data/2023.csv")   # NBH202
    ```

    Use instead:

    ```python
    class Config(BaseSettings):
        data_2023_csv: Path = Path("/home/ana/projects/sales/data/2023.csv")

    df = pd.read_csv(config.data_2023_csv)
    ```

    ## Fix safety

    No automatic fix: only you know where the file should live. Make the path relative to the
    notebook's folder (relative paths are resolved from there), or set the generated Config field in
    each environment.
    """

    code = "NBH202"
    name = "absolute-path"
    severity = Severity.WARNING
    fix = Fix.NONE
    detector = "nbharden.analyse._absolute_path_findings"


class NBH203(Rule):
    """## What it does

    A relative file path literal was lifted into a `Config` field.

    ## Why it matters

    Input and output locations are configuration, not logic: a production run reads a different file
    than the one you explored with. nbharden moves each file path literal into a field of the
    generated `Config`, with the literal as its default, so it can be set from the command line or
    the environment without touching code. A relative path stays relative: it resolves from
    `Config.data_dir` (the notebook's folder by default, env `<PKG>_DATA_DIR` or `--data-dir`), the
    working folder of a run, as Jupyter did when it ran the notebook there; so a moved or installed
    package works once `data_dir` points at the data.

    ## Example

    ```python
    df = pd.read_csv("data/sales.csv")     # NBH203
    ```

    What nbharden generates:

    ```python
    class Config(BaseSettings):
        sales_path: Path = Path("data/sales.csv")  # relative to data_dir

    df = pd.read_csv(config.sales_path)
    ```

    ## Fix safety

    Safe: applied by default; with the default config the code reads and writes the same files as
    the notebook did when run from its own folder.
    """

    code = "NBH203"
    name = "path-lifted"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.plan._lift"


class NBH204(Rule):
    """## What it does

    A URL literal was lifted into a `Config` field.

    ## Why it matters

    Endpoints change between environments (a staging API, a mirror, a local test server). nbharden
    moves each URL literal into a field of the generated `Config`, with the literal as its default,
    so it can be changed without editing code and tests can point it at a fixture. URLs with
    credentials in them are secrets (NBH201) and are never given a default.

    ## Example

    ```python
    r = requests.get("https://api.example.com/v1/prices", timeout=10)   # NBH204
    ```

    What nbharden generates:

    ```python
    class Config(BaseSettings):
        prices_url: str = "https://api.example.com/v1/prices"

    r = requests.get(config.prices_url, timeout=10)
    ```

    ## Fix safety

    Safe: applied by default; with the default config the code calls the same URL.
    """

    code = "NBH204"
    name = "url-lifted"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.plan._lift"


class NBH205(Rule):
    """## What it does

    A Config field got a validation constraint that the notebook's use of it shows.

    ## Why it matters

    A value that reaches a library call the wrong way fails late and far from its cause:
    `test_size=1.5` raises deep inside scikit-learn, `n_estimators=0` after the data has loaded, a
    mistyped input path after minutes of work. nbharden adds the constraint that the notebook itself
    shows: a float passed as `test_size=`, `frac=`... (or named as a fraction) must stay in (0, 1];
    an int passed as a count (`n_estimators=`, `epochs=`, or named `n_rows`, `num_epochs`...) must
    stay positive; a seed must not be negative; a path the notebook reads, that exists now and that
    no cell writes, must exist. A bad value is rejected when `Config` is built, with an error naming
    the field.

    ## Example

    ```python
    test_size = 0.2                                   # parameters cell
    n_trees = 100
    model = RandomForestClassifier(n_estimators=n_trees)   # NBH205
    ```

    What nbharden generates:

    ```python
    class Config(BaseSettings):
        test_size: float = Field(default=0.2, gt=0, le=1)
        n_trees: int = Field(default=100, gt=0)
    ```

    ## Fix safety

    Safe: applied by default; the notebook's own values satisfy every constraint, so the default run
    is unchanged.
    """

    code = "NBH205"
    name = "config-constraint"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.constraints.infer_constraints"


class NBH206(Rule):
    """## What it does

    A step checks the columns and dtypes of a frame, as the recorded run had them.

    ## Why it matters

    A pipeline that runs unattended gets new data: a file with a renamed column, an export where
    numbers arrive as text, an API that dropped a field. Without a check the step fails later with a
    `KeyError` far from the cause, or worse computes a wrong result on a column of strings. From the
    recorded run nbharden knows every frame a step takes in and every frame a step reads from a file
    or the network, with its columns and dtypes. The step checks them, on entry for its inputs and
    before it returns for what it read, and a violation raises `DataContractError` naming the step,
    the frame and the column.

    ## Example

    ```python
    sales = pd.read_csv(config.sales_path)       # NBH206: the run had region:str, amount:float64
    ```

    What nbharden generates:

    ```python
    def load(sales_path: Path) -> pd.DataFrame:
        sales = pd.read_csv(sales_path)
        require_columns(sales, "sales", "load", {"region": "object", "amount": "float64"})
        return sales
    ```

    ## Fix safety

    Safe: applied by default when the notebook is recorded; the recorded run satisfies every
    contract, so the default run is unchanged. Extra columns are allowed.
    """

    code = "NBH206"
    name = "data-contract"
    severity = Severity.INFO
    fix = Fix.SAFE
    detector = "nbharden.recorded_types.refine"
