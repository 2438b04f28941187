# shellcheck shell=bash
# Sourced by hitloop's scripts (`. scripts/env.sh`): puts Node.js 24 first on PATH.
# hitloop runs TypeScript directly through Node 24's type stripping, so an older system node will
# not do. When `node` is not v24, Node 24 comes from the npm package `node@24` (it ships the
# binary) installed under ~/.cache/hitloop/node24, installed on first use.
# HITLOOP_ENV_QUIET=1 hides the install's output unless it fails.

_hitloop_node24_prefix="${XDG_CACHE_HOME:-$HOME/.cache}/hitloop/node24"

_hitloop_node_major() {
  node --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p'
}

_hitloop_use_node24() {
  [ "$(_hitloop_node_major)" = 24 ] && return 0
  local bin="$_hitloop_node24_prefix/node_modules/.bin"
  if [ ! -x "$bin/node" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "hitloop: Node.js 24 is required, and npm is missing to install it. Install Node.js 24 (or any Node with npm)." >&2
      return 1
    fi
    echo "hitloop: installing Node.js 24 into $_hitloop_node24_prefix (npm package node@24)" >&2
    mkdir -p "$_hitloop_node24_prefix"
    local out
    if ! out="$(npm install --prefix "$_hitloop_node24_prefix" --no-save --no-audit --no-fund node@24 2>&1)"; then
      echo "$out" >&2
      echo "hitloop: 'npm install --prefix $_hitloop_node24_prefix --no-save node@24' failed (output above)." >&2
      return 1
    fi
    [ "${HITLOOP_ENV_QUIET:-}" = 1 ] || echo "$out" >&2
  fi
  export PATH="$bin:$PATH"
  hash -r 2>/dev/null || true
  if [ "$(_hitloop_node_major)" != 24 ]; then
    echo "hitloop: $bin/node is not Node.js 24 ($(node --version 2>&1)); remove $_hitloop_node24_prefix and retry." >&2
    return 1
  fi
}

_hitloop_use_node24 || return 1 2>/dev/null || exit 1
unset -f _hitloop_use_node24 _hitloop_node_major
unset _hitloop_node24_prefix
