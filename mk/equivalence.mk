# Differential testing of the conversion (issue 11): Make fragment, included by the Makefile (mk/*.mk).
#
# `make fuzz-equivalence` draws EQUIVALENCE_EXAMPLES notebooks (50,000) from the grammar in tests/nbequiv,
# split over EQUIVALENCE_SHARDS processes, each from a seed of its own, and checks that every generated
# pipeline returns the notebook's values (tests/test_equivalence.py::test_pipeline_equals_notebook).
# The first difference stops its shard and prints the shrunk notebook; keep it under fixtures/equivalence/.
# Logs: build/equivalence/shard-N.log (Hypothesis' statistics at the end give the count each shard ran);
# build/equivalence/shard-N.count says how many a shard has checked so far (every 50).

EQUIVALENCE_EXAMPLES ?= 50000
EQUIVALENCE_SHARDS ?= 2

.PHONY: fuzz-equivalence

fuzz-equivalence: deps ## long differential run: 50,000 drawn notebooks vs their generated pipelines
	@mkdir -p build/equivalence
	@per=$$(( ($(EQUIVALENCE_EXAMPLES) + $(EQUIVALENCE_SHARDS) - 1) / $(EQUIVALENCE_SHARDS) )); pids=(); \
	for shard in $$(seq 1 $(EQUIVALENCE_SHARDS)); do \
	  NBHARDEN_EQUIVALENCE_EXAMPLES=$$per NBHARDEN_EQUIVALENCE_SEED=$$shard \
	  NBHARDEN_EQUIVALENCE_PROGRESS=build/equivalence/shard-$$shard.count \
	    $(PY) -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
	    "tests/test_equivalence.py::test_pipeline_equals_notebook" \
	    > build/equivalence/shard-$$shard.log 2>&1 & pids+=($$!); \
	done; \
	echo "fuzz-equivalence: $(EQUIVALENCE_SHARDS) shard(s) of $$per notebooks; logs in build/equivalence/"; \
	rc=0; for pid in "$${pids[@]}"; do wait $$pid || rc=1; done; \
	for log in build/equivalence/shard-*.log; do echo "--- $$log"; grep -E "passing examples|passed|failed|Falsifying" $$log || tail -n 20 $$log; done; \
	exit $$rc
