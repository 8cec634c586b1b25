#!/usr/bin/env bash
# The one device check of a GPU machine (no network, no Ray/Optuna/MLflow/SQLAlchemy/pydantic
# there): run from the project root with the kit's site.tar.xz (../shared/gpu, see its
# README.md) copied to .whl/ (an ignored folder, carried with the checkout: carry [".whl"]).
#
#   bash bench/gpu_check.sh OUT [SECONDS]            # on the GPU machine; SECONDS: 480
#   GPU_CHECK_TINY=1 bash bench/gpu_check.sh OUT     # or --tiny first: the CPU rehearsal
#
# GPU_CHECK_SITE: the archive if not .whl/site.tar.xz; GPU_CHECK_CONFIG: the study config.
# Parts, each under its own timeout inside the total, each run whatever the one before did:
#   1 site     unpack .whl/site.tar.xz to /tmp/site, put it on PYTHONPATH (env.txt: versions)
#   2 pytest   pytest -m gpu tests/test_gpu.py                        -> OUT/pytest_gpu.txt
#   3 bench    bench/gpu.py --out OUT --budget N                      -> OUT/gpu.txt, gpu.jsonl
#   4 study    study validate + study run of GPU_CHECK_CONFIG (default bench/gpu_study.yaml) in
#              a fresh folder, nvidia-smi sampled each second         -> OUT/gpu_util.csv, run.txt
#              then study best-freeze --format json                   -> OUT/answer.json
#              and the trial slots' share spent training (mlflow.db)  -> OUT/share.txt
#   5 summary  GPU utilisation over the study (mean, median), its wall time, the ratios
#                                                                     -> OUT/summary.txt
# The rehearsal (--tiny or GPU_CHECK_TINY=1) runs the same parts with the checkout's
# .venv/bin/python: the archive is unpacked but not used (it is for Python 3.12), the
# bench runs --tiny, the study is a tiny one (the smoke preset cut to two strategies),
# and there is no nvidia-smi to sample.
set -u
tiny=${GPU_CHECK_TINY:-0}
if [ "${1:-}" = --tiny ]; then tiny=1; shift; fi
out=${1:?usage: bench/gpu_check.sh [--tiny] OUT [SECONDS]}
total=${2:-480}
root=$PWD
mkdir -p "$out" && out=$(cd "$out" && pwd)
: > "$out/summary.txt"
start=$(date +%s)
unset MLFLOW_TRACKING_URI STUDY_MLFLOW_DB STUDY_OPTUNA_DB RAY_ADDRESS  # not somebody else's

say() { echo "[gpu_check $(($(date +%s) - start))s] $*" | tee -a "$out/summary.txt"; }
# seconds for a part: at most $1, leaving $2 for the parts after it; 0 when under 10
allot() {
	local s=$((total - ($(date +%s) - start) - $2))
	[ "$s" -gt "$1" ] && s=$1
	[ "$s" -lt 10 ] && s=0
	echo "$s"
}

if [ "$tiny" = 1 ]; then
	py=$root/.venv/bin/python
	[ -x "$py" ] || py=python3
	site=/tmp/gpu_check_site.$$
else
	py=python3
	site=/tmp/site
fi
export PYTHONUNBUFFERED=1
say "start: tiny=$tiny, total ${total}s, python $py, out $out"

# ---- 1 site
archive=${GPU_CHECK_SITE:-.whl/site.tar.xz}
rm -rf "$site" && mkdir -p "$site"
t=$(allot 90 300)
if [ ! -f "$archive" ]; then
	say "site: $archive missing (copy the kit's site.tar.xz there, see bench/gpu_check.sh)"
elif [ "$t" = 0 ]; then
	say "site: skipped (no time left)"
elif timeout -k 5 "$t" tar -xJf "$archive" -C "$site" ||
	timeout -k 5 "$t" "$py" -m tarfile -e "$archive" "$site"; then
	say "site: unpacked to $site ($(du -sm "$site" | cut -f1) MB)"
else
	say "site: unpacking FAILED"
fi
if [ "$tiny" = 1 ]; then
	export PYTHONPATH=$root
	rm -rf "$site"
else
	export PYTHONPATH=$site:$root
fi
{
	if command -v nvidia-smi > /dev/null; then nvidia-smi -L 2>&1; else echo "no nvidia-smi"; fi
	timeout 60 "$py" -c "import sys,ray,optuna,mlflow,torch;print(sys.version.split()[0],'ray',ray.__version__,'optuna',optuna.__version__,'mlflow',mlflow.__version__,'torch',torch.__version__,'cuda',torch.cuda.is_available())" 2>&1 | tail -3
} > "$out/env.txt"
say "env: $(tr '\n' ' ' < "$out/env.txt")"

# ---- 2 pytest
t=$(allot 100 260)
if [ "$t" = 0 ]; then
	say "pytest: skipped (no time left)"
else
	timeout -k 5 "$t" "$py" -m pytest -m gpu tests/test_gpu.py -q -o addopts= -p no:cacheprovider \
		> "$out/pytest_gpu.txt" 2>&1
	say "pytest -m gpu (rc $?, limit ${t}s): $(tail -1 "$out/pytest_gpu.txt")"
fi

# ---- 3 bench
if [ "$tiny" = 1 ]; then t=$(allot 90 150); else t=$(allot 180 220); fi
if [ "$t" = 0 ]; then
	say "bench: skipped (no time left)"
else
	flags=(--out "$out" --budget $((t - 25)))
	[ "$tiny" = 1 ] && flags+=(--tiny)
	timeout -k 5 "$t" "$py" bench/gpu.py "${flags[@]}" > "$out/bench.txt" 2>&1
	rc=$?
	say "bench/gpu.py (rc $rc, limit ${t}s): $(grep -E '^ratio |FAILED|no CUDA' "$out/bench.txt" | tail -3 | tr '\n' ' ')"
