"""The transformer language-model kinds: the Markov source's exact entropy rate against an
independent estimate, causality, a small char-lm trained through the sweep, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.special

import optbench
from optbench.cli import main
from optbench.nn.transformer import Transformer
from optbench.report import interpolation, slices
from optbench.report.data import load
from optbench.tasks import language, network, registry
from optbench.validate import ConfigError

WORDS = ("the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "café", "→")


def write_text(path, characters=12_000, seed=0):
    """A generated text: words of a small list (two of them not ASCII) and spaces."""
    rng = np.random.default_rng(seed)
    text = ""
    while len(text) < characters:
        text += " ".join(rng.choice(WORDS, 200)) + ".\n"
    path.write_text(text[:characters], encoding="utf-8")
    return path


def parse(table):
    return registry.parse(table, "tasks[0]")


def conditional_entropy(counts):
    """The plug-in H(Y | C) in nats of counts ``(..., contexts, vocab)``."""
    return ((scipy.special.entr(counts).sum() - scipy.special.entr(counts.sum(-1)).sum())
            / counts.sum())


def test_entropy_rate_matches_the_empirical_conditional_entropy_of_a_long_sample():
    """100 chains of 10,000 symbols each after a burn-in of 300, started from uniform
    contexts (not from the stationary distribution under test): the plug-in conditional
    entropy of their pooled (order + 1)-gram counts, its standard error by the delete-one-chain
    jackknife. A concentration of 0.3 makes the stationary distribution far from uniform:
    the uniform average of the rows' entropies is about 25 standard errors away."""
    vocab, order, chains, length, burn_in = 4, 2, 100, 10_000, 300
    table, pi, rng = language.markov_source(vocab, order, 0.3, data_seed=1)
    contexts = vocab**order
    uniform = np.full(contexts, 1 / contexts)
    symbols = language.sample(table, order, uniform, chains, burn_in + length, rng)
    symbols = symbols[:, burn_in - order:]
    grams = sum(symbols[:, i:symbols.shape[1] - order + i] * vocab ** (order - i)
                for i in range(order + 1))  # context * vocab + next symbol
    counts = np.stack([np.bincount(g, minlength=contexts * vocab) for g in grams]
                      ).reshape(chains, contexts, vocab).astype(float)
    pooled = counts.sum(axis=0)
    estimate = conditional_entropy(pooled)
    left_out = np.array([conditional_entropy(pooled - c) for c in counts])
    se = np.sqrt((chains - 1) * np.mean((left_out - left_out.mean()) ** 2))
    rate = language.entropy_rate(table, pi)
    assert abs(rate - estimate) < 4 * se, (rate, estimate, se)
    # the same rate weighted by the uniform distribution: a test that would catch it
    assert abs(language.entropy_rate(table, uniform) - estimate) > 10 * se


def test_stationary_distribution_is_the_left_eigenvector_of_the_dense_context_chain():
    """The reshape step against the chain's matrix written out from its definition."""
    vocab, order = 3, 2
    table, pi, _ = language.markov_source(vocab, order, 0.5, data_seed=2)
    contexts = vocab**order
    chain = np.zeros((contexts, contexts))
    for c in range(contexts):
        for y in range(vocab):  # (oldest, newest) -> (newest, y)
            chain[c, c % vocab * vocab + y] += table[c, y]
    values, vectors = np.linalg.eig(chain.T)
    expected = np.real(vectors[:, np.argmax(np.real(values))])
    np.testing.assert_allclose(pi, expected / expected.sum(), rtol=1e-10)


def test_the_source_itself_scores_its_entropy_rate_on_the_scored_positions():
    """The true next-symbol probabilities' loss on a corpus's scored targets is the entropy
    rate within its sampling error: every position is stationary, none lacks its context."""
    vocab, order, seq_len = 4, 3, 12
    corpus = language.markov_corpus(vocab, order, 0.3, 5, 20_000, seq_len)
    table, _, _ = language.markov_source(vocab, order, 0.3, 5)
    tokens = corpus.train
    assert corpus.scored_from == order - 1
    targets = np.arange(corpus.scored_from, seq_len) + 1  # positions of scored targets
    context = sum(tokens[:, targets - order + i] * vocab ** (order - 1 - i)
                  for i in range(order))
    losses = -np.log(table[context, tokens[:, targets]])
    per_sequence = losses.mean(axis=1)
    se = per_sequence.std() / np.sqrt(len(per_sequence))
    assert abs(per_sequence.mean() - corpus.entropy_rate) < 4 * se


