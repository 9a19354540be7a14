"""Submitting the workflow to a real SLURM cluster.

A single-node cluster on 127.0.0.1 with fake GPUs and accounting (``tests/slurm/local_cluster.sh``:
Debian packages, needs root; slurmdbd with associations enforced, so ``sacct`` works and an unknown
account is refused) runs the demo workflow on a slice through ``--executor slurm`` with the project's
profile (``profiles/slurm``, its site block set for this cluster, job status from ``sacct`` as on a
real cluster). Checked: every job ran as a SLURM job, the embedding jobs (and only they) were given a
GPU, the outputs equal a local run's, and bad site settings (partition, account, memory), a failing job
and a cancelled job end the run with a clear message, never a hang; a rerun then completes only what
is missing. Where the cluster cannot run (not root, no Debian packages) the tests skip with
the reason (``PLATONIC_REQUIRE_SLURM=1`` turns that into a failure). Every scheduler call and every
Snakemake run is bounded by a timeout; a run that hits it is killed, its SLURM jobs cancelled, and the
test fails.
"""

import getpass
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, require_env
from test_workflow import SNAKEMAKE, write_config

CLUSTER = ROOT / "tests" / "slurm" / "local_cluster.sh"
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
SCHEDULER_TIMEOUT = 30  # seconds, every squeue/sinfo/scancel call
MODELS = ["7net-0", "dummy-mace-mp-0-small"]  # two families, both offline
# the rules that load a model (every family): the profile's GPU jobs
GPU_RULES = ("embed", "embed_probes", "finetune", "finetune_evaluate", "phonons", "phonons_finetuned")
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
# what the cluster's TaskProlog writes into each job's output, once per job step
TASK_LINE = re.compile(
    r"platonic-slurm-task: SLURM_JOB_ID=(\d+) SLURM_STEP_ID=(\S+) CUDA_VISIBLE_DEVICES=(\S+)"
)
# every test starts the main slice runs first (in the background; see slice_runs)
pytestmark = pytest.mark.usefixtures("slice_runs")


