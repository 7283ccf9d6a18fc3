# JupyterLab command (issue 5): Make fragment, included by the Makefile (mk/*.mk).
#
# What it adds to `make deps` / `make test`:
#   * yarn (jlpm, used by the front-end build inside `pip install -e .`) uses npm's registry and CA;
#   * the front end is rebuilt and reinstalled into the venv when its sources change;
#   * Debian's chromium for the browser tests (apt-get, as root);
#   * `make test` also runs the browser tests, in their own pytest process (own pytest.ini).

# Never write a registry host into a file: take npm's, from the environment.
export YARN_NPM_REGISTRY_SERVER ?= $(shell npm config get registry 2>/dev/null)
# yarn ignores npm's CA settings; NODE_EXTRA_CA_CERTS covers it where set.
ifeq ($(strip $(NODE_EXTRA_CA_CERTS)),)
export YARN_CA_FILE_PATH ?= /etc/ssl/certs/ca-certificates.crt
endif

LAB_ASSET := src/nbharden/lab/labextension/package.json
LAB_SOURCES := labextension/package.json labextension/yarn.lock labextension/tsconfig.json \
	$(wildcard labextension/src/* labextension/style/* labextension/schema/*)
CHROMIUM ?= /usr/bin/chromium

.PHONY: test-lab-browser

deps: $(VENV)/.nbharden-lab $(CHROMIUM)

# `pip install -e .` (the venv rule) builds the front end once; this rebuilds it after an edit.
$(LAB_ASSET): $(LAB_SOURCES) | $(STAMP)
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm install && \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm build:prod

# The venv holds a copy of the built assets (share/jupyter/labextensions/nbharden): refresh it.
$(VENV)/.nbharden-lab: $(LAB_ASSET) $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

# Runs before the main suite (a prerequisite of `test`).
test: test-lab-browser
test-lab-browser: deps ## browser tests of the JupyterLab command (chromium + Playwright)
	$(PY) -m pytest -c tests/lab/browser/pytest.ini tests/lab/browser
