"""Training of :class:`skseg.UNetSegmenter` on several processes with torch
``DistributedDataParallel`` (``n_processes > 1``).

:func:`train_distributed` starts ``n_processes`` processes with
``torch.multiprocessing.spawn`` (gloo on the CPU, NCCL with one GPU per
process), each running :func:`skseg.unet.training.train` on a DDP-wrapped copy
of the network whose batch norms are synchronised (``SyncBatchNorm``, on
GPUs: torch has no CPU kernel for it). Every
step's batch of ``batch_size`` sampled patches is shared out between the
processes, as ``DistributedSampler`` shares out a data set, so the optimiser
takes the same steps on the same number of samples as in one process; the
processes only add their gradients. Rank 0 shows the progress bar, validates
and decides when to stop; its weights and ``history_`` come back to the
calling process.

Scripts that fit with ``n_processes > 1`` must guard their entry point with
``if __name__ == "__main__":``, as any code using spawned processes must.
"""

import os
import socket
import sys
import tempfile

import numpy as np

from .._torch import require

torch = require("torch", "UNetSegmenter(n_processes>1)")


class ProcessGroup:
    """What :func:`skseg.unet.training.train` needs to know of its peers.

    Parameters
    ----------
    rank, world_size : int
        This process and the number of processes.
    sample_seed : int
        Seed of this process's own patch and augmentation draws.
    """

    def __init__(self, rank, world_size, sample_seed):
        self.rank = rank
        self.world_size = world_size
        self.sample_rng = np.random.default_rng(sample_seed)

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, indices):
        """This process's share of one step's batch.

        The batch is padded by repeating its first samples to a multiple of
        the process count, as ``DistributedSampler`` pads, so that every
        process takes every step (a collective waits for all of them).
        """
        size = -(-len(indices) // self.world_size) * self.world_size
        return np.resize(indices, size)[self.rank :: self.world_size]

    def sum(self, *values):
        """Sums of floats over the processes."""
        tensor = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def from_main(self, value):
        """Rank 0's ``value`` (any picklable object), on every process."""
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world_size, port, estimator, train_kwargs, sample_seeds, seed, out):
    """One process: join the group, train its DDP replica, rank 0 saves."""
    from . import training

    cuda = train_kwargs["device"].type == "cuda"
    if cuda:
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        # The processes share the cores rather than each taking all of them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    torch.distributed.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
    )
    try:
        torch.manual_seed(seed)
        # Every process starts from the same weights (the estimator's). Batch
        # norms are synchronised across GPUs; torch's SyncBatchNorm has no CPU
        # kernel, so on the CPU each process normalises its share of the batch
        # and DDP hands rank 0's running statistics to all at every step.
        model = estimator.model_
        if cuda:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device)
        estimator.model_ = model  # validation predicts with the replica
        estimator.device_ = str(device)
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[rank] if cuda else None
        )
        kwargs = dict(train_kwargs, device=device)
        group = ProcessGroup(rank, world_size, sample_seeds[rank])
        epochs_run, best_epoch = training.train(
            ddp, predict_internal=estimator._predict_internal, dist=group, **kwargs
        )
        if group.is_main:
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(
                {
                    "state": state,
                    "history": kwargs["history"],
                    "epochs_run": epochs_run,
                    "best_epoch": best_epoch,
                },
                out,
            )
        # Every process has finished with the group once rank 0 has saved.
        torch.distributed.barrier()
    except BaseException:
        torch.distributed.destroy_process_group()
        raise
    # Leave without tearing the group down or finalising the interpreter:
    # torch 2.13's gloo now and then aborts a process while it destroys its
    # threads ("terminate called without an active exception", SIGABRT on
    # rank 1, twice in CI, once after this barrier), and spawn then reports
    # the whole fit as failed. Exiting frees all the same.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def train_distributed(estimator, n_processes, seed, **train_kwargs):
    """Train ``estimator.model_`` on ``n_processes`` processes.

    Takes the keyword arguments of :func:`skseg.unet.training.train` except
    ``predict_internal`` (the estimator's own) and behaves like it: the model
    is updated in place with rank 0's final weights, ``history`` is rank 0's
    (the entries so far plus this run's), and ``(epochs_run, best_epoch)`` is returned.
    """
    device = train_kwargs["device"]
    if device.type == "cuda" and n_processes > torch.cuda.device_count():
        raise ValueError(
            f"n_processes={n_processes} needs as many GPUs, but "
            f"{torch.cuda.device_count()} are visible"
        )
    rng = train_kwargs["rng"]
    sample_seeds = rng.integers(0, 2**63 - 1, size=n_processes).tolist()
    model = estimator.model_
    estimator.model_ = model.cpu()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.pt")
        torch.multiprocessing.spawn(
            _worker,
            args=(
                n_processes,
                _free_port(),
                estimator,
                train_kwargs,
                sample_seeds,
                seed,
                out,
            ),
            nprocs=n_processes,
            join=True,
        )
        result = torch.load(out, weights_only=False)
    model.load_state_dict(result["state"])
    model.to(device)
    model.eval()
    for key, values in result["history"].items():
        train_kwargs["history"][key][:] = values
    return result["epochs_run"], result["best_epoch"]
