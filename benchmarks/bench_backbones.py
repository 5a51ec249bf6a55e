"""CPU cost of the transformers backbones (docs/models.md, docs/performance.md): forward images/s
at 224 px for the shipped families' real architectures (random weights: the cost does not depend
on the values, and nothing is downloaded), the frozen mode's head training on 8,500 cached feature
rows (Reg and Reg+Rank with the shipped recipe), and the fine-tune step time of tiny configs.

    python benchmarks/bench_backbones.py                 # all, 1 thread
    python benchmarks/bench_backbones.py --only dinov2_small resnet50 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from aadb_toolkit.models import config_from_dict
from aadb_toolkit.models.archs import clip_arch, dinov2_arch, resnet_arch
from aadb_toolkit.models.archs._hf import HFBackbone
from aadb_toolkit.models.network import build_network
from aadb_toolkit.models.optim import build_optimizer

VIT = dict(num_hidden_layers=12, image_size=224)
#: the public checkpoints' architectures (their config.json values that matter for cost)
ARCHS = {
    "dinov2_small": (dinov2_arch.HF_SPEC, dict(VIT, hidden_size=384, num_attention_heads=6, intermediate_size=1536,
                                            patch_size=14, model_type="dinov2")),
    "dinov2_base": (dinov2_arch.HF_SPEC, dict(VIT, hidden_size=768, num_attention_heads=12, patch_size=14,
                                           model_type="dinov2")),
    "clip_vit_b16": (clip_arch.HF_SPEC, dict(VIT, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                                          patch_size=16, model_type="clip_vision_model")),
    "clip_vit_l14": (clip_arch.HF_SPEC, dict(VIT, num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                                          intermediate_size=4096, patch_size=14, model_type="clip_vision_model")),
    "resnet50": (resnet_arch.HF_SPEC, dict(model_type="resnet", layer_type="bottleneck", depths=[3, 4, 6, 3],
                                        hidden_sizes=[256, 512, 1024, 2048], embedding_size=64)),
}


def forward_rate(name: str, batch: int, repeats: int) -> dict:
    spec, arch = ARCHS[name]
    torch.manual_seed(0)
    net = HFBackbone(spec, arch).eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        net(x[:1])  # warm-up
        t = time.perf_counter()
        for _ in range(repeats):
            f = net(x)
        dt = time.perf_counter() - t
    return {"backbone": name, "feature_size": int(f.shape[1]), "images_per_s": round(batch * repeats / dt, 2),
            "ms_per_image": round(1000 * dt / (batch * repeats), 1)}


def head_training(dim: int, rank: bool) -> dict:
    """The frozen recipe's head training on 8,500 cached rows: 30 epochs of batch 128 (Reg), or
    one pass over 500,000 pairs, 128 pairs a step (Reg+Rank)."""
    from aadb_toolkit.models.losses import Batch, total_loss

    cfg = config_from_dict({"name": "h", "model": {"mode": "frozen"}, "optim": {"optimizer": "adamw", "lr": 1e-3,
                                                                               "batch_size": 128}})
    from aadb_toolkit.models.heads import RegressionHead

    head = RegressionHead(dim)  # what HeadOnFeatures steps in frozen mode
    opt = build_optimizer(head, cfg.optim)
    feats, y = torch.randn(8500, dim), torch.rand(8500)
    steps = 500_000 // 128 if rank else 30 * (8500 // 128)
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(steps):
        if rank:
            i = torch.randint(0, 8500, (256,), generator=g)
            ar = torch.arange(128)
            b = Batch(targets=y[i], labels=torch.zeros(256, dtype=torch.long), pair_first=ar, pair_second=ar + 128,
                      pair_delta=torch.ones(128))
            w = {"regression": 1.0, "rank": 1.0}
        else:
            i = torch.randint(0, 8500, (128,), generator=g)
            b, w = Batch(targets=y[i], labels=torch.zeros(128, dtype=torch.long)), {"regression": 1.0}
        loss, _ = total_loss(head(feats[i]), b, w, 0.02)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"feature_size": dim, "loss": "Reg+Rank" if rank else "Reg", "steps": steps,
            "seconds": round(time.perf_counter() - t, 2)}


def tiny_finetune_step(batch: int = 8) -> dict:
    """Step time (forward, backward, AdamW) of the tests' tiny DINOv2 (hidden 32, 2 layers) at 32 px."""
    cfg = config_from_dict({"name": "t", "model": {"arch": "dinov2"}, "data": {"warp_size": 36, "crop_size": 32},
                            "optim": {"optimizer": "adamw", "layer_decay": 0.75}})
    net = build_network(cfg, dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  image_size=32, patch_size=8, model_type="dinov2"))
    opt = build_optimizer(net, cfg.optim)
    x, y = torch.randn(batch, 3, 32, 32), torch.rand(batch)
    times = []
    for _ in range(21):
        t = time.perf_counter()
        loss = ((net(x)["score"] - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    times = sorted(times[1:])
    return {"config": "tiny dinov2 (hidden 32, 2 layers, 32 px)", "batch": batch,
            "median_step_ms": round(1000 * times[len(times) // 2], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=list(ARCHS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"threads": args.threads, "forward": [], "head_training_8500": [], "tiny_finetune": tiny_finetune_step()}
    print(json.dumps(out["tiny_finetune"]), flush=True)
    for name in args.only:
        out["forward"].append(forward_rate(name, args.batch, args.repeats))
        print(json.dumps(out["forward"][-1]), flush=True)
    for dim in (384, 1024):
        for rank in (False, True):
            out["head_training_8500"].append(head_training(dim, rank))
            print(json.dumps(out["head_training_8500"][-1]), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
