# Two commands on a fresh Debian machine: `make demo` and `make test`. Both run `make install`
# first, which is idempotent: it installs what is missing and nothing else.

PY        := .venv/bin/python
PIP       := .venv/bin/pip
APT_PKGS  := chromium chromium-driver chromium-headless-shell fonts-dejavu-core fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji python3.11-doc
STAMP     := .venv/.installed

.PHONY: install lock debian-packages demo test test-unit test-integration lint typecheck bench clean \
        test-deploy deploy-packages

install: debian-packages $(STAMP)

# Installs the Debian packages of $(1) that are missing (a dpkg query per package, fast).
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

# Checked on every run: installs only what is missing.
debian-packages:
	$(call apt_install,$(APT_PKGS))

# The package in editable mode with its API, Playwright and test extras, every dependency at the
# version locked in requirements.txt (`make lock` writes it from pyproject.toml's ranges).
$(STAMP): requirements.txt pyproject.toml
	@# A .venv without pip is one whose creation was cut short: make it again.
	@[ -x $(PIP) ] || python3.11 -m venv --clear .venv || python3 -m venv --clear .venv
	@$(PIP) install -q --disable-pip-version-check -r requirements.txt -e '.[test]'
	@touch $(STAMP)

# Re-lock after changing a range in pyproject.toml: every dependency of every extra, pinned.
lock: install
	.venv/bin/pip-compile -q --strip-extras --unsafe-package screenshots --extra test --no-header --no-emit-index-url --no-emit-find-links \
	  --output-file requirements.txt pyproject.toml
	sed -i '1i # Locked versions of every dependency (runtime, API, Playwright, tests): `make lock` writes this\n# file from pyproject.toml; `make install` and the Dockerfile install from it.' requirements.txt

demo: install
	$(PY) -m screenshots.dev.demo

test: install
	$(PY) -m ruff check .
	$(PY) -m mypy .
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q -m "not integration"

lint: install
	$(PY) -m ruff check .

typecheck: install
	$(PY) -m mypy .

# Benchmarks, not tests: they print and record numbers (bench-output/); see README.
bench: install
	$(PY) -m screenshots.dev.bench
	$(PY) -m screenshots.dev.bench.delivery
	$(PY) -m screenshots.dev.bench.apiload --json bench-output/api-load.json
	$(PY) -m screenshots.dev.bench.engines
	$(PY) -m screenshots.dev.bench.visual --json bench-output/visual.json
	$(PY) -m screenshots.dev.bench.s3put --json bench-output/s3put.json

# Issue #14 on this machine (root; run by .ci/run after `make test`): the tools (podman,
# buildah, debootstrap, runc, iproute2, socat; installed once), the base image made with
# debootstrap once, the Dockerfile built unchanged unless what it copies changed (a content hash
# label), then tests/deploy: the container e2e and the multi-host test with its faults. Each
# script's output is kept in $${TMPDIR:-/tmp}/screenshots-test-deploy/. See deploy/README.md.
DEPLOY_PKGS := podman buildah debootstrap runc iproute2 socat

deploy-packages:
	$(call apt_install,$(DEPLOY_PKGS))

test-deploy: install deploy-packages
	@start=$$(date +%s); report=$${TMPDIR:-/tmp}/screenshots-test-deploy.xml; \
	SCREENSHOTS_TEST_DEPLOY=1 $(PY) -m pytest -q -p no:cacheprovider --junitxml=$$report tests/deploy; \
	status=$$?; elapsed=$$(( $$(date +%s) - start )); \
	$(PY) -c 'import sys, xml.etree.ElementTree as et; s = et.parse(sys.argv[1]).getroot().find("testsuite"); \
	  t, f, e, k = (int(s.get(n, 0)) for n in ("tests", "failures", "errors", "skipped")); \
	  print("deploy: " + ", ".join(f"{v} {n}" for v, n in ((t - f - e - k, "passed"), (f, "failed"), (e, "errors"), (k, "skipped")) if v) + f" in {sys.argv[2]}s")' \
	  $$report $$elapsed 2>/dev/null || echo "deploy: no report (pytest exit $$status) in $${elapsed}s"; \
	exit $$status

clean:
	rm -rf demo-output bench-output .pytest_cache .mypy_cache .ruff_cache