fi

# ---- 4 study
work=$(mktemp -d /tmp/gpu_check_study.XXXXXX)
rt=$(mktemp -d /tmp/rt.XXXXXX)
if [ "$tiny" = 1 ]; then
	config=$work/tiny.yaml
	"$py" - "$config" <<-'EOF'
		import sys, yaml
		from importlib.resources import files
		data = yaml.safe_load(files("study.config.presets").joinpath("smoke.yaml").read_text())
		data["name"] = "gpu-check-tiny"
		data["search"]["strategies"] = ["scratch", "finetune"]
		open(sys.argv[1], "w").write(yaml.safe_dump(data, sort_keys=False))
	EOF
else
	config=${GPU_CHECK_CONFIG:-bench/gpu_study.yaml}
	[ "${config#/}" = "$config" ] && config=$root/$config
fi
cd "$work" || exit 1
cp "$config" "$out/study_config.yaml" 2> /dev/null
t=$(allot 60 200)
echo "skipped (no time left)" > "$out/validate.txt"
[ "$t" != 0 ] && timeout -k 5 "$t" "$py" -m study validate --config "$config" > "$out/validate.txt" 2>&1
say "study validate $config: $(tail -2 "$out/validate.txt" 2>/dev/null | tr '\n' ' ')"
sampler=
if [ "$tiny" != 1 ] && command -v nvidia-smi > /dev/null; then
	nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 \
		> "$out/gpu_util.csv" 2> /dev/null &
	sampler=$!
else
	say "study: no GPU utilisation sampling (no nvidia-smi here)"
fi
t=$(allot 600 50)
study_start=$(date +%s)
if [ "$t" = 0 ]; then
	say "study: skipped (no time left)"
	rc=skipped
else
	STUDY_RAY_TMPDIR=$rt timeout -k 15 "$t" "$py" -m study run --config "$config" > "$out/run.txt" 2>&1
	rc=$?
fi
wall=$(($(date +%s) - study_start))
[ -n "$sampler" ] && kill "$sampler" 2> /dev/null
say "study run (rc $rc, limit ${t}s): wall ${wall}s; $(grep -E 'trial slots spent training|where the time went' "$out/run.txt" | tr '\n' ' ')"
timeout -k 5 40 "$py" -m study best-freeze --format json > "$out/answer.json" 2> "$out/answer.err"
say "best-freeze (rc $?): $(wc -c < "$out/answer.json") bytes in answer.json"
cp mlflow.db "$out/" 2> /dev/null
timeout -k 5 30 "$py" - "$config" > "$out/share.txt" 2>&1 <<-'EOF'
	# sum of the trial runs' train_seconds / ((search + confirm wall time) x concurrent slots)
	import os, sys, yaml
	from mlflow.tracking import MlflowClient
	import torch
	resources = (yaml.safe_load(open(sys.argv[1])) or {}).get("resources", {})
	cpu, gpu = resources.get("cpu_per_trial", 1), resources.get("gpu_per_trial", 0)
	slots = int(resources.get("num_cpus") or os.cpu_count()) // cpu
	if gpu:
	    slots = min(slots, int(torch.cuda.device_count() // gpu))
	slots = resources.get("max_concurrent_trials") or max(1, int(slots))
	client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
	ids = [e.experiment_id for e in client.search_experiments()]
	study = client.search_runs(ids, "tags.run_type = 'study'",
	                           order_by=["attributes.start_time DESC"], max_results=1)[0]
	trials = client.search_runs([study.info.experiment_id],
	                            f"tags.mlflow.parentRunId = '{study.info.run_id}'", max_results=5000)
	trials = [r for r in trials if "reused_from" not in r.data.tags]  # copies trained nothing
	train = sum(r.data.metrics.get("train_seconds", 0.0) for r in trials)
	m = study.data.metrics
	phases = m.get("seconds_search", 0.0) + m.get("seconds_confirm", 0.0)
	share = train / (phases * slots) if phases else float("nan")
	print(f"trial slots spent training: {share:.1%} ({len(trials)} trials, {train:.0f} s of "
	      f"training / ({slots} slots x {phases:.0f} s of search + confirm)); the study's own "
	      f"training_share metric: {m.get('training_share', float('nan')):.1%}")
EOF
say "share: $(tail -1 "$out/share.txt")"
cd "$root" || exit 1
rm -rf "$rt"
[ "$tiny" = 1 ] && rm -rf "$work"

# ---- 5 summary
"$py" - "$out/gpu_util.csv" <<-'EOF' | tee -a "$out/summary.txt"
	import statistics, sys
	try:
	    util = [float(line.split(",")[0]) for line in open(sys.argv[1]) if line.strip()]
	except (OSError, ValueError) as error:
	    util = []
	if util:
	    print(f"GPU utilisation over the study: mean {statistics.mean(util):.1f}%, median "
	          f"{statistics.median(util):.1f}%, {len(util)} samples, "
	          f"{sum(u > 0 for u in util) / len(util):.0%} of them above 0")
	else:
	    print("GPU utilisation over the study: no samples")
EOF
say "study wall time ${wall}s (rc $rc)"
grep -E '^(ratio |packing K=|[a-z0-9]+: trial step / bare loop [0-9])' "$out/bench.txt" 2> /dev/null | tee -a "$out/summary.txt"
say "done in $(($(date +%s) - start))s of ${total}s; files in $out: $(ls "$out" | tr '\n' ' ')"