def scheduler(*args):
    """A SLURM client command, bounded."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=SCHEDULER_TIMEOUT)


@pytest.fixture(scope="module")
def cluster():
    """Start the local cluster (idempotent); stop it afterwards unless it was already up."""

    def unavailable(reason):
        if os.environ.get("PLATONIC_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)

    if not CLUSTER.exists():
        unavailable(f"{CLUSTER} missing")
    was_up = (
        subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True, timeout=120).returncode == 0
    )
    start = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=900)
    if start.returncode == 3:
        unavailable(start.stderr.strip().splitlines()[-1])
    assert start.returncode == 0, start.stdout + start.stderr
    info = scheduler("sinfo", "-h", "-o", "%P|%m|%G")
    assert info.returncode == 0, info.stderr
    partition, mem_mb, gres = info.stdout.split()[0].split("|")
    # the account the cluster registered for this user (associations are enforced: jobs need one)
    user = getpass.getuser()
    acct = scheduler("sacctmgr", "-n", "-P", "list", "user", user, "format=defaultaccount")
    assert acct.returncode == 0 and acct.stdout.strip(), (user, acct.stdout, acct.stderr)
    yield {
        "partition": partition.rstrip("*"),
        "account": acct.stdout.strip(),
        "mem_mb": int(mem_mb),
        "gres": gres,
    }
    if not was_up:
        stop = subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, text=True, timeout=300)
        assert stop.returncode == 0, stop.stdout + stop.stderr


def site_profile(directory: Path, cluster, partition=None, gres=None, account=None, status=None):
    """profiles/slurm with its site block filled in for the local cluster, written to ``directory``.

    GPUs of type ``fake`` as ``--gpus=fake:N`` (the profile's gpu_model), or with ``gres`` as
    ``--gres`` (the profile's alternative: gpu 0 and gres set). Job status from ``sacct`` (the plugin's
    default, as the profile ships), or ``status="squeue"`` (the profile's commented-out setting)."""
    profile = yaml.safe_load(PROFILE.read_text())
    partition = cluster["partition"] if partition is None else partition
    profile["default-resources"]["slurm_partition"] = partition
    profile["default-resources"]["slurm_account"] = cluster["account"] if account is None else account
    sets = {}
    for rule in GPU_RULES:
        sets[rule] = {**profile["set-resources"][rule], "slurm_partition": partition, "gpu_model": "fake"}
        if gres:  # the profile's recipe: no gpu_model, gpu 0, gres
            del sets[rule]["gpu_model"]
            sets[rule].update(gpu=0, gres=gres)
    profile["set-resources"] = sets
    assert "slurm-status-command" not in profile
    if status:
        profile["slurm-status-command"] = status
    profile["slurm-init-seconds-before-status-checks"] = 1  # first status check 1 s after submitting
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def gpu_request(jobid):
    """How a job asked for GPUs, as slurmctld recorded it: TresPerJob (--gpus) or TresPerNode (--gres)."""
    res = scheduler("scontrol", "show", "job", jobid)
    assert res.returncode == 0, res.stderr
    return dict(re.findall(r"(TresPer\w+)=(\S+)", res.stdout))


def slice_config(path: Path, run_name: str, **changes):
    return write_config(
        path,
        run_name=run_name,
        **{
            "structures.limit": 12,
            "models": MODELS,
            "anchors.k": 8,
            "anchors.reference_model": MODELS[0],
            "metrics.n_sample": 60,
            "embed.threads": 1,
            "embed.mem_mb": 3000,
            "embed.gpu": 1,  # the CPU demo asks for none; on a cluster an embedding job asks for one
            **changes,
        },
    )


class Run:
    """A Snakemake process in its own session, its output in a file; ``wait`` bounds it."""

    def __init__(self, args, log: Path):
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(
                [str(a) for a in args], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self):
        return self.log.read_text()

    def run_id(self):
        """The SLURM job name the plugin gives every job of this run."""
        found = re.search(r"SLURM run ID: (\S+)", self.output())
        return found.group(1) if found else None

    def kill(self):
        """Stop Snakemake (the whole process group) and cancel this run's SLURM jobs, if it still runs."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        if self.run_id():  # this run's jobs only (the cluster may be shared)
            scheduler("scancel", "--name", self.run_id())

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"Snakemake did not finish within {timeout} s (a hang?):\n{self.output()[-4000:]}")
        return rc, self.output()


@pytest.fixture(scope="module")
def slice_runs(cluster, tmp_path_factory):
    """The demo workflow on a slice, through the cluster and (the reference) locally, up to the metric
    table. Both start in the background with the first test of this module: the cluster's jobs mostly
    wait on Snakemake's status polling, so the other tests use that time.
    test_workflow_on_slurm_matches_a_local_run waits for them."""
    require_env("sevenn")
    require_env("mace")
    base = tmp_path_factory.mktemp("slice")
    cfg = slice_config(base / "slice.yaml", "slurm")
    target = "results/slurm/metrics/pairwise.csv"
    runs = {
        "local": local_run(cfg, base / "local", target),
        "slurm": slurm_run(site_profile(base / "profile", cluster), cfg, base / "slurm", target),
    }
    yield base, runs
    for run in runs.values():
        run.kill()


def slurm_run(profile, cfg, workdir, *targets, log_name="slurm.log"):
    args = [*SNAKEMAKE, "--workflow-profile", profile, "--configfile", cfg, "--directory", workdir, *targets]
    return Run(args, Path(workdir) / log_name)


def local_run(cfg, workdir, *extra, log_name="local.log"):
    args = [*SNAKEMAKE, "--cores", "2", "--configfile", cfg, "--directory", workdir, *extra]
    return Run(args, Path(workdir) / log_name)


def submitted_jobs(output):
    """[(rule, SLURM job id, SLURM log)] of every job this Snakemake run submitted."""
    jobs = []
    for jobid, log in SUBMITTED.findall(output):
        rule = next(p for p in Path(log).parts if p.startswith("rule_"))[len("rule_") :]
        jobs.append((rule, jobid, Path(log)))
    return jobs


def planned_jobs(output):
    """{rule: count} from Snakemake's 'Job stats' table."""
    lines = output.splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    counts.pop("total", None)
    return counts


def assert_same_outputs(a: Path, b: Path):
    """The same files; arrays and tables equal (floats to 1e-6, the project's cross-process bound)."""

    def files(root):
        return sorted(
            p.relative_to(root)
            for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] not in ("logs", "benchmarks")
        )

    names = files(a)
    assert names == files(b)
    compared = 0
    for rel in names:
        if rel.suffix == ".npy":
            x, y = np.load(a / rel), np.load(b / rel)
            assert x.shape == y.shape and x.dtype == y.dtype, rel
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6, err_msg=str(rel))
        elif rel.suffix == ".csv":
            pd.testing.assert_frame_equal(
                pd.read_csv(a / rel), pd.read_csv(b / rel), check_exact=False, rtol=0, atol=1e-6, obj=str(rel)
            )
        else:
            continue
        compared += 1
    assert compared >= 10, names


