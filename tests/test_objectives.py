"""ccrk.objectives: the total loss of a step, checked against per-pair reference computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ccrk.objectives as objectives
from ccrk.data.collate import Batch
from ccrk.losses import IGNORE_INDEX, cross_lingual_itc, cross_modal_itc, one_to_k_itc
from ccrk.models import ModelConfig, build_model
from ccrk.objectives import (
    ITC_LOSSES,
    Objective,
    ObjectiveConfig,
    ObjectiveConfigError,
    ObjectiveOutput,
    build_objective,
)
from ccrk.synth.generate import sample_scene
from ccrk.synth.languages import get_language
from ccrk.tokenizer import train_tokenizer

LANGS = ["en", "de", "fr"]
B = 4
NAMES = ["one_to_k", "cross_lingual", "cross_modal"]
REFERENCE_ITC = {"one_to_k": one_to_k_itc, "cross_lingual": cross_lingual_itc, "cross_modal": cross_modal_itc}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only adds wake-up latency on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _captions(n_images: int, seed: int) -> list[list[str]]:
    """Synthetic captions of ``n_images`` scenes, one a language of LANGS (English first)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_images):
        desc = sample_scene(rng, (0.2, 0.4, 0.4)).description()
        row = []
        for lang in LANGS:
            grammar = get_language(lang)
            row.append(grammar.describe(desc, int(rng.integers(grammar.N_TEMPLATES))))
        out.append(row)
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    corpus = [text for row in _captions(150, seed=0) for text in row]
    return train_tokenizer(corpus, tmp_path_factory.mktemp("tok") / "tokenizer", vocab_size=700)


#: Model variants the objective must be indifferent to: the paper's layout, and the embedded default's
#: from-scratch one (mean pooling, captions encoded in length buckets).
VARIANTS = {"paper_layout": {}, "embedded_layout": {"text_pooling": "mean", "text_length_buckets": 2}}


def _model(tokenizer, seed: int = 0, **changes):
    torch.manual_seed(seed)
    cfg = ModelConfig.tiny()
    cfg.image_kwargs = {"depth": 2}  # two ViT blocks: the test is about the objective, not the backbone
    cfg.text_layers = 1
    cfg.fusion_layers = 1
    cfg.max_length = 24
    for key, value in changes.items():
        setattr(cfg, key, value)
    return build_model(cfg, tokenizer=tokenizer)


def _batch(tokenizer, k: int = 3, seed: int = 1) -> Batch:
    rows = _captions(B, seed)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(B, 3, 64, 64, generator=g)
    if k == 1:  # cross-modal: one caption an image, languages mixed
        texts = [row[i % len(LANGS)] for i, row in enumerate(rows)]
        langs = [LANGS[i % len(LANGS)] for i in range(B)]
    else:
        texts = [text for row in rows for text in row[:k]]
        langs = LANGS[:k] * B
    enc = tokenizer(texts, padding="longest", truncation=True, max_length=24, return_tensors="pt")
    return Batch(images=images, image_ids=[f"img{i}" for i in range(B)], texts=texts, text_langs=langs, k=k,
                 input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])


