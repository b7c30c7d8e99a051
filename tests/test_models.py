"""ccrk.models: shapes, normalisation, tying, save/load, attention semantics, weight loading."""
from __future__ import annotations

import json
import math

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForMaskedLM, XLMRobertaModel

from ccrk.models import (
    FusionEncoder,
    ModelConfig,
    ModelConfigError,
    build_model,
    count_parameters,
    load_local_weights,
    load_model,
    save_model,
)

WORDS = "a dog cat runs on the grass ein hund läuft auf dem gras 犬 が 芝生 を 走る red blue small big".split()


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
        pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
    )


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return build_model(ModelConfig.tiny(), tokenizer=tokenizer).eval()


@pytest.fixture(scope="module")
def batch(tokenizer):
    captions = ["a dog runs on the grass", "ein hund läuft", "犬 が 芝生 を 走る", "a small red cat",
                "blue", "the big dog on the grass a cat"]
    enc = tokenizer(captions, padding="max_length", max_length=12, truncation=True, return_tensors="pt")
    torch.manual_seed(1)
    images = torch.randn(3, 3, 64, 64)
    return images, enc["input_ids"], enc["attention_mask"]


def test_tiny_model_shapes_and_normalised_features(model, tokenizer, batch):
    images, ids, mask = batch
    with torch.no_grad():
        image_tokens, image_feat = model.encode_image(images)
        text_tokens, text_feat = model.encode_text(ids, mask)
        index = torch.tensor([0, 0, 1, 1, 2, 2])
        fused = model.fuse(text_tokens, mask, image_tokens, index)
        fused_repeated = model.fuse(text_tokens, mask, image_tokens[index])
        itm = model.itm_logits(text_tokens, mask, image_tokens, index)
        mlm = model.mlm_logits(text_tokens, mask, image_tokens, index)
        mlm_sel = model.mlm_logits(text_tokens, mask, image_tokens, index, positions=mask.bool())
        out = model(images, ids, mask)
    assert image_tokens.shape == (3, 17, 192)  # ViT-Tiny at 64 px: [CLS] + 4x4 patches
    assert image_feat.shape == (3, 256) and text_feat.shape == (6, 256)
    assert text_tokens.shape == (6, 12, 128)
    assert fused.shape == (6, 12, 128)
    assert torch.equal(fused, fused_repeated)
    assert itm.shape == (6, 2)
    assert mlm.shape == (6, 12, len(tokenizer))
    assert mlm_sel.shape == (int(mask.sum()), len(tokenizer))
    assert torch.allclose(mlm_sel, mlm[mask.bool()], atol=1e-6)
    assert torch.allclose(image_feat.norm(dim=-1), torch.ones(3), atol=1e-6)
    assert torch.allclose(text_feat.norm(dim=-1), torch.ones(6), atol=1e-6)
    assert torch.equal(out.image_feat, image_feat) and torch.equal(out.text_tokens, text_tokens)
    assert model.vocab_size == len(tokenizer)


def test_bad_inputs_are_rejected(model, batch):
    images, ids, mask = batch
    with pytest.raises(ValueError, match="model.image_size"):
        model.encode_image(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="attention_mask"):
        model.encode_text(ids, mask[:, :5])
    with pytest.raises(ValueError, match="positions"):
        model.encode_text(torch.zeros(1, 120, dtype=torch.long), torch.ones(1, 120, dtype=torch.long))
    with torch.no_grad():
        image_tokens, _ = model.encode_image(images)
        text_tokens, _ = model.encode_text(ids, mask)
        with pytest.raises(ValueError, match="image_index"):
            model.fuse(text_tokens, mask, image_tokens)
        with pytest.raises(ValueError, match="bool mask"):
            model.mlm_logits(text_tokens, mask, image_tokens, torch.zeros(6, dtype=torch.long), positions=mask)


