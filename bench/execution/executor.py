"""Executors: run grid cells locally (process pool), on Ray, or on Slurm (submitit).

Whatever the executor, a cell is the same pure function, `execute_cell`: (cell spec) -> record in
the results directory (a shared filesystem on clusters). It skips finished cells, claims the cell
atomically (bench.execution.claims) so that two runners never run it at the same time, runs it with one
torch thread, saves the record atomically and appends a line to `<out>/executions.log`.
"""
from __future__ import annotations

import importlib
import math
import multiprocessing
import os
import signal
import sys
import time
from contextlib import contextmanager
from multiprocessing.connection import wait

import torch
from tqdm import tqdm

from bench import REPO_ROOT
from bench.evaluation.cell import record_header, run_cell
from bench.evaluation.checkpoint import PREEMPTED_EXIT, CheckpointPolicy, Preempted, request_stop
from bench.evaluation.checkpoint import remove as remove_checkpoint
from bench.evaluation.device import prefers_gpu
from bench.evaluation.kept_models import ModelKeeper
from bench.execution import CommonOptions, Keeping, Terminated, get_executor
from bench.execution.claims import claim_path, release_if_owned_by, try_claim
from bench.execution.reaper import start_reaper
from bench.execution.reaper import stop as stop_reaper
from bench.execution.store import ResultStore
from bench.planning.code_digest import CodeChanged, check_unchanged
from bench.planning.grid import Cell
from methods.core.user_methods import ENV_VAR as USER_METHODS_VARIABLE


def execute_cell(cell: Cell, root: str, data_dir=None, device: str = "auto", training_step: str = "auto",
                 keeping: Keeping | None = None) -> dict:
    """Run one cell unless it is done or claimed by a live worker; returns its outcome.
    `device` is resolved here, in the worker (bench.evaluation.device); `training_step` is how a
    training step runs (methods/core/training_step.py); `keeping`: its checkpoints and model. A
    cell stopped by SIGTERM leaves its checkpoint and no record: outcome 'preempted'."""
    torch.set_num_threads(1)
    keeping = keeping or Keeping()
    try:   # before anything is claimed: the grid's later cells must not run other code silently
        check_unchanged(keeping.code_digest)
    except CodeChanged as err:
        return {"status": "failed", "error": str(err)}
    store = ResultStore(root)
    if store.is_done(cell):
        return {"status": "done", "skipped": True}
    claim = try_claim(store.root, store.path(cell).stem)
    if claim is None:
        return {"status": "running elsewhere", "skipped": True}
    with claim:
        if store.is_done(cell):   # finished by another runner between our check and our claim
            return {"status": "done", "skipped": True}
        store.log_execution(cell)
        policy = checkpoint_policy(store, cell, keeping)
        kept = ModelKeeper(store.model_path(cell), cell) if keeping.keep_models else None
        try:
            record = run_cell(cell, data_dir, store.artifact_dir(cell), device, training_step, checkpoint=policy,
                              on_trained=kept)
        except Preempted as stop:
            store.log_execution(cell, "preempted")
            return {"status": "preempted", "error": str(stop)}
        try:
            store.save(cell, record)
        except OSError as err:   # e.g. a full disk: no record is left, the next run reruns the cell
            return {"status": "failed", "error": f"its record could not be written: {err}"}
        store.log_execution(cell, "saved")
        if record.status == "done":
            remove_checkpoint(policy)
    return {"status": record.status, "error": record.error}


def checkpoint_policy(store: ResultStore, cell: Cell, keeping: Keeping) -> CheckpointPolicy | None:
    """Where the cell's checkpoint lives (DIR/checkpoints/<record name>.pt) and how often it is
    written; None when checkpoints are off (`--checkpoint-minutes none`)."""
    if keeping.checkpoint_minutes is None:
        return None
    return CheckpointPolicy(store.checkpoint_path(cell), every_seconds=keeping.checkpoint_minutes * 60 or float("inf"),
                            keep=keeping.keep_checkpoints, **({"code": keeping.code_digest} if keeping.code_digest else {}))


def _failed(err: BaseException) -> dict:
    return {"status": "failed", "error": f"{type(err).__name__}: {err}"}