def _k_for(name: str) -> int:
    return 1 if name == "cross_modal" else 3


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ values against references


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", NAMES)
def test_terms_match_per_pair_references(name, variant, tokenizer, monkeypatch):
    """Every term equals a slow recomputation from the same sampled indices, one pair at a time."""
    model = _model(tokenizer, **VARIANTS[variant]).eval()  # no dropout: batched and per-row passes must agree
    weights = {"itc": 0.5, "itm": 2.0, "mlm": 1.5}
    objective = build_objective({"name": name, "weights": weights}, model, tokenizer)
    batch = _batch(tokenizer, k=_k_for(name))
    k = batch.k
    seen: dict[str, object] = {}

    def spy(key, fn):
        def wrapped(*args, **kwargs):
            seen[key] = fn(*args, **kwargs)
            return seen[key]
        return wrapped

    monkeypatch.setattr(objectives, "choose_positive_language", spy("pos", objectives.choose_positive_language))
    monkeypatch.setattr(objectives, "sample_hard_negatives", spy("neg", objectives.sample_hard_negatives))
    monkeypatch.setattr(objectives, "mask_tokens", spy("mask", objectives.mask_tokens))
    with torch.no_grad():
        out = objective(batch, _gen(0))
        assert isinstance(out, ObjectiveOutput) and out.n_images == B
        assert set(out.terms) == {"itc", "itm", "mlm"}
        assert all(torch.isfinite(v) and not v.requires_grad for v in out.terms.values())
        assert torch.isfinite(out.loss)
        total = sum(weights[t] * out.terms[t] for t in out.terms)
        assert torch.allclose(out.loss, total, rtol=1e-6)

        ids, mask = batch.input_ids, batch.attention_mask
        enc = model(batch.images, ids, mask)
        assert torch.allclose(out.terms["itc"], REFERENCE_ITC[name](enc.image_feat, enc.text_feat, model.temperature),
                              atol=1e-6)

        pos_lang, neg = seen["pos"], seen["neg"]
        assert pos_lang.shape == (B,) and int(pos_lang.max()) < k
        pos = [i * k + int(pos_lang[i]) for i in range(B)]
        pairs = [(i, pos[i], 1) for i in range(B)] + [(i, int(neg.text[i]), 0) for i in range(B)] \
            + [(int(neg.image[i]), pos[i], 0) for i in range(B)]
        losses = []
        for image, text, label in pairs:
            tokens, _ = model.encode_text(ids[text:text + 1], mask[text:text + 1])
            logits = model.itm_logits(tokens, mask[text:text + 1], enc.image_tokens[image:image + 1])
            losses.append(F.cross_entropy(logits, torch.tensor([label])))
        assert torch.allclose(out.terms["itm"], torch.stack(losses).mean(), atol=1e-5)

        masked, labels = seen["mask"]
        cut = masked.shape[1]  # the positives are cut to the longest of them
        assert cut == int(mask[pos].sum(1).max()) and not mask[pos][:, cut:].any()
        total_ce, count = 0.0, 0
        for i in range(B):
            row_ids, row_mask = ids[pos[i], :cut], mask[pos[i], :cut]
            unmasked = labels[i] == IGNORE_INDEX
            assert torch.equal(masked[i][unmasked], row_ids[unmasked])  # MLM corrupts the positive caption
            assert torch.equal(labels[i][~unmasked], row_ids[~unmasked])
            tokens, _ = model.encode_text(masked[i:i + 1], row_mask[None])
            logits = model.mlm_logits(tokens, row_mask[None], enc.image_tokens[i:i + 1])[0]
            chosen = labels[i] != IGNORE_INDEX
            total_ce += float(F.cross_entropy(logits[chosen], labels[i][chosen], reduction="sum"))
            count += int(chosen.sum())
        assert count > 0
        assert abs(float(out.terms["mlm"]) - total_ce / count) < 1e-4


@pytest.mark.parametrize("hardness", [0.0, 0.3, 1.0])
def test_itm_hardness_scales_the_logits_negatives_are_drawn_from(hardness, tokenizer, monkeypatch):
    """1: the similarity logits themselves (the paper's draw); 0: all equal, so a uniform draw."""
    model = _model(tokenizer).eval()
    objective = build_objective({"itm_hardness": hardness, "weights": {"mlm": 0}}, model, tokenizer)
    batch = _batch(tokenizer)
    drawn_from = []
    sample = objectives.sample_hard_negatives
    monkeypatch.setattr(objectives, "sample_hard_negatives",
                        lambda sim, *a, **kw: drawn_from.append(sim) or sample(sim, *a, **kw))
    with torch.no_grad():
        objective(batch, _gen(0))
        enc = model(batch.images, batch.input_ids, batch.attention_mask)
        sim = (enc.image_feat / model.temperature) @ enc.text_feat.T
    (used,) = drawn_from
    torch.testing.assert_close(used, sim * hardness, atol=1e-5, rtol=1e-6)
    if hardness == 0.0:
        assert torch.count_nonzero(used) == 0