def test_every_parameter_gets_a_gradient(model, batch):
    images, ids, mask = batch
    model.train()
    try:
        out = model(images, ids, mask)
        index = torch.tensor([0, 0, 1, 1, 2, 2])
        sims = out.image_feat[index] @ out.text_feat.T / model.temperature
        loss = F.cross_entropy(sims, torch.arange(6))
        loss = loss + F.cross_entropy(model.itm_logits(out.text_tokens, mask, out.image_tokens, index), index % 2)
        loss = loss + model.mlm_logits(out.text_tokens, mask, out.image_tokens, index).logsumexp(-1).mean()
        loss.backward()
        # Nothing is built and then left out of the graph (the dropped pooler, unused fusion sources).
        assert [n for n, p in model.named_parameters() if p.grad is None] == []
        assert model.temp.grad.abs() > 0
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_temperature_is_clamped(model):
    cfg = model.config
    saved = model.temp.detach().clone()
    try:
        with torch.no_grad():
            model.temp.fill_(5.0)
        assert model.temperature.item() == pytest.approx(cfg.temp_max)
        with torch.no_grad():
            model.temp.fill_(-1.0)
        assert model.temperature.item() == pytest.approx(cfg.temp_min)
        model.clamp_temperature_()
        assert model.temp.item() == pytest.approx(cfg.temp_min)
        with torch.no_grad():
            model.temp.fill_(0.07)
        assert model.temperature.item() == pytest.approx(0.07)
    finally:
        with torch.no_grad():
            model.temp.copy_(saved)


@pytest.mark.parametrize("temp_param", ["linear", "log"])
@pytest.mark.parametrize("bound", ["temp_min", "temp_max"])
def test_a_temperature_on_its_bound_still_learns(tokenizer, temp_param, bound):
    """Started on a bound (temp_init == temp_max: 'tau may only fall'), or projected back onto it after a
    step outward, the temperature keeps its gradient and leaves the bound when the loss asks it to."""
    import dataclasses

    base = ModelConfig.tiny()
    on_bound = {bound: base.temp_init}
    model = build_model(dataclasses.replace(base, temp_param=temp_param, **on_bound), tokenizer=tokenizer)
    inward = 1.0 if bound == "temp_min" else -1.0  # the sign of a move from the bound into the range
    optimiser = torch.optim.SGD([model.temp], lr=0.01)

    def step(loss_sign: float) -> None:
        optimiser.zero_grad()
        (loss_sign * model.temperature).backward()
        optimiser.step()
        model.clamp_temperature_()

    d_tau = base.temp_init if temp_param == "log" else 1.0  # d tau / d parameter at tau = temp_init
    (model.temperature * 1.0).backward()
    assert model.temp.grad.item() == pytest.approx(d_tau)  # started on the bound
    step(inward)  # minimising inward * tau pushes tau out of the range; the projection puts it back
    assert model.temperature.item() == pytest.approx(base.temp_init)
    step(-inward)  # now the loss asks for tau inside the range
    assert (model.temperature.item() - base.temp_init) * inward == pytest.approx(0.01 * d_tau**2, rel=0.02)


def test_a_log_temperature_starts_at_temp_init_and_moves_by_a_fraction(tokenizer):
    """temp_param 'log' (CLIP's logit scale): the parameter is log tau, clamped in log space, and the
    same step on the parameter multiplies tau by the same factor wherever tau is."""
    import dataclasses

    cfg = dataclasses.replace(ModelConfig.tiny(), temp_param="log")
    model = build_model(cfg, tokenizer=tokenizer)
    assert model.temp.item() == pytest.approx(math.log(cfg.temp_init))
    assert model.temperature.item() == pytest.approx(cfg.temp_init)
    with torch.no_grad():
        model.temp.fill_(5.0)
    assert model.temperature.item() == pytest.approx(cfg.temp_max)
    model.clamp_temperature_()
    assert model.temp.item() == pytest.approx(math.log(cfg.temp_max))
    with torch.no_grad():
        model.temp.fill_(-50.0)
    model.clamp_temperature_()
    assert model.temperature.item() == pytest.approx(cfg.temp_min)
    ratios = []
    for tau in (0.02, 0.2):
        with torch.no_grad():
            model.temp.fill_(math.log(tau))
            model.temp.add_(0.01)
        ratios.append(model.temperature.item() / tau)
    assert ratios == pytest.approx([math.exp(0.01)] * 2)
    tau = model.temperature
    (1.0 / tau).backward()  # the gradient reaches the log parameter: d(1/tau)/d(log tau) = -1/tau
    assert model.temp.grad.item() == pytest.approx(-1.0 / tau.item())


