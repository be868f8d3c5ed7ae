"""Shared fixtures: the repository root, tiny analysis configs, a user simulator module,
and one reference run of the tiny workflow that several tests compare against and read."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from sbi_core.config import validate_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

TINY_TRAINING = {
    "flow": "zuko_maf",  # the faster flow: NPE's default NSF trains 1.5-4x slower (tests/test_estimators.py checks it)
    "hidden_features": 16,
    "num_transforms": 2,
    "batch_size": 100,
    "max_epochs": 5,
    "patience": 3,
    "num_atoms": 10,  # NRE-B's default 50 needs 500 simulations; the tiny runs simulate 400
}


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module of small networks and small batches (as every workflow
    job runs): on a 2-core machine shared with other processes, torch's two-thread pool spins and
    waits more than it computes (test_ratio's trained network: 7 s on one thread, 55-90 s on two)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_analysis() -> dict:
    """A gaussian_linear analysis with tiny budgets (defaults not yet filled in)."""
    return {
        "task": "gaussian_linear",
        "seed": 3,
        "simulations": {"train": 500, "test": 20, "shards": 2},
        "methods": ["npe"],
        "observations": [{"name": "o1", "theta": [0.1] * 10}],
        "training": dict(TINY_TRAINING),
        "sampling": {"num_samples": 50, "num_chains": 4, "warmup_steps": 10},
        "diagnostics": {"num_simulations": 20, "num_samples": 20, "c2st_num_samples": 50},
    }


def validated(analysis: dict, name: str = "demo") -> dict:
    """Validates one analysis as a whole config and returns it with defaults filled in."""
    config = {"analyses": {name: copy.deepcopy(analysis)}}
    return validate_config(config, SCHEMA)["analyses"][name]


@pytest.fixture
def user_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user module `usersim` on sys.path: a 2-d shifted-Gaussian simulator whose
    x is NaN whenever theta_1 > 0.8 (about 10% of a U(-1, 1) prior)."""
    module = tmp_path / "usersim.py"
    module.write_text(
        textwrap.dedent(
            """
            import torch

            def simulate(theta):
                x = theta + 0.1 * torch.randn_like(theta)
                x[theta[:, 0] > 0.8] = float("nan")
                return x

            def broken(theta):
                raise RuntimeError("detector offline")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "usersim:simulate"


SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# One torch thread per job in every run that is compared number for number, so
# that sums are taken in the same order on any core count and under SLURM.
SAME_THREADS = ("--max-threads", "1")
TINY_WORKFLOW = "tiny"
TINY_WORKFLOW_CONFIG = {
    "targets": [TINY_WORKFLOW],
    "analyses": {
        TINY_WORKFLOW: {
            "task": "gaussian_linear",
            "seed": 5,
            "simulations": {"train": 400, "test": 20},
            "methods": ["npe", "nre"],
            "observations": [{"name": "o1", "theta": [0.1] * 10}],
            "training": TINY_TRAINING,
            "sampling": {"num_samples": 50, "num_chains": 10, "warmup_steps": 20},
            # no predictive checks: test_workflow covers them; fewer jobs in the four runs of this config
            "diagnostics": {"num_simulations": 20, "num_samples": 20, "c2st_num_samples": 50,
                            "ppc_num_simulations": 0},
        }
    },
}


def snakemake_command(folder: Path, *options: str, config: dict = TINY_WORKFLOW_CONFIG,
                      seconds: int = 600) -> list[str]:
    """Runs `config` (default: the tiny workflow's; written into `folder`) with `options`,
    for at most `seconds`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return ["timeout", "-k", "30", str(seconds), *SNAKEMAKE, "--directory", str(folder),
            "--configfile", str(folder / "config.yaml"), *options]


def workflow_env() -> dict[str, str]:
    """The environment of a workflow run: this venv first on PATH, one BLAS thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "USER": os.environ.get("USER", "root"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def user_env(folder: Path) -> dict[str, str]:
    """A user's bare environment in `folder`: the user's modules (`usersim`) on PYTHONPATH, this
    venv's scripts on PATH, HOME in `folder`, one BLAS thread, nothing else of the test's but the
    machine's OpenBLAS settings.

    Those stay because they are the machine's, not the test's: `OPENBLAS_CORETYPE` picks the BLAS
    kernels, and another kernel changes the last bits of a matrix product (SBC's exact KS p-values
    go through matrix powers), so runs compared bit for bit must share it.
    """
    blas = {key: value for key, value in os.environ.items() if key.startswith("OPENBLAS_")}
    return {"PYTHONPATH": str(folder), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(folder), "OMP_NUM_THREADS": "1", **blas}


USER_SIMULATOR = '''
import torch

def simulate(theta):
    """A resonance measured in 3 bins; x is NaN when theta_1 > 0.8 (about 10% of the prior)."""
    centres = torch.tensor([-0.5, 0.0, 0.5])
    shape = torch.exp(-0.5 * ((centres - theta[:, :1]) / (0.3 + 0.2 * (theta[:, 1:2] + 1))) ** 2)
    x = shape + 0.05 * torch.randn(len(theta), 3)
    x[theta[:, 0] > 0.8] = float("nan")
    return x
'''

SMALL = {
    "training": TINY_TRAINING,
    "sampling": {"num_samples": 100, "num_chains": 4, "warmup_steps": 20},
    "diagnostics": {"num_simulations": 20, "num_samples": 20, "c2st_num_samples": 100, "ppc_num_simulations": 30},
}


def user_analyses(folder: Path) -> dict:
    """Three analyses that tests/test_workflow.py checks artifact by artifact (their files
    written into `folder`): a user simulator by import path with NaN rows, an observation file
    and NRE-C; a HistFactory workspace with NPE, NRE (ensembles of two) and limits; user simulations from files with
    an observation file and a reference file. NLE's, NRE-A's and BNRE's steps run in process in
    tests/test_pipeline.py."""
    (folder / "usersim.py").write_text(USER_SIMULATOR)
    rng = np.random.default_rng(0)
    np.save(folder / "x_o.npy", np.array([0.2, 0.9, 0.4], dtype=np.float32))
    np.savetxt(folder / "x_o.csv", np.array([[0.1, -0.2]]), delimiter=",")
    np.savetxt(folder / "reference.csv", rng.normal([0.05, -0.1], 0.2**0.5 / 2, size=(200, 2)), delimiter=",")
    for split, n in (("train", 600), ("test", 30)):
        theta = rng.normal(0, 0.1**0.5, size=(n, 2))
        np.savez(folder / f"{split}.npz", theta=theta, x=theta + rng.normal(0, 0.1**0.5, size=(n, 2)))
    return {
        "user_sim": {
            "task": "custom",
            "simulator": "usersim:simulate",
            "prior": {"type": "box_uniform", "low": [-1, -1], "high": [1, 1]},
            "parameter_names": ["peak", "width"],
            "seed": 2,
            "simulations": {"train": 600, "test": 20, "shards": 2, "max_invalid_fraction": 0.2},
            "methods": ["nre_c"],  # NRE-A and BNRE: every step in process in tests/test_pipeline.py
            "observations": [{"name": "data", "file": "x_o.npy"}],
            **SMALL,
        },
        "tiny_hf": {
            "task": "histfactory",
            "histfactory": {"workspace": str(REPO / "config/workspaces/simple.json")},
            "seed": 4,
            "simulations": {"train": 600, "test": 20},
            "methods": ["npe", "nre"],
            "observations": [{"name": "observed", "from_workspace": True}],
            "upper_limit": {"scan": [0.0, 5.0, 11]},
            **SMALL,
            # Ensembles of two: NPE's mixture posterior, NRE's normalised members and their limits.
            "training": {**TINY_TRAINING, "ensemble_members": 2},
        },
        "user_files": {
            "task": "custom",
            "prior": {"type": "gaussian", "mean": [0, 0], "std": [0.1**0.5, 0.1**0.5]},
            "simulations": {"train": "train.npz", "test": "test.npz"},
            "methods": ["npe"],
            "observations": [{"name": "data", "file": "x_o.csv", "reference_samples": "reference.csv"}],
            **SMALL,
        },
    }


def snakemake_in(folder: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    """Runs `folder`/config.yaml in `folder` on two cores with `args`, capturing the output."""
    return subprocess.run([*SNAKEMAKE, "--directory", str(folder), "--configfile", str(folder / "config.yaml"),
                           "--cores", "2", *args], capture_output=True, text=True, timeout=timeout)


def run_tiny_workflow(folder: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(folder, *options), capture_output=True, text=True,
                          env=workflow_env(), cwd=folder)


def imports_sympy(code: str) -> bool:
    """Whether running `code` in a fresh Python process imports sympy, which torch.broadcast_shapes
    pulls in on its first call (0.3-0.45 s of a job's start-up)."""
    probe = textwrap.dedent(code) + '\nimport sys\nprint("sympy" in sys.modules)\n'
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.strip() == "True"


def summary_numbers(summary: dict) -> dict:
    """Everything in a summary.json but timings and provenance: what must reproduce exactly."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "seconds" not in k and k != "provenance"}
        return value
    return strip(summary)


@pytest.fixture(scope="session")
def tiny_reference_run(tmp_path_factory) -> Path:
    """The tiny workflow run once, locally, uninterrupted, in a user's bare environment:
    results/<TINY_WORKFLOW>/ inside, and beside it results/ of the three `user_analyses`.

    One Snakemake invocation builds all four analyses, so that the workflow starts up and
    checks its config once and two jobs run at a time to the end. TINY_WORKFLOW's block is
    the same as in TINY_WORKFLOW_CONFIG (what the killed-and-resumed and SLURM runs build),
    and every step's seed and config hash come from that block alone. Tests that change
    files work on a copy.
    """
    folder = tmp_path_factory.mktemp("reference-run")
    config = {"analyses": {**TINY_WORKFLOW_CONFIG["analyses"], **user_analyses(folder)}}
    result = subprocess.run(snakemake_command(folder, "--cores", "2", *SAME_THREADS, config=config, seconds=1500),
                            capture_output=True, text=True, env=user_env(folder), cwd=folder)
    assert result.returncode == 0, result.stderr[-5000:]
    return folder


# ---------------------------------------------------------------------- two workers (pytest-xdist)

# The modules whose tests read the session's tiny reference run: one worker runs them all (the
# run is built once), first, as the longest unit; then the modules with the costliest fixtures.
REFERENCE_RUN_MODULES = ("test_reproducibility", "test_reruns", "test_slurm", "test_workflow")
COSTLY_MODULES = ("test_unfolding_workflow", "test_design", "test_unfolding", "test_design_workflow")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs two workers, one per core), each worker computes on one
    thread, torch's and the BLAS's of every process it starts: two workers with two threads each
    would spin on two cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def _module(nodeid: str) -> str:
    return Path(nodeid.split("::", 1)[0]).stem


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs the reference run's modules first and the costly ones next (the scheduler keeps this
    order); refuses a test that reads the reference run from a module not in REFERENCE_RUN_MODULES,
    which a second worker would build again."""
    for item in items:
        if "tiny_reference_run" in item.fixturenames and _module(item.nodeid) not in REFERENCE_RUN_MODULES:
            raise pytest.UsageError(f"{item.nodeid} reads tiny_reference_run: add its module to REFERENCE_RUN_MODULES")
    first = REFERENCE_RUN_MODULES + COSTLY_MODULES
    items.sort(key=lambda item: first.index(_module(item.nodeid)) if _module(item.nodeid) in first else len(first))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Whole modules per worker (each module's fixtures built once), the reference run's modules as
    one unit, in collection order (pytest-xdist 3.8's `loadgroup` marks do not group under pytest 9)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return "reference_run" if module in REFERENCE_RUN_MODULES else module

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)


# ---------------------------------------------------------------------- the test SLURM cluster

CLUSTER_SCRIPTS = REPO / "tests" / "cluster"
SLURM_STATE = "SBI_CORE_TEST_SLURM_STATE"  # the session's cluster folder (PIDs, logs), set by pytest_sessionstart


def can_start_slurm() -> bool:
    """Starting the test cluster needs root and apt-get (as in CI)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def start_slurm(state: Path) -> subprocess.CompletedProcess:
    """Installs (where needed) and starts the single-node cluster; its daemons' PIDs go to `state`."""
    return subprocess.run(["bash", str(CLUSTER_SCRIPTS / "start-single-node.sh")], env={**os.environ, "STATE": str(state)},
                          capture_output=True, text=True)


def stop_slurm(state: Path) -> None:
    subprocess.run(["bash", str(CLUSTER_SCRIPTS / "stop-single-node.sh")], env={**os.environ, "STATE": str(state)},
                   capture_output=True)


def slurm_is_up(state: Path) -> bool:
    """Whether the daemons that start_slurm recorded in `state` are running."""
    pids = [state / f"{daemon}.pid" for daemon in ("munged", "slurmctld", "slurmd")]
    return all(path.is_file() and Path(f"/proc/{path.read_text().strip()}").exists() for path in pids)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist starts its workers, which inherit SLURM_STATE
def pytest_sessionstart(session: pytest.Session) -> None:
    """One test cluster per session, stopped when the whole session ends (the main process's).

    Once Debian's SLURM client is installed, Snakemake's SLURM plugin asks `scontrol show config` for
    MinJobAge at every start-up, dry runs included, and with no controller answering that call waits
    9 s (measured), in each of the suite's Snakemake invocations. So where SLURM is installed (a first
    `make test` installs it) the cluster starts here (5 s); where it is not, test_slurm installs and
    starts it, and it stays up until every worker is done rather than until that worker is."""
    if os.environ.get("PYTEST_XDIST_WORKER") or SLURM_STATE in os.environ or not can_start_slurm():
        return
    state = Path(tempfile.mkdtemp(prefix="sbi-core-slurm-"))
    os.environ[SLURM_STATE] = str(state)
    session.config.stash[_SESSION_SLURM] = state
    if shutil.which("slurmctld"):
        start_slurm(state)  # if it fails, test_slurm starts it again and says why


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_SESSION_SLURM, None)
    if state is not None:
        stop_slurm(state)
        os.environ.pop(SLURM_STATE, None)
        shutil.rmtree(state, ignore_errors=True)


_SESSION_SLURM = pytest.StashKey[Path]()


# ---------------------------------------------------------------------- device (as zuko's tests do)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", default="cpu",
        help="torch device of the tests that take the `device` fixture, e.g. cuda (default: cpu)",
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """The `--device` option: the same tests run on `cuda` where a GPU is (skipped where none is)."""
    import torch

    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"--device {name}: this machine has no CUDA device")
    return name
