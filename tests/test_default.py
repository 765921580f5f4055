"Fast checks of `ecor.default` as an installed module (the notebook holds the real-photo measurements, flagged slow)."
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoModel, AutoTokenizer
from ecor.towers import Towers
from ecor.default import (IMAGENET_CLASSES_FILE, DefaultConfig, ImageNetBridgeTower, MiniLMTextTower, default_towers,
                          embed_texts, fit_cosine_scale, lite_preprocess, load_imagenet_classes, minilm_path)

TEXTS = ['a photo of a cat', 'This is a photo of a tabby cat because there is whiskers.', 'a']


@pytest.fixture(scope='module')
def towers(): return default_towers()


def test_class_name_file():
    "1,000 names, one a line, no header, no blanks; only the two duplicates of the source list."
    lines = IMAGENET_CLASSES_FILE.read_text(encoding='utf-8').split('\n')
    assert lines[-1] == '' and len(lines) == 1001
    names = lines[:-1]
    assert all(n.strip() == n and n for n in names)
    assert names == load_imagenet_classes()
    assert len(set(names)) == 998 and names[0] == 'tench' and names[281] == 'tabby cat' and names[999] == 'toilet paper'


def test_minilm_exact(towers):
    "The embeds path equals the plain AutoModel + sentence-transformers mean pooling."
    tok, bert = AutoTokenizer.from_pretrained(str(minilm_path())), AutoModel.from_pretrained(str(minilm_path())).eval()
    with torch.no_grad():
        b = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors='pt')
        h, m = bert(**b).last_hidden_state, b['attention_mask'][..., None].float()
        ref = F.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        got = towers.text(TEXTS)
    assert got.shape == (3, 384)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(embed_texts(towers.text, TEXTS, batch_size=2), ref, atol=1e-5, rtol=0)


def test_minilm_grad_and_frozen(towers):
    text = towers.text
    assert not any(p.requires_grad for p in text.parameters())
    text.train(); assert not text.bert.training; text.eval()
    ids, mask, eos = text.pack(text.tokenize(TEXTS))
    emb = text.embed_tokens(ids).detach().requires_grad_()
    text.pool(text.encode(emb, mask), mask, eos).sum().backward()
    assert emb.grad.abs().sum() > 0


def test_bridge_head(towers):
    img = towers.image
    feats = torch.randn(5, 2280, generator=torch.Generator().manual_seed(0)) * 3
    out = img.head(feats)
    assert out.shape == (5, 384)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(img.class_embeds.norm(dim=-1), torch.ones(1000))
    # probabilities concentrated on one class give that class's text embedding
    one = torch.cat([torch.zeros(1, 1280), torch.full((1, 1000), -1e4)], 1); one[0, 1280 + 7] = 0
    torch.testing.assert_close(img.head(one)[0], img.class_embeds[7])
    with pytest.raises(ValueError, match='2280'): img.head(torch.zeros(2, 1000))


def test_features_layout(towers):
    img = towers.image
    px = img.preprocess([Image.new('RGB', (32, 32), (200, 30, 30)), Image.new('L', (120, 80), 90)])
    assert px.shape == (2, 3, 224, 224)
    with torch.no_grad():
        f = img.features(px)
        assert f.shape == (2, img.feature_dim) == (2, 2280)
        torch.testing.assert_close(f[:, 1280:], img.net(px), atol=1e-4, rtol=1e-4)
    img.train(); assert not img.net.training; img.eval()
    assert not any(p.requires_grad for p in img.parameters())


def test_model_adapter_zero_init_equals_bridge(towers):
    "ECOR's image adapter on the default towers: reads all 2,280 cached features, starts at the bridge, trains."
    from ecor.model import ECOR, ECORConfig
    ad = ECOR(towers, ECORConfig(image_adapter=True))
    feats = torch.randn(4, 2280, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ad.image_embeds(features=feats), towers.image.head(feats), atol=1e-6, rtol=0)
    assert ad.adapter.in_features == 2280
    ad.image_embeds(features=feats).sum().backward()
    assert ad.adapter.weight.grad.abs().sum() > 0


def test_default_towers(towers):
    assert isinstance(towers, Towers)
    assert (towers.name, towers.cosine_scale, towers.image.dim, towers.text.dim) == ('ecor-default-effnetlite0-minilm', 16.0, 384, 384)
    with pytest.raises(ValueError, match='cosine_scale'): default_towers(DefaultConfig(cosine_scale=-1))


def test_preprocess():
    px = lite_preprocess([Image.new('RGB', (32, 32), (255, 0, 0))])
    torch.testing.assert_close(px[0, :, 5, 5], torch.tensor([1., -1., -1.]))
    with pytest.raises(ValueError, match='no images'): lite_preprocess([])


def test_fit_cosine_scale():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(20000, 10, generator=g) * 0.4
    y = torch.multinomial(F.softmax(25 * s, -1), 1, generator=g)[:, 0]
    assert abs(fit_cosine_scale(s, y) - 25) < 1.5
