"""Language-model tasks: a decoder-only transformer (:mod:`optbench.nn.transformer`) trained
on next-token prediction, with the softmax cross-entropy in nats per token.

| kind | data | primary metric |
|---|---|---|
| markov-lm | sequences of a random order-k Markov source over ``vocab`` symbols | valid_gap |
| char-lm | the characters of a UTF-8 text file (``text_file``) | valid_loss |

**markov-lm.** Row ``c`` of the transition table, the distribution of the next symbol after
the context ``c`` (the last ``order`` symbols, read as a base-``vocab`` number whose leading
digit is the oldest), is drawn from a symmetric Dirichlet(``concentration``); ``data_seed``
draws the table and, from an independent stream, the ``sequences`` sequences. Each sequence
starts from a context drawn from the stationary distribution π, so every position is
stationary, and the loss is scored on the targets whose whole context is in the sequence
(the tokens after the first ``order``). The best expected loss of any predictor is then the
source's entropy rate ``H = Σ_c π(c) H(P[c, ·])``, computed exactly up to a tolerance:
π by power iteration of the chain on contexts (c → its last ``order - 1``
symbols followed by y, with probability ``P[c, y]``) from the uniform distribution until
successive iterates differ by less than 1e-14 in L1; the chain converges, since every row
is positive (so any context reaches any other in ``order`` steps). The primary metric
``valid_gap`` is ``valid_loss - H`` (≥ 0 up to the validation sample's noise);
``test_gap`` is recorded beside it, and ``entropy_rate`` is a column of the runs.

**char-lm.** The text's characters (its alphabet: the distinct characters of the whole
file, sorted by code point) are split contiguously: the first 90 % for training, the next
5 % for validation and the last 5 % for testing. Each split is cut into windows of
``seq_len + 1`` characters that overlap by one, so that every character but the split's
first is one window's target once; every position is scored.

Both kinds: the sequences of a split are the rows of an array in ``args``; a mini-batch is
``batch_size`` rows drawn uniformly with replacement from ``fold_in(run key, step)`` ("full
batch": the whole training split, "one sample": one sequence). Record points evaluate
train_loss, valid_loss and test_loss on the full splits, in chunks.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.special

from optbench import validate
from optbench.errors import OptbenchError
from optbench.nn.transformer import Transformer
from optbench.tasks import network, registry
from optbench.tasks.base import FromConfig, examples_per_gradient
from optbench.validate import ConfigError

MAX_TABLE_ENTRIES = 2**25  # transition probabilities: 256 MiB as float64 (and as much again
# for their cumulative sums, which the sampler reads)
MIN_CONCENTRATION = 0.05  # below, Dirichlet draws underflow to exact zeros (a chain that
# may not mix, or has no unique stationary distribution)
HELD_OUT_PERCENT = 5  # the validation split's and the test split's share; the rest trains
STATIONARY_TOLERANCE = 1e-14  # L1 change of the power iteration at which it stops
STATIONARY_ITERATIONS = 100_000
SPLIT_TOKENS = {"train": "tokens", "valid": "tokens_valid", "test": "tokens_test"}  # in args


# --------------------------------------------------------------------------------------
# The Markov source
# --------------------------------------------------------------------------------------


def transition_table(vocab: int, order: int, concentration: float,
                     rng: np.random.Generator) -> np.ndarray:
    """``P[c, y]``: ``vocab**order`` rows (one per context), each from a symmetric
    Dirichlet(``concentration``) over the ``vocab`` next symbols."""
    return rng.dirichlet(np.full(vocab, concentration), size=vocab**order)


def next_context(context: np.ndarray, symbol: np.ndarray, vocab: int,
                 contexts: int) -> np.ndarray:
    """The context after ``symbol`` (of ``contexts = vocab**order``): the oldest (leading)
    digit dropped, ``symbol`` appended."""
    return context * vocab % contexts + symbol


def stationary_distribution(table: np.ndarray) -> np.ndarray:
    """π over the contexts, ``π = π T`` for the chain on contexts (see the module docstring),
    by power iteration from the uniform distribution.

    One step without the ``contexts × contexts`` matrix T: the mass ``π(c) P[c, y]`` moves to
    context ``c * vocab % contexts + y``; laid out as ``(contexts, vocab)`` and flattened,
    ``π(c) P[c, y]`` sits at ``c * vocab + y``, so the contexts that differ only in their
    oldest digit land on the same column of the ``(vocab, contexts)`` reshape: sum its rows.
    """
    contexts, vocab = table.shape
    pi = np.full(contexts, 1.0 / contexts)
    for _ in range(STATIONARY_ITERATIONS):
        new = (pi[:, None] * table).reshape(vocab, contexts).sum(axis=0)
        if np.abs(new - pi).sum() < STATIONARY_TOLERANCE:
            return new
        pi = new
    raise OptbenchError(
        f"markov-lm: the source's stationary distribution did not converge in "
        f"{STATIONARY_ITERATIONS} iterations (L1 change {np.abs(new - pi).sum():.2g}); "
        "raise concentration or lower order")


def entropy_rate(table: np.ndarray, stationary: np.ndarray) -> float:
    """``Σ_c π(c) H(P[c, ·])`` in nats: the expected loss of the best predictor."""
    return float(stationary @ scipy.special.entr(table).sum(axis=1))


def sample(table: np.ndarray, order: int, start: np.ndarray, n: int, length: int,
           rng: np.random.Generator) -> np.ndarray:
    """``n`` sequences of ``length >= order`` symbols (int32), each starting from a context
    drawn from the distribution ``start`` over contexts."""
    contexts, vocab = table.shape
    context = rng.choice(contexts, size=n, p=start)
    columns = list((context[:, None] // vocab ** np.arange(order - 1, -1, -1) % vocab).T)
    cumulative = np.cumsum(table, axis=1)
    for _ in range(length - order):
        draw = rng.random(n)[:, None]
        symbol = np.minimum((draw > cumulative[context]).sum(axis=1), vocab - 1)
        columns.append(symbol)
        context = next_context(context, symbol, vocab, contexts)
    return np.stack(columns, axis=1).astype(np.int32)


# --------------------------------------------------------------------------------------
# The data
# --------------------------------------------------------------------------------------


def held_out_size(n: int) -> int:
    """The validation split's size, and the test split's, of ``n`` items (5 % each)."""
    return n * HELD_OUT_PERCENT // 100


def split(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test: the first 90 %, the next 5 % and the last 5 %."""
    n, m = len(items), held_out_size(len(items))
    return items[:n - 2 * m], items[n - 2 * m:n - m], items[n - m:]


