#!/usr/bin/env bash
# make demo: a reference OCM peer on loopback shares a sample folder with a
# freshly started agent, and the agent lists it. Everything lives in a temp
# dir and stops at the end (or on Ctrl-C). Non-interactive.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
work=$(mktemp -d)
agent_port=${DEMO_AGENT_PORT:-19200}
peer_port=${DEMO_PEER_PORT:-19280}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

export XDG_CONFIG_HOME=$work/config XDG_STATE_HOME=$work/state XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
sock=$XDG_RUNTIME_DIR/ocm-agent.sock

echo "== starting the agent for bob@127.0.0.1:$agent_port"
"$bin/ocm-agent" serve --listen "127.0.0.1:$agent_port" --user bob --display-name "Bob (demo)" \
  --mount "" --secrets file --allow-insecure-peers --dns-server 127.0.0.1:9 >"$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  [ -S "$sock" ] && break
  sleep 0.1
done
[ -S "$sock" ] || { echo "the agent did not start:"; cat "$work/agent.log"; exit 1; }

echo "== a reference peer (alice@127.0.0.1:$peer_port) shares its sample folder"
mkdir -p "$work/peer"
"$bin/ocm-peer" --listen "127.0.0.1:$peer_port" --dir "$work/peer" --user alice --no-stdin \
  --share-to "bob@127.0.0.1:$agent_port" --share-path sample >"$work/peer.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q "ocm-peer: shared" "$work/peer.log" 2>/dev/null && break
  sleep 0.1
done
grep "ocm-peer: shared" "$work/peer.log" || { echo "the peer could not share:"; cat "$work/peer.log" "$work/agent.log"; exit 1; }

echo "== ocm-agent shares list"
"$bin/ocm-agent" --socket "$sock" shares list
id=$("$bin/ocm-agent" --socket "$sock" shares list --json | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' | head -1)
[ -n "$id" ] || { echo "no share arrived"; exit 1; }
cat <<EOT

The share arrived. Against a long-running agent you would now run:
  ocm-agent shares show $id
  ocm-agent shares accept $id     # it appears under ~/OCM
  ocm-agent shares decline $id
(This demo stops the agent and the peer and removes their temp dir now.)
EOT
