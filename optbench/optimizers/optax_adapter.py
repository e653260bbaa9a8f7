"""optax's optimizers as pure rules whose hyperparameters are data.

Two uses: the reference runs (:func:`optax_pure`: optax's implementation of a built-in, for
``optbench run --reference optax``), and any optax optimizer or user factory in a sweep
(:func:`factory_spec`: ``[optimizers.ams] optax = "amsgrad"`` or
``optimizer = "mypkg.opt:myfactory"``). A factory runs through ``optax.inject_hyperparams``,
so its numeric hyperparameters are data and a whole learning-rate grid shares one compiled
program, as for the built-ins.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp
import optax

from optbench.errors import OptbenchError
from optbench.optimizers.base import OptimizerSpec, PureOptimizer, Range

OPTAX_PREFIX = "optax:"  # ``optax = "adam"`` is ``optimizer = "optax:adam"``
ANY_NUMBER = Range(-math.inf)  # a factory's hyperparameters are checked by the factory

Options = tuple[tuple[str, Any], ...]  # fixed (compiled-in) arguments, sorted by name


class FactoryError(OptbenchError, ValueError):
    """A factory path that does not import, or does not build an optax optimizer; or an
    argument it does not take. ``str()`` is one line naming the factory."""


def optax_pure(spec: OptimizerSpec) -> PureOptimizer:
    """optax's implementation of ``spec`` as a pure pair with hyperparameters as data: the
    optax factory is called inside the traced function, so its hyperparameters may be
    traced arrays too (used to re-run sweeps with optax as the reference)."""

    def init(params, hparams=spec.defaults):
        return spec.optax_factory(**hparams).init(params)

    def update(grads, state, params, hparams):
        return spec.optax_factory(**hparams).update(grads, state, params)

    return PureOptimizer(init, update)


@functools.cache
def optax_names() -> tuple[str, ...]:
    """The optimizers optax exports at top level (the factories of ``optax._src.alias``)."""
    return tuple(sorted(
        name for name in dir(optax) if not name.startswith("_")
        and getattr(getattr(optax, name), "__module__", None) == "optax._src.alias"
        and inspect.isfunction(getattr(optax, name))))


def is_factory_path(name: str) -> bool:
    """Whether ``name`` names a factory (``module:function``) rather than a registry entry."""
    return ":" in name


@functools.cache
def load_factory(path: str) -> Callable[..., optax.GradientTransformation]:
    """The callable at ``module:qualname`` (``optax:adam`` is ``optax.adam``)."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise FactoryError(f"{path!r} is not of the form 'module:function'")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        if module_name == "optax":
            close = difflib.get_close_matches(qualname, optax_names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise FactoryError(f"optax has no optimizer {qualname!r}{hint}") from None
        raise FactoryError(f"cannot import {path!r}: {error}") from None
    if not callable(found):
        raise FactoryError(f"{path!r} is a {type(found).__name__}, not a factory function")
    return found


def parameters(path: str) -> Mapping[str, inspect.Parameter]:
    """The keyword arguments of the factory at ``path``, in order."""
    factory = load_factory(path)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        raise FactoryError(f"{path}: its signature cannot be read") from None
    return MappingProxyType({
        name: p for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)})


def is_option(parameter: inspect.Parameter) -> bool:
    """Whether an argument is fixed at compile time rather than data: flags, and integers
    (often sizes, e.g. a memory length), as ``optax.inject_hyperparams`` needs."""
    return isinstance(parameter.default, bool | int) and not isinstance(parameter.default,
                                                                          float)


def float_defaults(path: str) -> Mapping[str, float]:
    """The factory's hyperparameters that default to a float (those it runs as data)."""
    return MappingProxyType({name: p.default for name, p in parameters(path).items()
                             if isinstance(p.default, float)})


def required(path: str) -> tuple[str, ...]:
    """The factory's arguments without a default (e.g. ``learning_rate`` of optax's)."""
    return tuple(name for name, p in parameters(path).items() if p.default is p.empty)


def _label(path: str, options: Options) -> str:
    fixed = ", ".join(f"{k}={v!r}" for k, v in options)
    return f"{path}({fixed})" if options else path


@functools.cache
def factory_spec(path: str, options: Options = ()) -> OptimizerSpec:
    """The factory at ``path`` with ``options`` fixed, as a registry-like spec whose pure
    rule takes any of the factory's numeric arguments as data: ``init(params, hparams)``
    builds ``optax.inject_hyperparams(factory)(**options, **hparams)``, whose state carries
    the hyperparameters; ``update`` sets them to the values it is given. The same object for
    equal arguments, so sweeps of the same factory share compiled programs."""
    factory = load_factory(path)
    static = {name for name, _ in options} | {
        name for name, p in parameters(path).items() if is_option(p)}
    injected = optax.inject_hyperparams(factory, static_args=static)

    def init(params, hparams=MappingProxyType({})):
        return injected(**dict(options), **hparams).init(params)

    def update(grads, state, params, hparams):
        # the state carries the hyperparameters; this step's values (a learning rate may
        # change with the step, see schedule.decayed) replace them, in the state's dtypes
        given = {k: jnp.asarray(v, state.hyperparams[k].dtype)
                 for k, v in hparams.items() if k in state.hyperparams}
        state = state._replace(hyperparams={**state.hyperparams, **given})
        fill = dict.fromkeys(state.hyperparams, 0.0)  # binds the wrapper's signature only
        return injected(**dict(options), **fill).update(grads, state, params)

    defaults = float_defaults(path)
    doc = inspect.getdoc(factory) or ""
    return OptimizerSpec(
        name=_label(path, options),
        summary=doc.splitlines()[0] if doc else path,
        rule=functools.cache(lambda: PureOptimizer(init, update)),
        defaults=defaults,
        ranges={name: ANY_NUMBER for name in defaults},
        optax_factory=functools.partial(factory, **dict(options)),
        reference=path,
    )


def check(path: str, options: Mapping[str, Any], data: Mapping[str, float]) -> None:
    """Build the factory once with ``options`` and the first value of each hyperparameter,
    and trace one step with the hyperparameters as data: a one-line :class:`FactoryError`
    naming the factory if it does not build an optax optimizer or cannot take them as data."""
    factory = load_factory(path)
    try:
        built = factory(**options, **data)
    except (TypeError, ValueError) as error:
        raise FactoryError(f"{path}: {error}") from None
    if not isinstance(built, optax.GradientTransformation):
        raise FactoryError(f"{path} returned a {type(built).__name__}, not an "
                           "optax.GradientTransformation")
    spec = factory_spec(path, tuple(sorted(options.items())))
    x = jnp.zeros(2, jnp.float32)
    traced = {k: jax.ShapeDtypeStruct((), jnp.float32) for k in data}
    try:
        jax.eval_shape(lambda h: spec.update(x, spec.init(x, h), x, h), traced)
    except jax.errors.JAXTypeError as error:
        raise FactoryError(f"{path}: its arguments {', '.join(data)} cannot all be data "
                           f"(swept): {_first_line(error)}") from None
    except TypeError as error:  # e.g. line searches, whose update needs the loss value
        raise FactoryError(f"{path} cannot run on gradients alone: {_first_line(error)}"
                           ) from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