def may_use_cuda(device: str, profile_names) -> bool:
    """Whether cells run with `device` could initialise CUDA (then workers must not be forked)."""
    return device.startswith("cuda") or (device == "auto" and any(prefers_gpu(p) for p in profile_names))


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the runner that started it dies (kill -9 of the runner
    stops its whole grid; the dead workers' claims are then taken over at once by the next run)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _cell_process(cell: Cell, root: str, data_dir, device: str, training_step: str, keeping: Keeping,
                  parent: int, conn) -> None:
    # Ctrl-C reaches every process of the terminal's group: the runner handles it (it kills its
    # workers and says how to resume); a worker printing its own KeyboardInterrupt would only add
    # a traceback per cell
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (a scheduler's preemption, or the runner passing its own on): checkpoint at the next
    # incoming-batch boundary, then stop (bench/evaluation/checkpoint.py)
    signal.signal(signal.SIGTERM, request_stop)
    die_with_parent()
    if os.getppid() != parent:   # the runner died before the line above took effect
        os._exit(1)
    torch.set_num_threads(1)
    outcome = execute_cell(cell, root, data_dir, device, training_step, keeping)
    conn.send(outcome)
    conn.close()
    if outcome["status"] == "preempted":
        os._exit(PREEMPTED_EXIT)


def received(conn):
    """The worker's outcome, or None if it died before sending one (EOF on the pipe)."""
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


def worker_death(exitcode: int) -> str:
    """'killed by signal SIGKILL (...)' / 'exited with status 1' for a worker that sent no outcome."""
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = {"SIGKILL": " (out of memory, or killed)", "SIGSEGV": " (a crash in native code)"}.get(name, "")
        return f"the worker process was killed by signal {name}{hint}"
    return f"the worker process exited with status {exitcode} without a result"


def record_worker_death(cell: Cell, store: ResultStore, pid: int, reason: str, code: str | None = None) -> dict:
    """A failed record for a cell whose worker died (unless the cell got a record meanwhile), and
    the dead worker's claim removed, so the grid goes on and a rerun retries the cell."""
    release_if_owned_by(claim_path(store.root, store.path(cell).stem), pid)
    if store.is_done(cell):
        return {"status": "done"}
    store.save(cell, {**record_header(cell, code), "status": "failed", "error": reason,
                      "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return {"status": "failed", "error": reason}


def cell_wants_gpu(cell: Cell, device: str) -> bool:
    """Whether the cell runs on a GPU when one is there: `--device cuda[:N]`, or auto for a GPU
    profile."""
    return device.startswith("cuda") or (device == "auto" and prefers_gpu(cell.profile.name))


def gpu_slots(device: str, gpus: int, workers: int, cells_per_gpu: int | None) -> list[str]:
    """The devices GPU cells are started on, one entry per cell that may run at once: each of the
    `gpus` visible GPUs (or the one `--device cuda:N` names) `cells_per_gpu` times; without a
    number, the `workers` spread evenly over them. Empty when there is no GPU (auto cells then
    run on the CPU; an explicit cuda device fails in its worker with the reason)."""
    if gpus == 0 or device == "cpu":
        return []
    indices = [int(device.split(":", 1)[1])] if device.startswith("cuda:") else list(range(gpus))
    per_gpu = cells_per_gpu if cells_per_gpu is not None else max(1, math.ceil(workers / len(indices)))
    return [f"cuda:{i}" for _ in range(per_gpu) for i in indices]


def worker_start_method(device: str, cells) -> str:
    """Forked workers share the loaded streams; CUDA cannot be initialised in a forked child."""
    return "spawn" if may_use_cuda(device, {c.profile.name for c in cells}) else "fork"


def visible_gpus() -> int:
    """GPUs this process can see, without creating a CUDA context (workers are spawned anyway)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_local(cells, store: ResultStore, common: CommonOptions, own, bar) -> dict[str, dict]:
    """In-process for one worker, else one process per cell, at most `workers` at a time: forked
    (they share the loaded streams), or spawned when cells may use CUDA, which cannot be
    initialised in a forked child. GPU cells are packed `cells_per_gpu` per GPU, each started on
    an explicit `cuda:i` (`gpu_slots`). A worker killed by the kernel (out of memory, a segfault)
    fails its cell with the signal's name; the others go on."""
    workers, data_dir, device = common.workers, common.data_dir, common.device
    training_step, cells_per_gpu = common.training_step, common.cells_per_gpu
    outcomes = {}
    slots = gpu_slots(device, visible_gpus(), workers, cells_per_gpu) if may_use_cuda(
        device, {c.profile.name for c in cells}) else []

    def place(cell: Cell, free: list[str]) -> tuple[str, bool] | None:
        """(device, whether it takes a GPU slot) to start `cell` on now; None: wait for a slot."""
        if not slots or not cell_wants_gpu(cell, device):
            return device, False
        return (free.pop(0), True) if free else None

    if workers <= 1 or len(cells) <= 1:
        for cell in cells:
            with sigterm_checkpoints():   # in this process: SIGTERM checkpoints the cell, then stops the grid
                outcomes[cell.key] = execute_cell(cell, str(store.root), data_dir, place(cell, list(slots))[0],
                                                  training_step, common.keeping)
            bar.update()
            if outcomes[cell.key]["status"] == "preempted":
                raise Terminated()   # the cell in this process was preempted: the grid stops as on SIGTERM
        return outcomes
    context = multiprocessing.get_context(worker_start_method(device, cells))
    queue, running, free = list(cells), {}, list(slots)
    try:
        while queue or running:
            while len(running) < workers:
                startable = next(((i, p) for i, c in enumerate(queue) if (p := place(c, free)) is not None), None)
                if startable is None:
                    break
                index, (where, slot) = startable
                cell = queue.pop(index)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_cell_process, daemon=True,
                                          args=(cell, str(store.root), data_dir, where, training_step, common.keeping,
                                                os.getpid(), send))
                process.start()
                send.close()
                running[process.sentinel] = (process, cell, receive, where if slot else None)
            for sentinel in wait(list(running)):
                process, cell, receive, slot = running.pop(sentinel)
                outcome = received(receive)
                process.join()
                receive.close()
                if slot is not None:   # its GPU slot is free again
                    free.append(slot)
                if outcome is None:
                    outcome = record_worker_death(cell, store, process.pid, worker_death(process.exitcode),
                                                  common.keeping.code_digest)
                outcomes[cell.key] = outcome
                bar.update()
    finally:
        stop_workers(running.values(), store)
    return outcomes


@contextmanager
def sigterm_checkpoints():
    """While a cell runs in this process, SIGTERM asks it to checkpoint and stop (instead of the
    runner's own handler, which stops at once); not possible off the main thread: unchanged."""
    try:
        previous = signal.signal(signal.SIGTERM, request_stop)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


STOP_GRACE_SECONDS = 60   # how long the workers of a stopped runner get to write their checkpoints


def stop_workers(running, store: ResultStore) -> None:
    """The runner stops (Ctrl-C, SIGTERM): its workers get SIGTERM, checkpoint at their next
    incoming-batch boundary and exit; any still running after STOP_GRACE_SECONDS is killed (its
    last checkpoint, at most `--checkpoint-minutes` old, stands). Their claims are released."""
    running = list(running)
    for process, _, _, _ in running:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process, cell, _, _ in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
        release_if_owned_by(claim_path(store.root, store.path(cell).stem), process.pid)


def _optional(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError:
        raise RuntimeError(f"the {extra} executor needs {module}: pip install '.[{extra}]'") from None


def default_gpus_per_cell(device: str, profile_names, gpus_available: bool) -> float:
    """GPUs to request per cell when the user gave no number: 1 for `--device cuda`, and for
    `auto` with a GPU profile where the cluster has GPUs; else 0 (a CPU cell)."""
    wanted = device.startswith("cuda") or gpus_available
    return 1 if wanted and may_use_cuda(device, profile_names) else 0


def ray_gpus_per_cell(gpus_per_cell: float | None, cells_per_gpu: int | None, device: str, profile_names,
                      gpus_available: bool) -> float:
    """The GPUs a Ray task asks for: `--gpus-per-cell` if given; else 1/N with `--cells-per-gpu
    N` for GPU cells (Ray then packs N on a GPU), 1 without it, 0 for CPU cells."""
    if gpus_per_cell is not None:
        return gpus_per_cell
    wanted = default_gpus_per_cell(device, profile_names, gpus_available)
    return wanted / cells_per_gpu if wanted and cells_per_gpu else wanted


def run_ray(cells, store: ResultStore, common: CommonOptions, own, bar, cpus_per_cell: float = 1) -> dict[str, dict]:
    """One Ray task per cell; joins `own.address` if given, else starts a local Ray with `workers`
    CPUs. Each task asks for `cpus_per_cell` CPUs and `own.gpus_per_cell` GPUs (fractions share a
    GPU: `cells_per_gpu` N asks for 1/N); Ray hides the GPUs a task did not ask for, so `auto`
    then runs it on the CPU."""
    workers, data_dir, device = common.workers, common.data_dir, common.device
    training_step, cells_per_gpu = common.training_step, common.cells_per_gpu
    address, gpus_per_cell = own.address, own.gpus_per_cell
    ray = _optional("ray", "ray")
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}}
    if os.environ.get(USER_METHODS_VARIABLE):   # users' methods (--import), loaded by the workers on demand
        env["env_vars"][USER_METHODS_VARIABLE] = os.environ[USER_METHODS_VARIABLE]
    # a local Ray's processes outlive a runner killed by SIGKILL: a watchdog ends them then
    reaper = start_reaper() if address is None else None
    ray.init(address=address, num_cpus=None if address else workers, runtime_env=env,
             include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        gpus_per_cell = ray_gpus_per_cell(gpus_per_cell, cells_per_gpu, device, {c.profile.name for c in cells},
                                          ray.cluster_resources().get("GPU", 0) > 0)
        # a task whose worker dies (a spot machine taken back) is retried, resuming from its checkpoint
        task = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=RETRIES)(execute_cell)
        pending = {task.remote(c, str(store.root), data_dir, device, training_step, common.keeping): c for c in cells}
        outcomes = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(done[0])
            try:
                outcomes[cell.key] = ray.get(done[0])
            except Exception as err:  # noqa: BLE001 - a worker died: the cell can be rerun
                outcomes[cell.key] = _failed(err)
            bar.update()
        return outcomes
    finally:
        if address is None:
            ray.shutdown()
            stop_reaper(reaper)


def run_slurm(cells, store: ResultStore, common: CommonOptions, own, bar, poll_seconds: float = 2.0) -> dict[str, dict]:
    """A Slurm job array, one task per cell (submitit); `cluster="local"` runs them locally.
    Without a GPU count, a job asks for one GPU when the cells are GPU work (`--device cuda`, or
    `auto` with the paper profile), else none. A job holds one cell: no packing."""
    data_dir, device, training_step = common.data_dir, common.device, common.training_step
    partition, time_minutes, gpus_per_cell, cluster = own.partition, own.time_minutes, own.gpus_per_cell, own.cluster
    submitit = _optional("submitit", "slurm")
    executor = submitit.AutoExecutor(folder=str(store.root / "slurm" / "%j"), cluster=cluster)
    if gpus_per_cell is None:
        gpus_per_cell = default_gpus_per_cell(device, {c.profile.name for c in cells}, gpus_available=True)
    params = {"timeout_min": time_minutes, "cpus_per_task": 1, "gpus_per_node": math.ceil(gpus_per_cell)}
    if partition:
        params["slurm_partition"] = partition
    executor.update_parameters(**params)
    # a preempted or timed-out job is requeued by submitit (CellJob.checkpoint) and resumes from its
    # cell's checkpoint
    jobs = executor.map_array(CellJob(), cells, [str(store.root)] * len(cells), [data_dir] * len(cells),
                              [device] * len(cells), [training_step] * len(cells), [common.keeping] * len(cells))
    outcomes, waiting = {}, dict(zip(jobs, cells))
    while waiting:
        for job in [j for j in waiting if j.done()]:
            cell = waiting.pop(job)
            try:
                outcomes[cell.key] = job.result()
            except Exception as err:  # noqa: BLE001
                outcomes[cell.key] = _failed(err)
            bar.update()
        if waiting:
            time.sleep(poll_seconds)
    return outcomes


RETRIES = 3   # Ray: times a cell's task is retried after its worker died


class CellJob:
    """execute_cell as a submitit job that is requeued when Slurm preempts it or its time runs out
    (submitit calls `checkpoint`, then requeues the job with the same arguments): the cell's own
    checkpoint, written on the SIGTERM that precedes, makes the requeued job resume it."""

    def __call__(self, *args):
        signal.signal(signal.SIGTERM, request_stop)   # Slurm's preemption signal: checkpoint, then stop
        return execute_cell(*args)

    def checkpoint(self, *args):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args)


def run_cells(cells: list[Cell], store: ResultStore, executor: str = "local", common: CommonOptions | None = None,
              own=None, progress: bool = True) -> dict[str, dict]:
    """Run `cells` on the registered `executor` (bench/execution/__init__.py) with the `common`
    options (workers, the device each worker resolves, the training step, GPU packing) and the
    executor's `own` settings (its defaults when None); returns {cell key: outcome} for each one."""
    spec = get_executor(executor)
    module, _, function = spec.run.partition(":")
    run = getattr(importlib.import_module(module), function)
    bar = tqdm(total=len(cells), desc=f"cells ({executor})", unit="cell", file=sys.stderr,
               disable=not progress)
    try:
        return run(cells, store, common or CommonOptions(), own if own is not None else spec.make_options(), bar)
    finally:
        bar.close()