def prepared(tmp_path, name, **changes):
    """A slice config whose structures were parsed locally (setup for the fault tests)."""
    cfg = slice_config(tmp_path / f"{name}.yaml", name, **changes)
    rc, out = local_run(cfg, tmp_path, "--until", "parse_structures", log_name="prepare.log").wait(
        timeout=180
    )
    assert rc == 0, out[-3000:]
    return cfg


def embedding_targets(name):
    return [f"results/{name}/embeddings/{m}.json" for m in MODELS]


def shard(tmp_path, name, model, ext="npy"):
    return tmp_path / "results" / name / "embeddings" / "shards" / model / f"0000.{ext}"


@pytest.mark.parametrize("fault", ["partition", "account", "memory"])
def test_bad_site_settings_stop_at_submission_with_the_reason(cluster, tmp_path, fault):
    require_env("sevenn")
    require_env("mace")
    if fault == "partition":
        cfg = prepared(tmp_path, "bad")
        profile = site_profile(tmp_path / "profile", cluster, partition="nope")
        expect = ["SLURM sbatch failed", "invalid partition specified: nope"]
    elif fault == "account":  # not in the accounting database: the plugin checks it with sacctmgr
        # the cluster itself refuses it too (associations enforced), should a submission get that far
        res = scheduler("sbatch", "-A", "nope", "--wrap", "true")
        assert res.returncode != 0
        assert "Invalid account or account/partition combination specified" in res.stderr, res.stderr
        cfg = prepared(tmp_path, "bad")
        profile = site_profile(tmp_path / "profile", cluster, account="nope")
        expect = ["The given account nope appears to be invalid. Available accounts:", cluster["account"]]
    else:  # a rule asking for more memory than the node has
        mem = 2 * cluster["mem_mb"]
        cfg = prepared(tmp_path, "bad", **{"embed.mem_mb": mem})
        profile = site_profile(tmp_path / "profile", cluster)
        expect = ["SLURM sbatch failed", "Memory specification can not be satisfied", f"--mem {mem}"]
    t0 = time.monotonic()
    rc, out = slurm_run(profile, cfg, tmp_path, *embedding_targets("bad")).wait(timeout=180)
    assert rc != 0
    for text in expect:
        assert text in out, (text, out[-4000:])
    assert not submitted_jobs(out)
    assert not (tmp_path / "results" / "bad" / "embeddings").exists()
    assert time.monotonic() - t0 < 120


