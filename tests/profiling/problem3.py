"""The users' model (issue 16): problem-3 of n-zhuravlev/WWDC25-FaceApp, rebuilt in torch with random weights.

Same blocks as their ``test-model-conversion.py``: ``CustomConv2d`` squares its weight in forward, an FFC block
goes through ``rfftn``/``irfftn``, transformer blocks use scaled dot-product attention; their int8 path is
coremltools' torch-side ``PostTrainingQuantizer`` (int8, per channel), then trace and convert. ``blocks`` scales
the model down for tests (the defaults are theirs: 8.3M parameters).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.fft import irfftn, rfftn

USERS_BLOCKS = (5, 5, 5, 10, 2, 2, 2)


class CustomConv2d(nn.Conv2d):
    def _conv_forward(self, input, weight, bias):
        return super()._conv_forward(input, weight ** 2, bias)


class SimpleConvBlock(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.ffn = nn.Sequential(CustomConv2d(in_ch, out_ch, 3, padding=1), nn.GELU(),
                                 CustomConv2d(out_ch, out_ch, 3, padding=1), nn.GELU())

    def forward(self, x):
        return self.ffn(x)


class SimpleFFCBlock(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.pre = CustomConv2d(in_ch, out_ch, kernel_size=1)
        self.ffn = nn.Sequential(CustomConv2d(2 * out_ch, 2 * out_ch, 3, padding=1), nn.GELU(),
                                 CustomConv2d(2 * out_ch, 2 * out_ch, 3, padding=1), nn.GELU())
        self.post = CustomConv2d(out_ch, out_ch, kernel_size=1)

    def forward(self, x):
        out = self.pre(x).to(dtype=torch.float32)
        out = rfftn(out, dim=(-2, -1), norm="ortho")
        out = torch.cat((out.real, out.imag), dim=1)
        out = self.ffn(out).to(dtype=torch.float32)
        real, imag = torch.split(out, out.shape[1] // 2, dim=1)
        out = irfftn(torch.complex(real, imag), dim=(-2, -1), norm="ortho")
        return self.post(out)


class SimpleTransformerBlock(nn.Module):
    HEADS, QK, V = 8, 32, 64

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.q = CustomConv2d(in_ch, self.HEADS * self.QK, kernel_size=1)
        self.k = CustomConv2d(in_ch, self.HEADS * self.QK, kernel_size=1)
        self.v = CustomConv2d(in_ch, self.HEADS * self.V, kernel_size=1)
        self.proj = CustomConv2d(self.HEADS * self.V, out_ch, kernel_size=1)
        self.ffn = nn.Sequential(CustomConv2d(out_ch, out_ch * 4, kernel_size=1), nn.GELU(),
                                 CustomConv2d(out_ch * 4, out_ch, kernel_size=1))

    def forward(self, x):
        b, _, h, w = x.shape
        q = self.q(x).view(-1, self.HEADS, self.QK, h * w).permute(0, 1, 3, 2)
        k = self.k(x).view(-1, self.HEADS, self.QK, h * w).permute(0, 1, 3, 2)
        v = self.v(x).view(-1, self.HEADS, self.V, h * w).permute(0, 1, 3, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.permute(0, 1, 3, 2).reshape(-1, self.HEADS * self.V, h, w)
        return self.ffn(self.proj(out))


class Down(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, kernel_size=2, stride=2)


class Up(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")


def _stack(block, count, in_ch, out_ch):
    layers = []
    for _ in range(count):
        layers.append(block(in_ch, out_ch))
        in_ch = out_ch
    return nn.Sequential(*layers)


class Problem3Model(nn.Module):
    """Their SimpleTransformerModelWithCustomConv2d; input side a multiple of 32."""

    def __init__(self, blocks=USERS_BLOCKS):
        super().__init__()
        conv, conv2, attn, attn2, ffc1, ffc2, ffc3 = blocks
        self.blocks = nn.Sequential(
            CustomConv2d(3, 20, 3, stride=2, padding=1), CustomConv2d(20, 40, 3, stride=2, padding=1),
            _stack(SimpleConvBlock, conv, 40, 64), Down(),
            _stack(SimpleConvBlock, conv2, 64, 96), Down(),
            _stack(SimpleTransformerBlock, attn, 96, 128), Down(),
            _stack(SimpleTransformerBlock, attn2, 128, 128), Up(),
            _stack(SimpleFFCBlock, ffc1, 128, 96), Up(),
            _stack(SimpleFFCBlock, ffc2, 96, 64), Up(),
            _stack(SimpleFFCBlock, ffc3, 64, 40), Up(),
            CustomConv2d(40, 20, 3, padding=1), Up(),
            CustomConv2d(20, 3, 3, padding=1), nn.Sigmoid(),
        )

    def forward(self, x):
        return self.blocks(x)


def users_int8(model):
    """Their int8 path: coremltools.optimize.torch PostTrainingQuantizer, int8 per channel (their config)."""
    from coremltools.optimize.torch.quantization import PostTrainingQuantizer, PostTrainingQuantizerConfig

    config = PostTrainingQuantizerConfig.from_dict(
        {"global_config": {"weight_dtype": "int8", "granularity": "per_channel"}, "module_name_configs": {}})
    return PostTrainingQuantizer(model, config).compress()


def traced(model, side):
    torch.manual_seed(0)
    return torch.jit.trace(model.eval().requires_grad_(False), [torch.randn(1, 3, side, side)])