@pytest.mark.parametrize("rule", ["english", "random", "hard"])
def test_positive_language_rule_picks_the_masked_caption(rule, tokenizer, monkeypatch):
    model = _model(tokenizer).eval()
    objective = build_objective({"positive_language": rule, "weights": {"itm": 0}}, model, tokenizer)
    batch = _batch(tokenizer)
    rows = []
    real = objectives.mask_tokens
    monkeypatch.setattr(objectives, "mask_tokens", lambda ids, *a, **kw: rows.append(ids) or real(ids, *a, **kw))
    with torch.no_grad():
        for seed in range(6):
            objective(batch, _gen(seed))
    firsts = batch.input_ids.unflatten(0, (B, 3))
    chosen = [[next(j for j in range(3) if torch.equal(r[i], firsts[i, j, :r.shape[1]])) for i in range(B)]
              for r in rows]
    used = {j for row in chosen for j in row}
    if rule == "english":
        assert used == {0}
    else:
        assert len(used) > 1  # 24 draws over 3 languages: all-English has probability ~1e-9 (random)


def test_cross_modal_uses_the_single_caption(tokenizer, monkeypatch):
    model = _model(tokenizer).eval()
    objective = build_objective({"name": "cross_modal", "positive_language": "hard"}, model, tokenizer)
    batch = _batch(tokenizer, k=1)
    rows = []
    real = objectives.mask_tokens
    monkeypatch.setattr(objectives, "mask_tokens", lambda ids, *a, **kw: rows.append(ids) or real(ids, *a, **kw))
    with torch.no_grad():
        out = objective(batch, _gen(3))
    assert torch.equal(rows[0], batch.input_ids)
    assert set(out.terms) == {"itc", "itm", "mlm"} and torch.isfinite(out.loss)


# ------------------------------------------------------------------ skipping terms


@pytest.mark.parametrize("off", ["itc", "itm", "mlm"])
def test_zero_weight_skips_the_term(off, tokenizer, monkeypatch):
    model = _model(tokenizer)
    weights = {term: (0 if term == off else 1) for term in ("itc", "itm", "mlm")}
    objective = build_objective({"weights": weights}, model, tokenizer)

    def forbidden(*args, **kwargs):
        raise AssertionError(f"{off} was computed although its weight is 0")

    if off == "itc":
        monkeypatch.setitem(ITC_LOSSES, "one_to_k", forbidden)
    elif off == "itm":
        monkeypatch.setattr(model, "itm_logits", forbidden)
        monkeypatch.setattr(objectives, "sample_hard_negatives", forbidden)
    else:
        monkeypatch.setattr(model, "mlm_logits", forbidden)
        monkeypatch.setattr(objectives, "mask_tokens", forbidden)
    out = objective(_batch(tokenizer), _gen(0))
    assert set(out.terms) == {"itc", "itm", "mlm"} - {off}
    assert torch.allclose(out.loss, sum(out.terms.values()), rtol=1e-6)
    out.loss.backward()
    head = {"itm": model.itm_head, "mlm": model.mlm_head.dense, "itc": None}[off]
    if head is not None:
        assert all(p.grad is None for p in head.parameters())


def test_matching_and_mlm_off_skip_sampling(tokenizer, monkeypatch):
    model = _model(tokenizer)
    objective = build_objective({"weights": {"itm": 0, "mlm": 0}}, model, tokenizer)
    monkeypatch.setattr(objectives, "choose_positive_language", lambda *a, **k: pytest.fail("sampled"))
    out = objective(_batch(tokenizer), _gen(0))
    assert set(out.terms) == {"itc"}


# ------------------------------------------------------------------ training and reproducibility