def test_the_attention_is_causal():
    """Changing token j changes the logits at j and after, never before."""
    model = Transformer(vocab=7, seq_len=10, d_model=8, layers=2, heads=2)
    tokens = np.random.default_rng(1).integers(0, 7, (3, 10))
    changed = tokens.copy()
    changed[:, 6] = (tokens[:, 6] + 1) % 7

    @jax.jit
    def both(tokens, changed):
        params = model.init(jax.random.key(0))
        params = jax.tree.map(lambda p: p * 3.0, params)  # beyond the small initial weights
        return model.apply(params, tokens), model.apply(params, changed)

    before, after = both(tokens, changed)
    np.testing.assert_array_equal(before[:, :6], after[:, :6])
    assert jnp.all(jnp.abs(before[:, 6] - after[:, 6]) > 0)
    assert jnp.abs(before[:, 7:] - after[:, 7:]).max() > 1e-3  # attended to by later ones


def test_kinds_round_trip_and_list_their_fields(tmp_path, capsys):
    text = str(write_text(tmp_path / "text.txt"))
    for table in ({"kind": "markov-lm", "order": 3}, {"kind": "char-lm", "text_file": text}):
        parsed = parse(table)
        assert parse(parsed.to_dict()) == parsed
    assert main(["list", "tasks", "markov-lm"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    for row in (["vocab", "8", "yes"], ["order", "2", "yes"], ["concentration", "0.5", "yes"],
                ["d_model", "32", "yes"], ["heads", "2", "yes"]):
        assert row in rows


def test_a_small_char_lm_trains_through_the_sweep(tmp_path):
    """It learns; and with its parameters kept, the report's linear interpolation measures
    it, from the same losses the sweep recorded."""
    text = str(write_text(tmp_path / "text.txt"))
    out = optbench.sweep({
        "name": "lm", "steps": 150, "record_every": 50, "seeds": 1, "targets": [1.0],
        "keep_params": True,
        "tasks": [{"kind": "char-lm", "text_file": text, "seq_len": 16, "d_model": 16,
                   "layers": 1, "heads": 2, "batch_size": 16}],
        "optimizers": {"adam": {"learning_rate": 1e-2}}},
        results_root=tmp_path, quiet=True, yes=True, compile_cache=False)
    data = load(out)
    assert list(interpolation.barriers(out)["task"].unique()) == ["char-lm"]
    segment, = interpolation.task_segments(out, data.config, "char-lm", data.best_runs(),
                                           ["adam"])
    run = pd.read_parquet(out / "runs.parquet").iloc[0]
    curve = pd.read_parquet(out / "curves.parquet").set_index("step")
    assert run["metric"] == "valid_loss" and not run["maximize"]
    vocab = len(set(open(text, encoding="utf-8").read()))
    assert run["vocab"] == vocab
    assert curve.loc[0, "valid_loss"] == pytest.approx(np.log(vocab), abs=0.05)
    for split in ("train", "valid", "test"):  # it learns: e^0.7 = 2x likelier characters
        assert curve.loc[150, f"{split}_loss"] < curve.loc[0, f"{split}_loss"] - 0.7
    for i, split in enumerate(interpolation.SPLITS):  # from initialization to solution
        np.testing.assert_allclose(segment.losses[0, i, [0, -1]],
                                   curve.loc[[0, 150], f"{split}_loss"], rtol=1e-5)
    chosen = slices.chosen_runs(data.best_runs(), "char-lm", ["adam"], out)
    cut, = slices.task_slices(out, data.config, "char-lm", chosen)  # filter-normalized
    middle = slices.POINTS_1D // 2  # at the solution itself: the recorded training loss
    assert cut.values_1d[middle] == pytest.approx(curve.loc[150, "train_loss"], rel=1e-5)
    assert np.isfinite(cut.values_2d).all() and np.ptp(cut.values_1d) > 0


def test_markov_lm_scores_the_gap_to_the_entropy_rate(monkeypatch):
    """valid_gap is valid_loss minus the exact rate; at the start (near-uniform logits) the
    loss is about log(vocab); evaluated in chunks (the last one padded), the same."""
    task, = registry.build([parse({"kind": "markov-lm", "vocab": 5, "seq_len": 8,
                                   "d_model": 8, "layers": 1, "heads": 1, "sequences": 400})])
    program = task.program("mini-batch")
    assert task.metric == program.metric == "valid_gap" and not task.maximize
    args = jax.tree.map(jnp.asarray, task.args("mini-batch"))
    def evaluate(a):
        return program.evaluate(a, program.init(a, jax.random.key(0), 0))

    metrics = jax.jit(evaluate)(args)
    monkeypatch.setattr(network, "EVAL_ELEMENTS", 7 * program.model.widest())
    chunked = jax.jit(lambda a: evaluate(a))(args)  # a new trace: chunks of 7 sequences
    for name, value in metrics.items():
        np.testing.assert_allclose(chunked[name], value, rtol=1e-5, err_msg=name)
    rate = task.corpus.entropy_rate
    assert task.describe()["entropy_rate"] == rate < np.log(5)
    assert float(metrics["valid_loss"]) == pytest.approx(np.log(5), abs=0.05)
    for split in ("valid", "test"):
        assert float(metrics[f"{split}_gap"]) == pytest.approx(
            float(metrics[f"{split}_loss"]) - rate, abs=1e-6)


@pytest.mark.parametrize("table,match", [
    ({"kind": "markov-lm", "vocab": 64, "order": 4},
     r"tasks\[0\]\.order: found 4; allowed a transition table that fits in memory: "
     r"vocab\^\(order \+ 1\) = 64\^5 = 1\.07e\+09 probabilities, 8 GiB as float64; at most "
     r"2\^25 = 33554432 \(0\.25 GiB\): lower order or vocab"),
    ({"kind": "markov-lm", "order": 40}, r"tasks\[0\]\.order: found 40; allowed an integer "
                                         r"in \[1, seq_len = 32\] \(a sequence holds"),
    ({"kind": "markov-lm", "sequences": 100, "batch_size": 91},
     r"tasks\[0\]\.batch_size: found 91; allowed an integer in \[1, 90\] \(the training "
     r"sequences of sequences\)"),
    ({"kind": "markov-lm", "concentration": 0.0},
     r"tasks\[0\]\.concentration: found 0\.0; allowed a finite number >= 0\.05"),
    ({"kind": "markov-lm", "d_model": 30, "heads": 4},
     r"tasks\[0\]\.heads: found 4; allowed a divisor of d_model = 30"),
    ({"kind": "char-lm"}, r"tasks\[0\]\.text_file: found None; allowed the path of a UTF-8"),
    ({"kind": "char-lm", "text_file": "/nonexistent/book.txt"},
     r"tasks\[0\]\.text_file: found '/nonexistent/book.txt'; allowed a UTF-8 text file; "
     r"there is no file /nonexistent/book.txt"),
])
def test_bad_fields_are_one_line_config_errors(table, match):
    with pytest.raises(ConfigError, match=match) as error:
        parse(table)
    assert "\n" not in str(error.value)


def test_a_text_not_utf8_or_shorter_than_a_sequence_is_refused_with_exit_2(tmp_path, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\u00e9 ".encode("latin-1") * 1000)
    short = write_text(tmp_path / "short.txt", characters=20 * 65 - 1)
    with pytest.raises(ConfigError, match=r"byte 3 is not UTF-8 \(invalid continuation"):
        parse({"kind": "char-lm", "text_file": str(latin)})
    with pytest.raises(ConfigError, match=r"text_file: .* at least 1300 characters \(its 5 % "
                                          r"validation and test splits each hold one sequence "
                                          r"of seq_len \+ 1 = 65\); it has 1299"):
        parse({"kind": "char-lm", "text_file": str(short), "seq_len": 64})
    parse({"kind": "char-lm", "text_file": str(write_text(short, 20 * 65)), "seq_len": 64,
           "batch_size": 18})  # 1170 training characters: 18 sequences
    config = tmp_path / "lm.toml"
    config.write_text(f'name = "lm"\n[[tasks]]\nkind = "char-lm"\ntext_file = "{latin}"\n'
                      '[optimizers.adam]\nlearning_rate = 0.01\n')
    assert main(["sweep", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "text_file" in error and "not UTF-8" in error and error.count("\n") == 1


def test_char_lm_splits_contiguously_90_5_5_and_every_target_once(tmp_path):
    path = tmp_path / "digits.txt"
    path.write_text("".join(str(i % 10) for i in range(2000)), encoding="utf-8")
    corpus = language.text_corpus(str(path), 9)
    assert corpus.vocab == 10 and corpus.scored_from == 0
    # 2000 characters: 1800 / 100 / 100, windows of 10 starting every 9
    assert [len(s) for s in (corpus.train, corpus.valid, corpus.test)] == [199, 11, 11]
    assert corpus.valid[0, 0] == 1800 % 10 and corpus.test[-1, -1] == (1900 + 99) % 10
    # the training targets: characters 1 to 1791, once each (the partial last window is
    # dropped)
    np.testing.assert_array_equal(corpus.train[:, 1:].ravel(), np.arange(1, 1792) % 10)


def test_the_true_source_scores_a_gap_of_zero_through_the_program():
    """The program's own scoring (its mask from ``scored_from``) applied to the source's true
    next-symbol probabilities: valid_gap is 0 within its noise. Scoring the first target too,
    which lacks its context (the oracle can only guess uniformly there), shows a clear gap."""
    import dataclasses

    from optbench.tasks.language import markov_source

    vocab, order = 4, 2
    task, = registry.build([parse({"kind": "markov-lm", "vocab": vocab, "order": order,
                                   "seq_len": 4, "d_model": 8, "layers": 1, "heads": 1,
                                   "sequences": 8000})])
    table = markov_source(vocab, order, 0.5, 0)[0]
    program = task.program("mini-batch")

    class Oracle:
        """log P(next | the last `order` symbols); uniform where they are not all there."""

        def apply(self, params, tokens):
            positions = tokens.shape[-1]
            context = sum(jnp.roll(tokens, k, axis=-1) * vocab**k for k in range(order))
            logits = jnp.log(jnp.asarray(table, jnp.float32))[context]
            complete = jnp.arange(positions)[:, None] >= order - 1
            return jnp.where(complete, logits, 0.0)

        def widest(self):
            return program.model.widest()

    oracle = dataclasses.replace(program, model=Oracle())
    args = jax.tree.map(jnp.asarray, task.args("mini-batch"))
    gap = float(oracle.evaluate(args, None)["valid_gap"])
    assert abs(gap) < 0.05
    unmasked = float(oracle.evaluate({**args, "scored_from": jnp.int32(0)}, None)["valid_gap"])
    assert unmasked > gap + 0.08


def test_a_markov_lm_without_targets_gets_targets_above_its_noise():
    """The sweep's default targets (1e-1 ... 1e-8) are in a surface's units; markov-lm's gap
    has about 0.01 nats of validation noise, so a run would 'reach' 1e-8 by noise."""
    from optbench.config import parse as parse_sweep

    config = parse_sweep({"tasks": [{"kind": "markov-lm"}, {"landscape": "sphere"},
                                    {"kind": "markov-lm", "name": "own", "targets": [0.2]}],
                          "optimizers": {"adam": {}}})
    targets = [config.plan(t.name).targets for t in config.tasks]
    assert targets[0] == (0.3, 0.1, 0.05) and min(targets[0]) > 0.03
    assert targets[1] == config.targets and targets[2] == (0.2,)