def test_mlm_decoder_is_the_word_embedding_and_stays_tied(model, tmp_path):
    emb = model.text.get_input_embeddings().weight
    assert model.mlm_head.decoder.weight is emb
    assert model.mlm_head.decoder.weight.data_ptr() == emb.data_ptr()
    save_model(model, tmp_path / "m")
    stored = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert "mlm_head.decoder.weight" not in stored  # stored once, under the embedding's name
    loaded = load_model(tmp_path / "m")
    emb2 = loaded.text.get_input_embeddings().weight
    assert loaded.mlm_head.decoder.weight is emb2
    with torch.no_grad():
        emb2[3, 0] += 1.0
    assert loaded.mlm_head.decoder.weight[3, 0] == emb2[3, 0]
    assert count_parameters(loaded) == count_parameters(model)
    assert count_parameters(model) == sum(v.numel() for v in stored.values() if v.is_floating_point())


def test_save_load_round_trip_is_bitwise(model, batch, tmp_path):
    images, ids, mask = batch
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("old")  # the directory is replaced as a whole
    save_model(model, target)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((target / "config.json").read_text())
    assert meta["config"]["text_encoder"] is None
    assert meta["config"]["text_config"]["vocab_size"] == model.vocab_size
    assert meta["config"]["text_config"]["num_hidden_layers"] == model.config.text_layers
    loaded = load_model(target)
    assert loaded is not model and not loaded.training
    index = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        for m_out, l_out in zip(model(images, ids, mask), loaded(images, ids, mask), strict=True):
            assert torch.equal(m_out, l_out)
        a = model.encode_text(ids, mask)[0]
        im = model.encode_image(images)[0]
        assert torch.equal(model.itm_logits(a, mask, im, index), loaded.itm_logits(a, mask, im, index))
        assert torch.equal(model.mlm_logits(a, mask, im, index), loaded.mlm_logits(a, mask, im, index))
    assert loaded.new_parameter_names() == model.new_parameter_names()
    assert loaded.temperature.item() == model.temperature.item()


def test_saving_the_same_weights_gives_the_same_bytes(model, tmp_path):
    """Byte-identical outputs for identical weights (what DVC and a reviewer's checksum compare), saved from
    separate processes too: the file's metadata map has no order to vary."""
    import subprocess
    import sys

    save_model(model, tmp_path / "a")
    code = ("import sys, torch; from ccrk.models import load_model, save_model; "
            "save_model(load_model(sys.argv[1]), sys.argv[2])")
    for name in ("b", "c", "d"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "a"), str(tmp_path / name)], check=True)
    first = (tmp_path / "a" / "model.safetensors").read_bytes()
    for name in ("b", "c", "d"):
        assert (tmp_path / name / "model.safetensors").read_bytes() == first


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="format"):
        load_model(tmp_path)


def _reference_fusion_layer(layer, text, mask, image):
    """Per-sample, per-head attention written out with explicit softmax over the non-padded keys."""
    heads = layer.self_attn.heads

    def attend(attn, x, ctx, keep):
        q, k, v = attn.query(x), attn.key(ctx), attn.value(ctx)
        d = q.shape[-1] // heads
        outs = []
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            scores = q[:, sl] @ k[:, sl].T / math.sqrt(d)
            scores[:, ~keep] = float("-inf")
            outs.append(torch.softmax(scores, dim=-1) @ v[:, sl])
        return torch.cat(outs, dim=-1)

    rows = []
    for b in range(text.shape[0]):
        x, keep = text[b], mask[b].bool()
        all_image = torch.ones(image.shape[1], dtype=torch.bool)
        x = layer.self_output.LayerNorm(x + layer.self_output.dense(attend(layer.self_attn, x, x, keep)))
        x = layer.cross_output.LayerNorm(x + layer.cross_output.dense(attend(layer.cross_attn, x, image[b], all_image)))
        x = layer.output.LayerNorm(x + layer.output.dense(F.gelu(layer.intermediate(x))))
        rows.append(x)
    return torch.stack(rows)


