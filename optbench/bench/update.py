"""``optbench bench update``: one optimizer step on a flat float32 vector, optbench against
optax and ``torch.optim`` (foreach, and fused where torch offers it), next to the memory
bandwidth measured in the same run.

An update reads and writes whole arrays and computes little, so memory bandwidth is its
physical limit: Adam reads params, grads, m and v and writes params, m and v, 7 float32
arrays or 28 bytes per parameter per step; momentum and RMSprop move 5 (20 bytes). Every
JAX variant is jitted with params and state donated, as a training loop runs it, so that
it updates in place instead of allocating fresh arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax
import pandas as pd

from optbench import optimizers
from optbench.bench.common import Report, bandwidth_probe, interleaved_best

ARRAYS_MOVED = {"adam": 7, "momentum": 5, "rmsprop": 5}  # float32 arrays per parameter
TORCH_OPTIMIZERS: dict[str, Callable[..., Any]] = {
    # the registry's defaults in torch's names (optax's RMSprop decay 0.9 is torch's alpha)
    "adam": lambda torch, p, **kw: torch.optim.Adam(p, lr=1e-3, **kw),
    "momentum": lambda torch, p, **kw: torch.optim.SGD(p, lr=1e-3, momentum=0.9, **kw),
    "rmsprop": lambda torch, p, **kw: torch.optim.RMSprop(p, lr=1e-2, alpha=0.9, **kw),
}
BASELINE = "optbench"


def default_size(device: jax.Device, quick: bool) -> int:
    """1e7 parameters on CPU and 1e8 on an accelerator (1e6 for a quick look)."""
    if quick:
        return 10**6
    return 10**7 if device.platform == "cpu" else 10**8


def jax_step(tx: optax.GradientTransformation, size: int, device: jax.Device
             ) -> Callable[[], None]:
    """A call that performs one jitted, donated step of ``tx`` and waits for it."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    rng = np.random.default_rng(0)
    grads = jax.device_put(rng.standard_normal(size, np.float32), device)
    params = jax.device_put(np.ones(size, np.float32), device)
    carry = [params, tx.init(params)]
    jax.block_until_ready(carry)

    def call() -> None:
        carry[:] = jax.block_until_ready(step(carry[0], carry[1], grads))

    call()  # compile (and warm up) before anything is timed
    return call


def torch_steps(name: str, size: int, device: jax.Device) -> tuple[dict[str, Callable], str]:
    """The torch variants of ``name`` (foreach; fused where torch has it for this device),
    and a note on what was skipped and why."""
    try:
        import torch
    except ImportError:
        return {}, "torch variants skipped: torch is not installed (pip install 'optbench[bench]')"
    where = "cuda" if device.platform == "gpu" else "cpu"
    if where == "cuda" and not torch.cuda.is_available():
        return {}, f"torch variants skipped: torch {torch.__version__} has no CUDA device"
    calls, skipped = {}, []
    for variant in ("foreach", "fused"):
        param = torch.ones(size, dtype=torch.float32, device=where, requires_grad=True)
        param.grad = torch.randn(size, dtype=torch.float32, device=where)
        try:
            opt = TORCH_OPTIMIZERS[name](torch, [param], **{variant: True})
            opt.step()  # warm up (and fail here if fused is not offered)
        except (RuntimeError, TypeError, ValueError) as error:
            skipped.append(f"{variant} ({str(error).splitlines()[0][:80]})")
            continue

        def call(opt=opt) -> None:
            opt.step()
            if where == "cuda":
                torch.cuda.synchronize()

        calls[f"torch {variant}"] = call
    note = f"torch {name} skipped: {'; '.join(skipped)}" if skipped else ""
    return calls, note


LIMIT = "limit: a = b + c"
CONTROL = "optax, 2nd copy"


def bench_update(device: jax.Device, quick: bool = False, repeats: int = 10,
                 size: int | None = None, names: tuple[str, ...] = tuple(ARRAYS_MOVED)
                 ) -> Report:
    """Milliseconds per step and effective GB/s of each variant, as a fraction of the memory
    bandwidth, and each variant's time over optbench's.

    The bandwidth (``a = b + c`` on as many float32 as there are parameters) and a second,
    identical copy of optax's step (an A/A control: its ratio to optax is the noise floor
    of this run) take turns with the variants in the same rounds, so that all of them see
    the same machine."""
    size = size or default_size(device, quick)
    number = min(100, max(3, 10**8 // size))  # ~1e8 parameters' worth per timing, 3..100 steps
    rows, notes = [], []
    with jax.default_device(device):
        for name in names:
            spec = optimizers.get(name)
            calls = {BASELINE: jax_step(spec.transformation(), size, device),
                     "optax": jax_step(spec.optax_counterpart(), size, device),
                     CONTROL: jax_step(spec.optax_counterpart(), size, device)}
            torch_calls, note = torch_steps(name, size, device)
            calls |= torch_calls | {LIMIT: bandwidth_probe(device, size)}
            if note and note not in notes:
                notes.append(note)
            seconds = interleaved_best(calls, repeats, number)
            bandwidth = 3 * 4 * size / seconds[LIMIT]
            for variant, s in seconds.items():
                moved = 3 * 4 * size if variant == LIMIT else ARRAYS_MOVED[name] * 4 * size
                rows.append({"optimizer": name, "variant": variant, "ms/step": s * 1e3,
                             "GB/s": moved / s / 1e9, "of bandwidth": moved / s / bandwidth,
                             "time / optbench's": s / seconds[BASELINE]})
            del calls, torch_calls  # free this optimizer's buffers before the next
    notes.insert(0, f"{size:.0e} float32 parameters; best of {repeats} interleaved rounds of "
                 f"{number} steps. 'of bandwidth': GB/s over that of '{LIMIT}' (12 B/element) "
                 f"in the same rounds. '{CONTROL}' is optax's step again: how far its ratio "
                 "is from optax's is this run's noise. 'time / optbench's' > 1: optbench is "
                 "faster.")
    return Report("update", "one optimizer step on a flat float32 vector",
                  pd.DataFrame(rows), notes, {"parameters": size})