def wait_for_running_job(run, rule, log, timeout=180, wildcard=""):
    """SLURM id of the running ``rule`` job of ``run`` (whose wildcards mention ``wildcard``) once its rule
    log exists (its command started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.proc.poll() is None:
        if run.run_id() and log.exists():
            res = scheduler("squeue", "-h", "--name", run.run_id(), "-t", "running", "-o", "%i|%k")
            for line in res.stdout.split():
                jobid, comment = line.split("|", 1)
                if comment.startswith(f"rule_{rule}_") and wildcard in comment:
                    return jobid
        time.sleep(0.5)
    pytest.fail(f"no running {rule} job with {log} within {timeout} s:\n{run.output()[-3000:]}")


def test_failed_and_cancelled_jobs_end_the_run_and_a_rerun_completes_only_what_is_missing(cluster, tmp_path):
    require_env("sevenn")
    require_env("mace")
    name, victim, other = "fault", "7net-0", "dummy-mace-mp-0-small"
    targets = embedding_targets(name)
    profile = site_profile(tmp_path / "profile", cluster)

    # 1. a job that fails at run time (a fidelity 'modal' for a checkpoint that has none): Snakemake
    #    exits non-zero once the independent job is done, naming the rule; the rule log says why
    bad = prepared(tmp_path, name, model_options={victim: {"modal": "PBE"}})
    rc, out = slurm_run(profile, bad, tmp_path, *targets, log_name="failing.log").wait(timeout=300)
    assert rc != 0
    assert "Error in rule embed" in out and "SLURM status is: 'FAILED'" in out, out[-4000:]
    rule_log = tmp_path / "results" / name / "logs" / "embed" / victim / "0000.log"
    assert "'modal' 'PBE'" in rule_log.read_text(), rule_log.read_text()[-2000:]
    assert not shard(tmp_path, name, victim).exists()
    done = shard(tmp_path, name, other)
    assert done.exists()  # the independent job finished (keep-going)
    kept = {
        p: p.stat().st_mtime_ns for p in (done, tmp_path / "results" / name / "structures" / "structures.npz")
    }

    # 2. the fixed config; the embedding job is cancelled (scancel) while it runs. Status from squeue:
    #    sacct calls the state of a job cancelled by a user 'CANCELLED by <uid>', which plugin 2.8.0
    #    does not recognise (it would wait for that job for ever; the README says so)
    good = slice_config(tmp_path / "fixed.yaml", name)
    rule_log.unlink()
    squeue_profile = site_profile(tmp_path / "squeue-profile", cluster, status="squeue")
    run = slurm_run(squeue_profile, good, tmp_path, *targets, log_name="cancelled.log")
    jobid = wait_for_running_job(run, "embed", rule_log, wildcard=victim)
    assert scheduler("scancel", jobid).returncode == 0
    rc, out = run.wait(timeout=300)
    assert rc != 0
    assert f"SLURM-job '{jobid}' failed, SLURM status is: 'CANCELLED'" in out, out[-4000:]
    assert not shard(tmp_path, name, victim).exists() and not shard(tmp_path, name, victim, "json").exists()

    # 3. the rerun submits only the missing jobs and leaves the finished outputs alone; it asks for the
    #    GPU the other way a site may need (--gres instead of --gpus)
    gres_profile = site_profile(tmp_path / "gres-profile", cluster, gres="gpu:fake:1")
    rc, out = slurm_run(gres_profile, good, tmp_path, *targets, log_name="rerun.log").wait(timeout=300)
    assert rc == 0, out[-4000:]
    jobs = submitted_jobs(out)
    assert Counter(rule for rule, _, _ in jobs) == {"embed": 1, "gather_embeddings": 1}
    (jobid, log), *_ = [(jobid, log) for rule, jobid, log in jobs if rule == "embed"]
    assert gpu_request(jobid) == {"TresPerNode": "gres:gpu:fake:1"}
    assert re.search(r"CUDA_VISIBLE_DEVICES=\d", log.read_text())
    assert shard(tmp_path, name, victim).exists() and (tmp_path / targets[0]).exists()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept


def test_workflow_on_slurm_matches_a_local_run(slice_runs):
    base, runs = slice_runs
    rc, out = runs["slurm"].wait(timeout=600)
    assert rc == 0, out[-5000:]
    local_rc, local_out = runs["local"].wait(timeout=300)
    assert local_rc == 0, local_out[-3000:]

    jobs = submitted_jobs(out)
    assert Counter(rule for rule, _, _ in jobs) == Counter(planned_jobs(out)), out[-3000:]
    assert {"embed", "pairwise_metrics"} <= {rule for rule, _, _ in jobs}
    assert sum(rule == "embed" for rule, _, _ in jobs) == 2  # 7net-0 (sevenn) and the MACE control
    assert len({jobid for _, jobid, _ in jobs}) == len(jobs)
    for rule, jobid, log in jobs:
        text = log.read_text()  # the job's SLURM output, kept by the profile
        tasks = TASK_LINE.findall(text)
        # the batch script and the `srun` step that ran the rule, both in this SLURM job
        assert {step for _, step, _ in tasks} >= {"batch", "0"}, (rule, text[-2000:])
        assert {job for job, _, _ in tasks} == {jobid}, (rule, jobid, tasks)
        assert f"rule {rule}:" in text, (rule, text[-2000:])
        gpus = {gpu for _, _, gpu in tasks}
        if rule in GPU_RULES:  # SLURM gave it a GPU, of the type the profile asked for
            assert len(gpus) == 1 and gpus.pop().isdigit(), (rule, tasks)
            assert gpu_request(jobid) == {"TresPerJob": "gres:gpu:fake:1"}
        else:
            assert gpus == {"unset"}, (rule, tasks)
            assert not gpu_request(jobid)

    assert_same_outputs(base / "local" / "results" / "slurm", base / "slurm" / "results" / "slurm")