@pytest.mark.parametrize("name", NAMES)
def test_twenty_adamw_steps_lower_the_loss(name, tokenizer):
    model = _model(tokenizer, seed=2)
    objective = build_objective({"name": name}, model, tokenizer)
    batch = _batch(tokenizer, k=_k_for(name))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    # One generator seed every step: the same dropout masks, positives, negatives and masked tokens, so
    # the objective is one fixed function of the weights and a working step must descend it.
    outs = []
    for step in range(21):
        out = objective(batch, _gen(0))
        outs.append(ObjectiveOutput(out.loss.detach(), out.terms, out.n_images))
        if step == 20:
            break
        optimiser.zero_grad(set_to_none=True)
        out.loss.backward()
        optimiser.step()
        model.clamp_temperature_()
    first, last = outs[0], outs[-1]
    assert all(torch.isfinite(o.loss) for o in outs)
    assert float(last.loss) < 0.6 * float(first.loss), [float(o.loss) for o in outs]
    assert all(last.terms[t] < first.terms[t] for t in ("itc", "itm", "mlm")), (first.terms, last.terms)


def test_same_seed_same_step_and_global_rng_untouched(tokenizer, monkeypatch):
    model = _model(tokenizer).train()  # dropout active: it too must come from the generator
    objective = build_objective({"positive_language": "random"}, model, tokenizer)
    batch = _batch(tokenizer)
    drawn: list[tuple] = []
    real_neg, real_mask = objectives.sample_hard_negatives, objectives.mask_tokens

    def neg(*a, **kw):
        drawn.append(("neg", real_neg(*a, **kw)))
        return drawn[-1][1]

    def mask(*a, **kw):
        drawn.append(("mask", real_mask(*a, **kw)))
        return drawn[-1][1]

    monkeypatch.setattr(objectives, "sample_hard_negatives", neg)
    monkeypatch.setattr(objectives, "mask_tokens", mask)
    state = torch.get_rng_state()
    first = objective(batch, _gen(7))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(12345)  # a different global RNG state must not matter
    second = objective(batch, _gen(7))
    third = objective(batch, _gen(8))
    assert torch.equal(first.loss, second.loss)
    assert all(torch.equal(first.terms[t], second.terms[t]) for t in first.terms)
    neg1, neg2, neg3 = (drawn[i][1] for i in (0, 2, 4))
    mask1, mask2, mask3 = (drawn[i][1] for i in (1, 3, 5))
    assert torch.equal(neg1.text, neg2.text) and torch.equal(mask1[1], mask2[1])
    assert not torch.equal(mask1[1], mask3[1])
    assert not (torch.equal(neg1.text, neg3.text) and torch.equal(neg1.image, neg3.image))
    assert not torch.equal(first.terms["mlm"], third.terms["mlm"])
    assert not torch.equal(first.terms["itm"], third.terms["itm"])
    # Same draws in eval mode differ from train mode only by dropout: the fork really seeds dropout.
    model.eval()
    with torch.no_grad():
        assert not torch.equal(objective(batch, _gen(7)).terms["itc"], first.terms["itc"])


# ------------------------------------------------------------------ bad batches


def test_batch_must_match_the_objective(tokenizer):
    model = _model(tokenizer)
    one = _batch(tokenizer, k=1)
    three = _batch(tokenizer, k=3)
    with pytest.raises(ValueError, match="'cross_modal'.*batch.k=3"):
        build_objective({"name": "cross_modal"}, model, tokenizer)(three, _gen(0))
    with pytest.raises(ValueError, match="'cross_lingual'.*batch.k=1"):
        build_objective({"name": "cross_lingual"}, model, tokenizer)(one, _gen(0))
    one_to_k = build_objective({"name": "one_to_k"}, model, tokenizer)
    with pytest.raises(ValueError, match="12 text rows are expected, got 11 in texts"):
        Batch(images=three.images, image_ids=three.image_ids, texts=three.texts[:-1],
              text_langs=[], k=3, input_ids=three.input_ids[:-1], attention_mask=three.attention_mask[:-1])
    with pytest.raises(ValueError, match="12 text rows are expected, got 11 in input_ids"):
        Batch(**{**three.__dict__, "input_ids": three.input_ids[:-1], "attention_mask": three.attention_mask[:-1]})
    with pytest.raises(ValueError, match="must be \\[B, 3, H, W\\]"):
        Batch(**{**three.__dict__, "images": three.images[0]})
    no_ids = Batch(images=three.images, image_ids=three.image_ids, texts=three.texts, text_langs=three.text_langs,
                   k=3)
    with pytest.raises(ValueError, match="no input_ids"):
        one_to_k(no_ids, _gen(0))
    german_first = Batch(**{**three.__dict__, "text_langs": ["de", "en", "fr"] * B})
    with pytest.raises(ValueError, match="pivots through English"):
        build_objective({"name": "cross_lingual"}, model, tokenizer)(german_first, _gen(0))
    with pytest.raises(ValueError, match="positive_language 'english'"):
        build_objective({"positive_language": "english"}, model, tokenizer)(german_first, _gen(0))
    single = Batch(**{**three.__dict__, "images": three.images[:1], "image_ids": ["a"], "texts": three.texts[:3],
                      "input_ids": three.input_ids[:3], "attention_mask": three.attention_mask[:3],
                      "text_langs": LANGS})
    with pytest.raises(ValueError, match="need B >= 2"):
        one_to_k(single, _gen(0))
    with pytest.raises(TypeError, match="torch.Generator"):
        one_to_k(three, 0)


