#!/usr/bin/env bash
# The action's (action.yml) run step: each suite of $SUITES through vxchaos as root, each compared with its
# baseline when $BASELINE is set. It never stops at a failing suite: every suite runs, and the suites that
# broke an expectation or regressed are written to the step output `failed` for the action's last step.
# Inputs come in the environment: SUITES PROVIDER QUICK BASELINE CLIENTS KERNEL VXCHAOS_REPORTS (+ GitHub's own).
set -uo pipefail

vx=(node "$GITHUB_ACTION_PATH/bin/vxchaos.js")
# netns needs root (namespaces, iptables); -E keeps GITHUB_STEP_SUMMARY, where vxchaos appends each matrix.
if [ "$(id -u)" -ne 0 ]; then vx=(sudo -E env "PATH=$PATH" "${vx[@]}"); fi

out="$VXCHAOS_REPORTS"
mkdir -p "$out"
echo "reports=$out" >> "$GITHUB_OUTPUT"

# The newest matrix.json of this suite under $BASELINE (a file is taken as it is); nothing when there is none.
baseline_for() {
  node - "$BASELINE" "$1" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const [base, suiteArg] = process.argv.slice(2);
const suite = path.basename(suiteArg).replace(/\.ya?ml$/, '');
if (fs.statSync(base, { throwIfNoEntry: false })?.isFile()) {
  console.log(base);
  process.exit(0);
}
const found = [];
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name === 'matrix.json') {
      try {
        const m = JSON.parse(fs.readFileSync(p, 'utf8'));
        if (m.suite === suite) found.push({ p, at: Date.parse(m.startedAt) || 0 });
      } catch {}
    }
  }
};
if (fs.existsSync(base)) walk(base);
found.sort((a, b) => b.at - a.at);
if (found[0]) console.log(found[0].p);
JS
}

failed=()
# Suite names and paths never hold glob characters; no pathname expansion of the list.
set -f
for suite in ${SUITES//,/ }; do
  args=(suite "$suite" --provider "$PROVIDER" --out "$out")
  if [ "$QUICK" = true ]; then args+=(--quick); fi
  if [ -n "$CLIENTS" ]; then args+=(--clients "$CLIENTS"); fi
  # Unset for callers from before the kernel input; empty means the runner's own kernel.
  if [ -n "${KERNEL:-}" ]; then args+=(--kernel "$KERNEL"); fi
  if [ -n "$BASELINE" ]; then
    b="$(baseline_for "$suite")"
    if [ -n "$b" ]; then
      args+=(--baseline "$b")
    else
      echo "::notice::vxchaos: no baseline for $suite under $BASELINE; this run is not compared"
    fi
  fi
  echo "::group::vxchaos ${args[*]}"
  "${vx[@]}" "${args[@]}"
  rc=$?
  echo "::endgroup::"
  if [ "$rc" -ne 0 ]; then
    # 1: a cell broke its expectation or the comparison found a regression; 2: bad input; 130/143: interrupted.
    echo "::error::vxchaos suite $suite exited $rc"
    failed+=("$suite")
  fi
done

# Reports written as root stay readable by the upload step.
if [ "$(id -u)" -ne 0 ]; then sudo chown -R "$(id -u):$(id -g)" "$out" 2>/dev/null || true; fi
echo "failed=${failed[*]}" >> "$GITHUB_OUTPUT"