def test_fusion_matches_reference_and_is_bidirectional():
    torch.manual_seed(0)
    enc = FusionEncoder(1, hidden=32, heads=4, intermediate=64, vision_width=24, eps=1e-5).eval()
    text = torch.randn(3, 7, 32)
    image = torch.randn(3, 5, 24)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    with torch.no_grad():
        out = enc(text, mask, image)
        ref = _reference_fusion_layer(enc.layers[0], text, mask, image)
        assert torch.allclose(out, ref, atol=1e-5)
        # Changing a LATER token changes the state at an EARLIER position: not causal.
        changed = text.clone()
        changed[0, 5] += 1.0
        out2 = enc(changed, mask, image)
        assert not torch.allclose(out2[0, 1], out[0, 1], atol=1e-4)
        # Changing a padded position changes nothing at the real positions.
        changed = text.clone()
        changed[1, 5] += 10.0
        out3 = enc(changed, mask, image)
        assert torch.allclose(out3[1, :4], out[1, :4], atol=1e-6)


def test_model_fusion_is_bidirectional_and_respects_padding(model, batch):
    images, ids, mask = batch
    with torch.no_grad():
        image_tokens, _ = model.encode_image(images)
        text_tokens, _ = model.encode_text(ids, mask)
        index = torch.tensor([0, 0, 1, 1, 2, 2])
        base = model.fuse(text_tokens, mask, image_tokens, index)
        later = text_tokens.clone()
        later[0, 4] += 1.0  # row 0 has 8 real tokens
        assert not torch.allclose(model.fuse(later, mask, image_tokens, index)[0, 1], base[0, 1], atol=1e-4)

        row = 4  # "blue": 3 real tokens then padding
        real = mask[row].bool()
        assert real.sum() == 3
        ids2 = ids.clone()
        ids2[row, 6] = 7  # overwrite a padding position with a real word id
        t2, f2 = model.encode_text(ids2, mask)
        _, f1 = model.encode_text(ids, mask)
        assert torch.allclose(t2[row, real], text_tokens[row, real], atol=1e-6)
        assert torch.allclose(f2[row], f1[row], atol=1e-6)
        fused2 = model.fuse(t2, mask, image_tokens, index)
        assert torch.allclose(fused2[row, real], base[row, real], atol=1e-5)
        itm1 = model.itm_logits(text_tokens, mask, image_tokens, index)
        itm2 = model.itm_logits(t2, mask, image_tokens, index)
        assert torch.allclose(itm1, itm2, atol=1e-5)


def _tiny_xlmr(**kw) -> XLMRobertaConfig:
    return XLMRobertaConfig(
        vocab_size=40, hidden_size=32, num_hidden_layers=6, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, type_vocab_size=1, layer_norm_eps=1e-5, **kw
    )


