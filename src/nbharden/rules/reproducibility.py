"""Reproducibility: randomness that differs between runs (NBH4xx)."""

from __future__ import annotations

from nbharden.models import Fix, Severity
from nbharden.rules.base import Rule


class NBH401(Rule):
    """## What it does

    Random numbers are drawn without a fixed seed, so results differ between runs.

    ## Why it matters

    Train/test splits, sampling, model initialisation and shuffles that use an unseeded generator
    give a different result on every run. Results cannot be reproduced, a bug cannot be replayed,
    and the generated characterization tests can only check such values by type and shape.

    ## Example

    ```python
    idx = np.random.permutation(len(df))             # NBH401
    train, test = train_test_split(df, test_size=0.2)   # NBH401
    rng = np.random.default_rng()                    # NBH401: a generator without a seed
    pca = PCA(n_components=10)                       # NBH401: may use the randomized solver
    pca = PCA(0.95)                                  # fine: a full SVD, deterministic
    ```

    What nbharden generates:

    ```python
    class Config(BaseSettings):
        seed: int = Field(default=0, ge=0)

    def run(config: Config | None = None) -> dict[str, Any]:
        config = config if config is not None else Config()
        seed_everything(config.seed)   # random.seed + numpy.random.seed
        ...
    ```

    ## Fix safety

    Unsafe (applied only with --unsafe-fixes): adds a `seed` field to Config and seeds `random` and
    numpy's global generator (which scikit-learn uses when `random_state` is not given) at pipeline
    start. That changes the numbers drawn: once, then they stay fixed. The recording seeds its first
    run the same way, so the seeded pipeline reproduces the recorded values. A generator the
    notebook makes itself without a seed (`np.random.default_rng()`, `random.Random()`) has no fix:
    give it a seed.
    """

    code = "NBH401"
    name = "unseeded-random"
    severity = Severity.WARNING
    fix = Fix.UNSAFE
    detector = "nbharden.analyse._CellVisitor._random_call"