@dataclass(frozen=True, eq=False)
class Corpus:
    """A task's sequences: each split an int32 array ``(sequences, seq_len + 1)``."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: int
    scored_from: int  # the first target position scored (each sequence's first targets may
    # lack their context)
    entropy_rate: float | None = None  # the best achievable loss, where it is known


def markov_source(vocab: int, order: int, concentration: float, data_seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """The transition table drawn from ``data_seed``, its stationary distribution, and the
    independent generator that draws the sequences."""
    table_rng, sample_rng = map(np.random.default_rng,
                                np.random.SeedSequence(data_seed).spawn(2))
    table = transition_table(vocab, order, concentration, table_rng)
    return table, stationary_distribution(table), sample_rng


@functools.cache
def markov_corpus(vocab: int, order: int, concentration: float, data_seed: int,
                  sequences: int, seq_len: int) -> Corpus:
    """``sequences`` sequences of ``seq_len + 1`` symbols of the source drawn from
    ``data_seed``, split 90/5/5, and its exact entropy rate."""
    table, pi, sample_rng = markov_source(vocab, order, concentration, data_seed)
    tokens = sample(table, order, pi, sequences, seq_len + 1, sample_rng)
    return Corpus(*split(tokens), vocab=vocab, scored_from=order - 1,
                  entropy_rate=entropy_rate(table, pi))


def min_text_length(seq_len: int) -> int:
    """The fewest characters whose 5 % held-out splits hold one window of ``seq_len + 1``."""
    return 100 // HELD_OUT_PERCENT * (seq_len + 1)


def read_text(path: str, where: str) -> str:
    """The text of a UTF-8 file; a :class:`ConfigError` at ``where`` if it is missing or
    not UTF-8."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(where, path, f"a UTF-8 text file; there is no file {file}")
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(where, path, f"a UTF-8 text file; byte {error.start} is not UTF-8 "
                                       f"({error.reason})") from None


