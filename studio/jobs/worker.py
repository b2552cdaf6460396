"""One process of a distributed training run, as torchrun starts it:
``python -m studio.jobs.worker SPEC_JSON --job ID --home DIR --stop-file PATH``.

Every process trains its share of each batch; the first (rank 0) alone writes events (JSON
lines on stdout, which the job process relays), checkpoints and the version. The others
write nothing to stdout: torchrun joins all their outputs into one.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import traceback

from studio.core.errors import Cancelled, InputError, StudioError
from studio.core.events import Done, Event, Failed
from studio.core.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.jobs.worker")
    parser.add_argument("spec")
    parser.add_argument("--job", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--stop-file", required=True)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    events_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr

    def emit(event: Event) -> None:
        # rank 0 speaks for the run; on another machine its first process says only how
        # that machine's share ended, so its `studio train` can end too
        if rank == 0 or (local_rank == 0 and isinstance(event, Done | Failed)):
            events_out.write(event.to_json() + "\n")
            events_out.flush()
        elif isinstance(event, Failed):  # said nowhere else: the log shows why it ended
            print(f"rank {rank}: {event.error}", file=sys.stderr, flush=True)

    import torch
    import torch.distributed as dist

    from studio.core.training.pipeline import run
    from studio.core.training.spec import TrainSpec, default_threads

    spec = TrainSpec.from_dict(json.loads(args.spec))
    cuda = spec.device.startswith("cuda") or (spec.device == "auto"
                                              and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local_rank)
        spec.device = f"cuda:{local_rank}"
    # the machine's cores shared between its processes
    spec.threads = max(1, default_threads(leave_one_free=False) // local_size)
    dist.init_process_group("nccl" if cuda else "gloo")
    ws = Workspace.open(args.home)
    try:
        result = run(ws, spec, emit, lambda: os.path.exists(args.stop_file),
                     job_id=args.job if rank == 0 else None)
        emit(Done(result))
        return 0
    except Cancelled as exc:
        emit(Failed(str(exc), cancelled=True))
        return 3
    except InputError as exc:
        emit(Failed(str(exc), user_error=True))
        return 2
    except (StudioError, Exception) as exc:
        traceback.print_exc(file=sys.stderr)
        emit(Failed(f"{type(exc).__name__}: {exc}"))
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
