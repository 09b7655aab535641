# One command to run, one to test. Both install what they need first.
PY ?= python3
UV := $(PY) -m uv

.PHONY: setup test-setup run test lint bench sim

# What running the gateway needs: the locked Python dependencies.
setup:
	@$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet --compile-bytecode

# What the tests need on top: the Node.js peers (SMPP stack, OIDC provider) and Chromium.
test-setup: setup
	@cd tests/interop/node && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; }
	@cd tests/interop/oidc && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; }
	@# The console tests drive Debian's Chromium (never a browser Playwright downloads).
	@[ -x /usr/bin/chromium ] || { [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "note: /usr/bin/chromium missing (apt-get install chromium); tests/console need it"

run: setup
	$(UV) run --frozen smsgateway demo

sim: setup
	$(UV) run --frozen smsgateway smsc-sim

test: test-setup
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen ruff format --check src tests bench
	$(UV) run --frozen mypy
	$(UV) run --frozen pytest

bench: setup
	$(UV) run --frozen python bench/run_all.py
