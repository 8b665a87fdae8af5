"""Models of issue 16's benchmark, built in torch with random weights (torchvision and timm are not installed and
nothing is downloaded): the same layer shapes as torchvision's mobilenet_v3_small, resnet18, efficientnet_b0 and
vgg16, a timm-style vit_tiny_patch16_224, and the users' problem-3 model (tests/profiling/problem3.py).

Each builder returns (module, input side); parameter counts match the originals to within a few percent.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _act(kind):
    return {"relu": nn.ReLU(), "hardswish": nn.Hardswish(), "silu": nn.SiLU()}[kind]


class SqueezeExcite(nn.Module):
    def __init__(self, ch, squeeze):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(ch, squeeze, 1), nn.Conv2d(squeeze, ch, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    """MobileNetV3 / EfficientNet MBConv: expand 1x1, depthwise kxk, squeeze-excite, project 1x1."""

    def __init__(self, cin, expand, cout, k, stride, se, act):
        super().__init__()
        mid = expand
        layers = []
        if mid != cin:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), _act(act)]
        layers += [nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False), nn.BatchNorm2d(mid), _act(act)]
        if se:
            layers.append(SqueezeExcite(mid, max(8, (mid // 4 + 7) // 8 * 8) if se is True else se))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


def mobilenet_v3_small():
    cfg = [  # cin, expand, cout, k, stride, se, act (torchvision's table)
        (16, 16, 16, 3, 2, True, "relu"), (16, 72, 24, 3, 2, False, "relu"), (24, 88, 24, 3, 1, False, "relu"),
        (24, 96, 40, 5, 2, True, "hardswish"), (40, 240, 40, 5, 1, True, "hardswish"),
        (40, 240, 40, 5, 1, True, "hardswish"), (40, 120, 48, 5, 1, True, "hardswish"),
        (48, 144, 48, 5, 1, True, "hardswish"), (48, 288, 96, 5, 2, True, "hardswish"),
        (96, 576, 96, 5, 1, True, "hardswish"), (96, 576, 96, 5, 1, True, "hardswish"),
    ]
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish(),
        *[InvertedResidual(*c) for c in cfg],
        nn.Conv2d(96, 576, 1, bias=False), nn.BatchNorm2d(576), nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(576, 1024), nn.Hardswish(), nn.Linear(1024, 1000),
    )
    return net, 224


def efficientnet_b0():
    stages = [(1, 16, 1, 3, 1), (6, 24, 2, 3, 2), (6, 40, 2, 5, 2), (6, 80, 3, 3, 2), (6, 112, 3, 5, 1),
              (6, 192, 4, 5, 2), (6, 320, 1, 3, 1)]  # expand ratio, channels, repeats, kernel, stride
    layers, cin = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.SiLU()], 32
    for ratio, cout, repeats, k, stride in stages:
        for i in range(repeats):
            layers.append(InvertedResidual(cin, cin * ratio, cout, k, stride if i == 0 else 1, max(1, cin // 4), "silu"))
            cin = cout
    layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.SiLU(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(1280, 1000)]
    return nn.Sequential(*layers), 224


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.down(x))


def resnet18():
    layers, cin = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(512, 1000)]
    return nn.Sequential(*layers), 224


def vgg16():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    layers += [nn.AdaptiveAvgPool2d(7), nn.Flatten(1), nn.Linear(512 * 49, 4096), nn.ReLU(),
               nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000)]
    return nn.Sequential(*layers), 224


class ViT(nn.Module):
    """timm vit_tiny_patch16_224: 16x16 patches, width 192, 12 blocks of 3 heads, MLP 768, class token."""

    def __init__(self, dim=192, depth=12, heads=3, side=224, patch=16):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (side // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            [nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout=0.0, activation="gelu", batch_first=True,
                                        norm_first=True) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 1000)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


def vit_tiny_patch16_224():
    return ViT(), 224


def problem3():
    from tests.profiling.problem3 import Problem3Model

    return Problem3Model(), 256


MODELS = {
    "mobilenet_v3_small": mobilenet_v3_small, "resnet18": resnet18, "efficientnet_b0": efficientnet_b0,
    "vit_tiny_patch16_224": vit_tiny_patch16_224, "problem3": problem3, "vgg16": vgg16,
}