def windows(tokens: np.ndarray, seq_len: int) -> np.ndarray:
    """Windows of ``seq_len + 1`` tokens, each starting at the previous one's last token."""
    count = (len(tokens) - 1) // seq_len
    return np.lib.stride_tricks.sliding_window_view(tokens, seq_len + 1)[::seq_len][:count]


@functools.cache
def text_corpus(path: str, seq_len: int) -> Corpus:
    """The characters of ``path`` as tokens (its sorted alphabet), split 90/5/5
    contiguously, each split cut into :func:`windows`."""
    codes = np.frombuffer(read_text(path, "text_file").encode("utf-32-le"), np.uint32)
    alphabet, tokens = np.unique(codes, return_inverse=True)
    splits = (np.ascontiguousarray(windows(s.astype(np.int32), seq_len)) for s in split(tokens))
    return Corpus(*splits, vocab=len(alphabet), scored_from=0)


# --------------------------------------------------------------------------------------
# The config
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LanguageConfig:
    """One ``[[tasks]]`` table of a language kind (a field another kind lacks keeps its
    default)."""

    kind: str
    name: str
    seq_len: int = 32  # tokens a sequence is predicted from
    d_model: int = 32
    layers: int = 2
    heads: int = 2
    batch_size: int = 32  # sequences per mini-batch
    vocab: int = 8  # markov-lm
    order: int = 2
    concentration: float = 0.5
    sequences: int = 4096
    data_seed: int = 0
    text_file: str = ""  # char-lm

    n_starts: ClassVar[int] = 1

    def to_dict(self) -> dict:
        data = asdict(self)
        return {"kind": self.kind, **{k: data[k] for k in FIELDS[self.kind]}}

    def model(self, vocab: int) -> Transformer:
        return Transformer(vocab, self.seq_len, self.d_model, self.layers, self.heads)


_MODEL_FIELDS = ("name", "seq_len", "d_model", "layers", "heads", "batch_size")
FIELDS = {"markov-lm": (*_MODEL_FIELDS, "vocab", "order", "concentration", "sequences",
                        "data_seed"),
          "char-lm": (*_MODEL_FIELDS, "text_file")}
_DEFAULTS = {f.name: f.default for f in fields(LanguageConfig) if f.default is not MISSING}


def field_defaults(kind: str) -> dict[str, Any]:
    """Each field of ``kind`` with its default (``optbench list tasks KIND``)."""
    return registry.described(FIELDS[kind], {**_DEFAULTS, "name": kind},
                              {"text_file": "required: a UTF-8 text file"})


def parse(kind: str, raw: Mapping[str, Any], path: str) -> LanguageConfig:
    validate.table(raw, path, FIELDS[kind])
    get = {**_DEFAULTS, "name": kind, **raw}.get
    parsed = {"kind": kind, "name": validate.name(get("name"), f"{path}.name")}
    for field in ("seq_len", "d_model", "layers", "heads", "batch_size"):
        parsed[field] = validate.integer(get(field), f"{path}.{field}", 1)
    if parsed["d_model"] % parsed["heads"]:
        raise ConfigError(f"{path}.heads", parsed["heads"],
                          f"a divisor of d_model = {parsed['d_model']}")
    if kind == "markov-lm":
        parsed |= _markov_fields(get, path, parsed["seq_len"])
        train, data = train_size(parsed["sequences"]), "sequences"
    else:
        parsed["text_file"], characters = _text_file(raw.get("text_file"),
                                                     f"{path}.text_file", parsed["seq_len"])
        train, data = (train_size(characters) - 1) // parsed["seq_len"], "text_file"
    if parsed["batch_size"] > train:
        raise ConfigError(f"{path}.batch_size", parsed["batch_size"],
                          f"an integer in [1, {train}] (the training sequences of {data})")
    return LanguageConfig(**parsed)


