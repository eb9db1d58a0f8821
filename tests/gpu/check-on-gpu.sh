#!/usr/bin/env bash
# Guard's GPU check, for a machine with an NVIDIA GPU, its driver and PyTorch
# (no .NET needed): the native guard binary watches while a PyTorch training
# loop runs and, through a shell, starts a second process doing CUDA work of
# its own. Both must be attributed on the GPU (driver ioctls and NVML); the
# trainer must be left alone and the intruder flagged (gpu-intruder).
#
#   sudo tests/gpu/check-on-gpu.sh [path/to/guard]      (default artifacts/guard/guard)
#
# Writes watch.jsonl, watch.err, gpu.txt, gpu.json and verdict.txt to $OUT
# (a temporary directory when unset) and exits non-zero when a check fails.
set -euo pipefail
guard=$(realpath "${1:-artifacts/guard/guard}")
out=${OUT:-$(mktemp -d)}
work=$(mktemp -d)
trap 'rm -rf "$work"; "$guard" detach --all >/dev/null 2>&1 || true' EXIT
[ "$(id -u)" = 0 ] || { echo "check-on-gpu: run as root (guard loads BPF programs)" >&2; exit 2; }
python3 -c 'import torch; assert torch.cuda.is_available()' || { echo "check-on-gpu: PyTorch with CUDA is needed" >&2; exit 2; }

cat > "$work/train.py" <<'PY'
import subprocess, sys, time, torch
x = torch.randn(4096, 4096, device="cuda")
# The agent's tool shell starts CUDA work of its own: bash runs python in place.
work = "import time, torch\ny = torch.randn(4096, 4096, device='cuda')\nend = time.time() + 15\nwhile time.time() < end:\n    y = y @ y\n    y = y / y.norm()\ntorch.cuda.synchronize()\n"
intruder = subprocess.Popen(["/bin/bash", "-c", f'{sys.executable} -c "$WORK"'], env={"WORK": work, "PATH": "/usr/bin:/bin"})
print(f"trainer {sys.argv[0]} pid", flush=True)
end = time.time() + 20
while time.time() < end:
    x = x @ x
    x = x / x.norm()
torch.cuda.synchronize()
print(f"intruder pid {intruder.pid}", flush=True)
intruder.wait()
PY

"$guard" version | tee "$out/version.txt"
"$guard" watch --output json --duration 35s --type gpu,alert,exec > "$out/watch.jsonl" 2> "$out/watch.err" &
watcher=$!
sleep 3
python3 "$work/train.py" > "$out/train.out" 2>&1 &
trainer=$!
sleep 12
"$guard" gpu > "$out/gpu.txt" 2>&1 || true
"$guard" gpu --json > "$out/gpu.json" 2>&1 || true
# The sampler's whole cost (NVML calls included), as CPU time over wall time of the watch so far.
read -r utime stime < <(awk '{print $14, $15}' "/proc/$watcher/stat")
started=$(awk '{print $22}' "/proc/$watcher/stat")
ticks=$(getconf CLK_TCK)
uptime=$(awk '{print $1}' /proc/uptime)
python3 -c "import sys; u,s,st,t,up=map(float,sys.argv[1:]); print(f'guard watch CPU: {(u+s)/t:.2f} s over {up-st/t:.1f} s = {100*(u+s)/t/(up-st/t):.2f}% of one core (sampling every 1 s, events on)')" \
  "$utime" "$stime" "$started" "$ticks" "$uptime" | tee "$out/cpu.txt"
wait "$trainer"
wait "$watcher" || true

python3 - "$out" "$trainer" <<'PY' | tee "$out/verdict.txt"
import json, sys
out, trainer = sys.argv[1], int(sys.argv[2])
events = [json.loads(l) for l in open(f"{out}/watch.jsonl") if l.startswith("{")]
def pid(e): return e.get("process", {}).get("pid")
intruder = next((e for e in events if e["event"]["action"] == "exec" and pid(e) != trainer
                 and e.get("process", {}).get("parent", {}).get("pid") == trainer), None)
failures = []
if intruder is None:
    failures.append("no exec of the intruder under the trainer")
    ipid = None
else:
    ipid = pid(intruder)
activity = {pid(e): e["guard"]["gpu"].get("work", []) for e in events if e["event"]["action"] == "gpu-activity"}
nvml = {pid(e) for e in events if e["event"]["action"] == "gpu-process-sample"}
alerts = [e for e in events if e["event"]["kind"] == "alert" and e["event"]["action"] == "gpu-intruder"]
print(f"trainer {trainer}: driver work {activity.get(trainer)}, in NVML samples: {trainer in nvml}")
print(f"intruder {ipid}: driver work {activity.get(ipid)}, in NVML samples: {ipid in nvml}")
for a in alerts:
    print(f"gpu-intruder alert on {pid(a)}: {a['guard']['finding']['evidence'].get('why')}")
if "compute" not in (activity.get(trainer) or []): failures.append("the trainer's compute work was not attributed to it")
if ipid is not None and "compute" not in (activity.get(ipid) or []): failures.append("the intruder's compute work was not attributed to it")
if trainer not in nvml: failures.append("NVML did not show the trainer")
if ipid is not None and ipid not in nvml: failures.append("NVML did not show the intruder")
if any(pid(a) == trainer for a in alerts): failures.append("the trainer was flagged")
if ipid is not None and not any(pid(a) == ipid for a in alerts): failures.append("the intruder was not flagged")
print("PASS" if not failures else "FAIL: " + "; ".join(failures))
sys.exit(1 if failures else 0)
PY
