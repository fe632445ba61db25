"""Batched on-device augmentation of uint8 images (N, C, H, W): no PIL, no per-image Python."""
from __future__ import annotations


def random_crop_flip(x, pad: int, flip: bool, generator):
    """Random crop of the zero-padded batch back to its size, and a random horizontal flip.

    x: (N, C, H, W) uint8 on any device; draws come from `generator` (a CPU torch.Generator),
    so two arms with the same seed see identical crops and flips whatever their device.
    """
    import torch

    n, _, h, w = x.shape
    if pad > 0:
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x
