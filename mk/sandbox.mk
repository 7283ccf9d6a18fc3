# Sandboxed recording (docs/sandbox.md): Make fragment, included by the Makefile (mk/*.mk).
#
# What it adds to `make deps` / `make test`: Debian's bubblewrap, for sandbox tier `bwrap` and its tests in
# tests/test_sandbox.py (apt-get, as root, like mk/lab.mk's chromium). Without root it only says how to install
# it: nbharden then falls back to tier `limits`, and the tests of tier `bwrap` are skipped with the reason.

BWRAP ?= /usr/bin/bwrap

deps: $(BWRAP)

$(BWRAP):
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else \
	  echo "note: bubblewrap is not installed (sudo apt-get install bubblewrap): sandbox tier bwrap and its tests are skipped" >&2; \
	fi