def train_size(n: int) -> int:
    """The training split's share of ``n`` items (90 %)."""
    return n - 2 * held_out_size(n)


def _markov_fields(get, path: str, seq_len: int) -> dict[str, Any]:
    vocab = validate.integer(get("vocab"), f"{path}.vocab", 2)
    order = validate.integer(get("order"), f"{path}.order", 1)
    if order > seq_len:
        raise ConfigError(f"{path}.order", order, f"an integer in [1, seq_len = {seq_len}] "
                                                  "(a sequence holds a whole context)")
    entries = vocab ** (order + 1)
    if entries > MAX_TABLE_ENTRIES:
        raise ConfigError(f"{path}.order", order, (
            f"a transition table that fits in memory: vocab^(order + 1) = {vocab}^{order + 1}"
            f" = {entries:.3g} probabilities, {entries * 8 / 2**30:.3g} GiB as float64; at "
            f"most 2^{MAX_TABLE_ENTRIES.bit_length() - 1} = {MAX_TABLE_ENTRIES} "
            f"({MAX_TABLE_ENTRIES * 8 / 2**30:g} GiB): lower order or vocab"))
    return {"vocab": vocab, "order": order,
            "concentration": validate.number(get("concentration"), f"{path}.concentration",
                                             MIN_CONCENTRATION),
            "sequences": validate.integer(get("sequences"), f"{path}.sequences",
                                          100 // HELD_OUT_PERCENT),
            "data_seed": validate.integer(get("data_seed"), f"{path}.data_seed", 0)}


def _text_file(raw: Any, path: str, seq_len: int) -> tuple[str, int]:
    """``raw`` if it names a UTF-8 text long enough for one sequence in every split, and
    its length in characters."""
    if not isinstance(raw, str) or not raw:
        raise ConfigError(path, raw, "the path of a UTF-8 text file")
    length, needed = len(read_text(raw, path)), min_text_length(seq_len)
    if length < needed:
        raise ConfigError(path, raw, (
            f"a text of at least {needed} characters (its 5 % validation and test splits "
            f"each hold one sequence of seq_len + 1 = {seq_len + 1}); it has {length}"))
    return str(Path(raw).expanduser()), length


# --------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LanguageProgram:
    """What a language model's compiled program reads (see
    :class:`~optbench.tasks.base.Program`): the model, whether the best loss is known
    (``args["entropy_rate"]``), and the sequences per gradient (0: the whole split)."""

    per_step_metric: ClassVar[bool] = False
    maximize: ClassVar[bool] = False
    model: Transformer
    known_rate: bool
    batch: int

    @property
    def metric(self) -> str:
        return "valid_gap" if self.known_rate else "valid_loss"

    def init(self, args, key: jax.Array, start_index: jax.Array):
        return self.model.init(key, jnp.result_type(float))

    def sequence_losses(self, params, tokens: jax.Array, scored_from: jax.Array) -> jax.Array:
        """Each sequence's mean cross-entropy of its next-token predictions, over the
        targets from position ``scored_from`` on."""
        logits = self.model.apply(params, tokens[:, :-1])
        losses = optax.losses.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:])
        scored = jnp.arange(losses.shape[-1]) >= scored_from
        return jnp.sum(jnp.where(scored, losses, 0.0), axis=-1) / jnp.sum(scored)

    def loss_and_grad(self, args, params, key: jax.Array, step: jax.Array):
        tokens = args["tokens"]
        if self.batch:
            rows = jax.random.randint(jax.random.fold_in(key, step), (self.batch,), 0,
                                      tokens.shape[0])
            tokens = tokens[rows]
        return jax.value_and_grad(
            lambda p: jnp.mean(self.sequence_losses(p, tokens, args["scored_from"])))(params)

    def split_loss(self, args, params, split: str) -> jax.Array:
        """The mean loss per scored token over ``split`` ("train", "valid" or "test"), equal
        to :meth:`evaluate`'s ``<split>_loss``."""
        return self._tokens_loss(args, params, args[SPLIT_TOKENS[split]])

    def train_loss(self, args, params) -> jax.Array:
        """The mean loss over the training split (the loss-landscape figures' function)."""
        return self.split_loss(args, params, "train")

    def _tokens_loss(self, args, params, tokens: jax.Array) -> jax.Array:
        """The mean loss per scored token over ``tokens``, in chunks of about
        EVAL_ELEMENTS activations per run."""
        def sums(rows, mask):
            losses = self.sequence_losses(params, rows, args["scored_from"])
            return (jnp.sum(jnp.where(mask, losses, 0.0)),)
        chunk = max(1, network.EVAL_ELEMENTS // self.model.widest())
        return network.chunked_means(sums, (tokens,), chunk)[0]

    def evaluate(self, args, params) -> dict[str, jax.Array]:
        out = {f"{split}_loss": self.split_loss(args, params, split) for split in SPLIT_TOKENS}
        if self.known_rate:
            out |= {f"{split}_gap": out[f"{split}_loss"] - args["entropy_rate"]
                    for split in ("valid", "test")}
        return out

    def project(self, args, params):
        return params


@dataclass(frozen=True, eq=False)
class LanguageTask(FromConfig):
    """A transformer trained on a :class:`Corpus`; see the module docstring."""

    maximize: ClassVar[bool] = LanguageProgram.maximize
    n_starts: ClassVar[int] = 1
    config: LanguageConfig
    corpus: Corpus

    @property
    def metric(self) -> str:
        return "valid_gap" if self.corpus.entropy_rate is not None else "valid_loss"

    def args(self, gradient_source: str) -> dict[str, np.ndarray]:
        known = {} if self.corpus.entropy_rate is None else {
            "entropy_rate": np.float64(self.corpus.entropy_rate)}
        return {"tokens": self.corpus.train, "tokens_valid": self.corpus.valid,
                "tokens_test": self.corpus.test,
                "scored_from": np.int32(self.corpus.scored_from), **known}

    def program(self, gradient_source: str) -> LanguageProgram:
        n = len(self.corpus.train)
        size = examples_per_gradient(gradient_source, n, self.config.batch_size)
        return LanguageProgram(self.config.model(self.corpus.vocab),
                               known_rate=self.corpus.entropy_rate is not None,
                               batch=0 if size >= n else size)

    def describe(self) -> dict:
        c = self.config
        own = {"order": c.order, "concentration": c.concentration, "data_seed": c.data_seed,
               "entropy_rate": self.corpus.entropy_rate} if c.kind == "markov-lm" else {
               "text_file": c.text_file}
        return {"task": self.name, "kind": c.kind, "vocab": self.corpus.vocab,
                "seq_len": c.seq_len, "d_model": c.d_model, "layers": c.layers,
                "heads": c.heads, "batch_size": c.batch_size,
                "train_sequences": len(self.corpus.train), **own}


def task_of(config: LanguageConfig) -> LanguageTask:
    if config.kind == "markov-lm":
        corpus = markov_corpus(config.vocab, config.order, config.concentration,
                               config.data_seed, config.sequences, config.seq_len)
    else:
        corpus = text_corpus(config.text_file, config.seq_len)
    return LanguageTask(config, corpus)


def build(configs: Sequence[LanguageConfig]) -> list[LanguageTask]:
    return [task_of(c) for c in configs]


_DESCRIPTIONS = {
    "markov-lm": "transformer LM on a random order-k Markov source; valid_gap = valid_loss "
                 "minus the source's exact entropy rate (nats per token)",
    "char-lm": "character-level transformer LM on a UTF-8 text file (split 90/5/5, "
               "contiguous)",
}
for _kind, _description in _DESCRIPTIONS.items():
    registry.register(registry.TaskKind(
        name=_kind, description=_description, parse=functools.partial(parse, _kind),
        build=build, sweepable=tuple(f for f in FIELDS[_kind] if f not in ("name",
                                                                          "text_file")),
        fields=functools.partial(field_defaults, _kind),
        # the gap's validation noise is about 0.01 nats: smaller targets would score noise
        default_targets=(0.3, 0.1, 0.05) if _kind == "markov-lm" else None,
        landscape_figures=True))