# ------------------------------------------------------------------ config


def test_config_defaults_round_trip_and_partial_weights():
    cfg = ObjectiveConfig()
    assert cfg.to_dict() == {"name": "one_to_k", "weights": {"itc": 1.0, "itm": 1.0, "mlm": 1.0},
                             "positive_language": "hard", "mlm_prob": 0.4, "max_masks": 12, "itm_hardness": 1.0}
    partial = ObjectiveConfig.from_dict({"name": "cross_modal", "weights": {"mlm": 0}})
    assert partial.weights == {"itc": 1.0, "itm": 1.0, "mlm": 0.0}
    assert ObjectiveConfig.from_dict(partial.to_dict()) == partial


@pytest.mark.parametrize("data, key", [
    ({"wieghts": {"itc": 1}}, "objective.wieghts"),
    ({"weights": {"itx": 1}}, "objective.weights.itx"),
    ({"weights": {"itm": -1}}, "objective.weights.itm"),
    ({"weights": {"itm": True}}, "objective.weights.itm"),
    ({"weights": {"itm": "1"}}, "objective.weights.itm"),
    ({"weights": {"itc": 0, "itm": 0, "mlm": 0}}, "objective.weights"),
    ({"weights": [1, 1, 1]}, "objective.weights"),
    ({"name": "one-to-k"}, "objective.name"),
    ({"positive_language": "least"}, "objective.positive_language"),
    ({"mlm_prob": 0.0}, "objective.mlm_prob"),
    ({"mlm_prob": 1.5}, "objective.mlm_prob"),
    ({"max_masks": 0}, "objective.max_masks"),
    ({"max_masks": 2.5}, "objective.max_masks"),
    ({"itm_hardness": 1.5}, "objective.itm_hardness"),
    ({"itm_hardness": -0.1}, "objective.itm_hardness"),
    ({"itm_hardness": float("nan")}, "objective.itm_hardness"),
])
def test_config_errors_name_the_key(data, key):
    with pytest.raises(ObjectiveConfigError, match=key.replace(".", r"\.")):
        ObjectiveConfig.from_dict(data)


def test_build_objective_needs_a_mask_token_for_mlm(tokenizer):
    model = _model(tokenizer)

    class NoMask:
        mask_token_id = None
        all_special_ids = [0, 1, 2, 3]

        def __len__(self):
            return len(tokenizer)

    with pytest.raises(ObjectiveConfigError, match="objective.weights.mlm"):
        build_objective({}, model, NoMask())
    objective = build_objective({"weights": {"mlm": 0}}, model, NoMask())
    assert isinstance(objective, Objective) and objective.model is model
    assert set(objective.special_ids) == {0, 1, 2, 3}
    with pytest.raises(ObjectiveConfigError, match="objective.bogus"):
        build_objective({"bogus": 1}, model, tokenizer)

    class Bigger(NoMask):
        def __len__(self):
            return model.vocab_size + 1

    with pytest.raises(ValueError, match="vocabulary"):
        build_objective({"weights": {"mlm": 0}}, model, Bigger())