def test_text_encoder_from_directory_and_fusion_init(tmp_path):
    torch.manual_seed(0)
    source = XLMRobertaModel(_tiny_xlmr())
    source.save_pretrained(tmp_path / "xlmr")
    cfg = ModelConfig(text_encoder=str(tmp_path / "xlmr"), text_layers=2, fusion_layers=3, fusion_init_from_text=True)
    model = build_model(cfg)
    src = source.encoder.layer
    assert len(model.text.encoder.layer) == 2
    assert torch.equal(model.text.encoder.layer[1].output.dense.weight, src[1].output.dense.weight)
    assert torch.equal(model.text.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)
    for i, layer in enumerate(model.fusion.layers):
        s = src[2 + i]
        assert torch.equal(layer.self_attn.query.weight, s.attention.self.query.weight)
        assert torch.equal(layer.self_attn.value.bias, s.attention.self.value.bias)
        assert torch.equal(layer.self_output.dense.weight, s.attention.output.dense.weight)
        assert torch.equal(layer.self_output.LayerNorm.weight, s.attention.output.LayerNorm.weight)
        assert torch.equal(layer.intermediate.weight, s.intermediate.dense.weight)
        assert torch.equal(layer.output.dense.weight, s.output.dense.weight)
        assert torch.equal(layer.output.LayerNorm.bias, s.output.LayerNorm.bias)
        assert layer.cross_attn.key.weight.shape == (32, 192)  # from the ViT-Tiny width
    new = model.new_parameter_names()
    assert "fusion.layers.0.cross_attn.key.weight" in new
    assert "fusion.layers.0.self_attn.query.weight" not in new
    assert "mlm_head.dense.weight" in new  # the checkpoint had no LM head

    # The text part alone reproduces the source model's first two layers.
    ids = torch.tensor([[0, 5, 6, 7, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    source.encoder.layer = source.encoder.layer[:2]
    with torch.no_grad():
        expected = source.eval()(input_ids=ids, attention_mask=mask).last_hidden_state
        got, _ = model.eval().encode_text(ids, mask)
    assert torch.allclose(got, expected, atol=1e-6)


def test_text_source_layers_and_pretrained_lm_head(tmp_path):
    torch.manual_seed(0)
    source = XLMRobertaForMaskedLM(_tiny_xlmr())
    source.save_pretrained(tmp_path / "mlm")
    cfg = ModelConfig(
        text_encoder=str(tmp_path / "mlm"), text_source_layers=[1, 3, 5, 0], text_layers=2, fusion_layers=2,
        fusion_init_from_text=True, itm_head="mlp",
    )
    model = build_model(cfg)
    src = source.roberta.encoder.layer
    assert torch.equal(model.text.encoder.layer[0].attention.self.key.weight, src[1].attention.self.key.weight)
    assert torch.equal(model.text.encoder.layer[1].attention.self.key.weight, src[3].attention.self.key.weight)
    assert torch.equal(model.fusion.layers[0].self_attn.key.weight, src[5].attention.self.key.weight)
    assert torch.equal(model.fusion.layers[1].self_attn.key.weight, src[0].attention.self.key.weight)
    assert torch.equal(model.mlm_head.dense.weight, source.lm_head.dense.weight)
    assert torch.equal(model.mlm_head.bias, source.lm_head.bias)
    assert model.mlm_head.decoder.weight is model.text.get_input_embeddings().weight
    new = model.new_parameter_names()
    assert not any(n.startswith("mlm_head.") for n in new)
    assert {"itm_head.0.weight", "itm_head.3.weight"} <= new

    with pytest.raises(ModelConfigError, match="layer 7"):
        build_model(ModelConfig(text_encoder=str(tmp_path / "mlm"), text_source_layers=[7, 1], text_layers=2))
    with pytest.raises(FileNotFoundError, match="model.text_encoder"):
        build_model(ModelConfig(text_encoder=str(tmp_path / "nowhere")))


def test_new_parameter_names(model):
    new = model.new_parameter_names()
    names = {n for n, _ in model.named_parameters()}
    assert new <= names
    for n in ("vision_proj.weight", "text_proj.bias", "temp", "itm_head.weight",
              "fusion.layers.1.cross_attn.value.weight", "mlm_head.bias"):
        assert n in new
    # Not initialised from text: the whole fusion stack is new.
    assert "fusion.layers.0.self_attn.query.weight" in new
    assert not any(n.startswith(("text.", "image.")) for n in new)
    assert "text.embeddings.word_embeddings.weight" not in new


def test_local_image_weights(tmp_path):
    torch.manual_seed(3)
    donor = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=64)
    save_file(donor.state_dict(), str(tmp_path / "vit.safetensors"))
    model = build_model(ModelConfig(image_pretrained=str(tmp_path / "vit.safetensors")), vocab_size=50)
    own = model.image.backbone.state_dict()
    assert all(torch.equal(own[k], v) for k, v in donor.state_dict().items())
    report = model.image_load_report
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []

    # A 224-px classifier checkpoint (.pth): head is unexpected, pos_embed is resampled to 64 px by timm's filter.
    big = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10)
    torch.save({"model": big.state_dict()}, tmp_path / "vit224.pth")
    report = load_local_weights(donor, tmp_path / "vit224.pth")
    assert report.unexpected == ["head.bias", "head.weight"] and report.mismatched == [] and report.missing == []
    assert "pos_embed" in report.loaded and donor.pos_embed.shape == (1, 17, 192)
    assert torch.equal(donor.blocks[0].attn.qkv.weight, big.blocks[0].attn.qkv.weight)

    with pytest.raises(FileNotFoundError, match="model.image_pretrained.*missing.pth"):
        build_model(ModelConfig(image_pretrained=str(tmp_path / "missing.pth")), vocab_size=50)
    with pytest.raises(FileNotFoundError, match="model.image_pretrained.*missing.pth"):
        load_local_weights(donor, tmp_path / "missing.pth")
    save_file({"unrelated.weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="no tensor"):
        load_local_weights(donor, tmp_path / "other.safetensors")


def test_swin_image_encoder():
    cfg = ModelConfig(image_encoder="swin_tiny_patch4_window7_224", image_kwargs={"window_size": 2})
    model = build_model(cfg, vocab_size=50).eval()
    images = torch.randn(2, 3, 64, 64)
    ids = torch.tensor([[0, 5, 6, 2], [0, 7, 2, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        tokens, feat = model.encode_image(images)
        grid = model.image.backbone.forward_features(images)
        fused = model.fuse(model.encode_text(ids, mask)[0], mask, tokens)
    assert tokens.shape == (2, 1 + 2 * 2, 768)  # mean token + a 2x2 grid at 64 px
    assert torch.allclose(tokens[:, 0], grid.flatten(1, 2).mean(1), atol=1e-6)
    assert torch.equal(tokens[:, 1:], grid.flatten(1, 2))
    assert feat.shape == (2, 256) and fused.shape == (2, 4, 128)


def test_config_dict_round_trip_and_errors():
    cfg = ModelConfig.tiny()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ModelConfigError, match="fusion_layer"):
        ModelConfig.from_dict({"fusion_layer": 2})
    with pytest.raises(ModelConfigError, match="model.text_layers"):
        ModelConfig(text_layers=0)
    with pytest.raises(ModelConfigError, match="model.fusion_layers"):
        ModelConfig.from_dict({"fusion_layers": True})
    with pytest.raises(ModelConfigError, match="temp_init"):
        ModelConfig(temp_init=0.9)
    with pytest.raises(ModelConfigError, match="itm_head"):
        ModelConfig(itm_head="bilinear")
    with pytest.raises(ModelConfigError, match=r"model\.temp_param must be one of \['linear', 'log'\]"):
        ModelConfig(temp_param="exp")
    with pytest.raises(ModelConfigError, match="text_source_layers"):
        ModelConfig(text_source_layers=[1, 2], text_layers=2, fusion_layers=2, fusion_init_from_text=True)
    with pytest.raises(ModelConfigError, match="vocab_size"):
        build_model(ModelConfig.tiny())
    paper = ModelConfig.paper(image_pretrained=None, text_encoder="/models/xlm-roberta-large")
    assert paper.text_source_layers == list(range(1, 24, 2)) and paper.fusion_layers == 6
    with pytest.raises(ModelConfigError, match="max_length"):
        build_model(ModelConfig(max_length=100), vocab_size=50)


# -- pooling, length buckets (the embedded default's from-scratch fixes) -----------------------------------


def _variant(tokenizer, **changes):
    torch.manual_seed(0)
    config = ModelConfig.tiny()
    for key, value in changes.items():
        setattr(config, key, value)
    config.__post_init__()
    return build_model(config, tokenizer=tokenizer).eval()


def test_mean_text_pooling_is_the_masked_mean_of_the_token_states(tokenizer, batch):
    model = _variant(tokenizer, text_pooling="mean")
    _, ids, mask = batch
    with torch.no_grad():
        tokens, feat = model.encode_text(ids, mask)
        itm = model.itm_logits(tokens, mask, model.encode_image(batch[0])[0], torch.tensor([0, 0, 1, 1, 2, 2]))
    for row in range(ids.shape[0]):  # loop reference: average the real tokens one by one
        real = [tokens[row, j] for j in range(ids.shape[1]) if mask[row, j]]
        want = F.normalize(model.text_proj(torch.stack(real).sum(0) / len(real)), dim=-1)
        torch.testing.assert_close(feat[row], want, atol=1e-6, rtol=0)
    assert itm.shape == (6, 2)


def test_attention_image_pooling_knows_where_a_grid_token_is(tokenizer):
    from ccrk.models.image import AttentionPool

    model = _variant(tokenizer, image_encoder="test_resnet", image_pooling="attention",
                     image_kwargs={"output_stride": 16})
    with torch.no_grad():
        tokens = model.image(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, 1 + 16, model.vision_width)  # 4x4 grid at stride 16, pooled token in front
    assert "image.pool.pos_embed" in model.new_parameter_names()
    pool = AttentionPool(32, tokens=4, heads=2).eval()
    torch.manual_seed(3)
    grid = torch.randn(1, 4, 32)
    swapped = grid[:, [1, 0, 2, 3]]  # the same content in other cells: its mean is unchanged
    with torch.no_grad():
        assert not torch.allclose(pool(grid)[:, 0], pool(swapped)[:, 0], atol=1e-4)
    with pytest.raises(ValueError, match="built for 4 grid tokens, got 9"):
        pool(torch.randn(1, 9, 32))
    with pytest.raises(ValueError, match="has a \\[CLS\\] token"):
        _variant(tokenizer, image_pooling="attention")  # the tiny default is a ViT


def test_length_buckets_give_the_features_of_one_padded_batch(tokenizer, batch):
    _, ids, mask = batch
    plain, bucketed = _variant(tokenizer), _variant(tokenizer, text_length_buckets=3)
    bucketed.load_state_dict(plain.state_dict())
    with torch.no_grad():
        tokens, feat = plain.encode_text(ids, mask)
        tokens_b, feat_b = bucketed.encode_text(ids, mask)
    torch.testing.assert_close(feat_b, feat, atol=1e-5, rtol=0)
    real = mask.bool()
    torch.testing.assert_close(tokens_b[real], tokens[real], atol=1e-5, rtol=0)
    # Left padding cannot be cut at the end: it runs as one batch, with the same result.
    left_ids, left_mask = ids.flip(1), mask.flip(1)
    with torch.no_grad():
        torch.testing.assert_close(bucketed.encode_text(left_ids, left_mask)[1],
                                   plain.encode_text(left_ids, left_mask)[1], atol=0, rtol=0)


def test_channels_last_image_tower_computes_the_same_and_saves_plain_weights(tokenizer, batch, tmp_path):
    images = batch[0]
    kw = {"image_encoder": "test_resnet", "image_kwargs": {"output_stride": 16}}
    plain, fast = _variant(tokenizer, **kw), _variant(tokenizer, image_channels_last=True, **kw)
    convs = [m.weight for m in fast.image.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert any(not w.is_contiguous() for w in convs)  # (a 1x1 kernel is both)
    # Same initial weights (same seed, only the memory order differs), same features up to summation order.
    for (name, a), b in zip(plain.state_dict().items(), fast.state_dict().values()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        want, got = plain.encode_image(images), fast.encode_image(images)
    for w, g in zip(want, got):  # measured: differences ~5e-7 at values up to 1.4; 1e-4 leaves any CPU room
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    # Weights are written contiguous and come back channels-last, computing exactly what was saved.
    save_model(fast, tmp_path / "m")
    stored = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert all(t.is_contiguous() for t in stored.values())
    loaded = load_model(tmp_path / "m").eval()
    assert loaded.config.image_channels_last is True
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in loaded.image.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        for w, g in zip(got, loaded.encode_image(images)):
            assert torch.equal(g, w)
    with pytest.raises(ModelConfigError, match="model.image_channels_last"):
        ModelConfig(image_channels_last="yes")


def test_new_model_keys_are_validated_by_name():
    with pytest.raises(ModelConfigError, match="model.text_pooling"):
        ModelConfig(text_pooling="max")
    with pytest.raises(ModelConfigError, match="model.image_pooling"):
        ModelConfig(image_pooling="gem")
    with pytest.raises(ModelConfigError, match="model.text_length_buckets must be >= 1"):
        ModelConfig(text_length_buckets=0)
