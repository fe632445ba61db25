import torch

from harness.augment import random_crop_flip


def test_crop_is_a_window_of_the_zero_padded_image():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.int64).view(2, 3, 6, 6).to(torch.uint8)
    gen = torch.Generator().manual_seed(0)
    out = random_crop_flip(x, pad=2, flip=False, generator=gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    gen = torch.Generator().manual_seed(0)
    dy = torch.randint(0, 5, (2,), generator=gen)
    dx = torch.randint(0, 5, (2,), generator=gen)
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 6])


def test_flip_mirrors_about_half_the_images():
    x = torch.randint(0, 255, (400, 1, 5, 5), dtype=torch.uint8)
    out = random_crop_flip(x, pad=0, flip=True, generator=torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) and not torch.equal(o, i) for o, i in zip(out, x)])
    same = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((flipped | same).all())
    assert 150 < int(flipped.sum()) < 250


def test_same_generator_state_gives_the_same_draws():
    """Common random numbers: two arms with one seed see identical crops and flips."""
    x = torch.randint(0, 255, (16, 3, 8, 8), dtype=torch.uint8)
    a = random_crop_flip(x, 1, True, torch.Generator().manual_seed(5))
    b = random_crop_flip(x, 1, True, torch.Generator().manual_seed(5))
    c = random_crop_flip(x, 1, True, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.uint8 and a.shape == x.shape


def test_random_resized_crop_shapes_and_full_box_identity():
    from harness.augment import random_resized_crop

    x = torch.rand(8, 3, 16, 16)
    out = random_resized_crop(x, 24, torch.Generator().manual_seed(0))
    assert out.shape == (8, 3, 24, 24) and torch.isfinite(out).all()
    # area 1 and aspect 1, no flip: the crop is the whole image, resampled to the same size
    same = random_resized_crop(x, 16, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
    assert torch.allclose(same, x, atol=1e-5)


def test_random_resized_crop_draws_are_seeded():
    from harness.augment import random_resized_crop

    x = torch.rand(4, 1, 12, 12)
    a = random_resized_crop(x, 12, torch.Generator().manual_seed(3))
    b = random_resized_crop(x, 12, torch.Generator().manual_seed(3))
    c = random_resized_crop(x, 12, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_an_epochs_draws_made_at_once_are_the_per_batch_draws():
    """The training loop draws an epoch's crops in one go (one copy to the device); the images
    are the ones batch-by-batch drawing gives, so common random numbers are unchanged."""
    from harness.augment import crop_flip, crop_flip_draws, resized_crop, resized_crop_draws, random_resized_crop

    x = torch.arange(3 * 4 * 2 * 8 * 8, dtype=torch.int64).reshape(3 * 4, 2, 8, 8).to(torch.uint8)
    gen = torch.Generator().manual_seed(7)
    per_batch = [random_crop_flip(x[k * 4:(k + 1) * 4], 2, True, gen) for k in range(3)]
    gen = torch.Generator().manual_seed(7)
    epoch = torch.stack([crop_flip_draws(4, 2, True, gen) for _ in range(3)])
    assert all(torch.equal(crop_flip(x[k * 4:(k + 1) * 4], epoch[k], 2, True), per_batch[k]) for k in range(3))
    xf = x.float()
    gen = torch.Generator().manual_seed(8)
    per_batch = [random_resized_crop(xf[k * 4:(k + 1) * 4], 6, gen) for k in range(3)]
    gen = torch.Generator().manual_seed(8)
    boxes = torch.stack([resized_crop_draws(4, gen) for _ in range(3)])
    assert all(torch.equal(resized_crop(xf[k * 4:(k + 1) * 4], boxes[k], 6), per_batch[k]) for k in range(3))


def test_cropping_from_the_set_padded_once_is_the_per_image_crop_and_flip():
    """The training loop pads its whole set once and crops batches out of it: each image of the
    batch is the window of its own padded image at its draw, mirrored where drawn."""
    from harness.augment import crop_flip_draws, crop_flip_padded, pad_images, unpadded

    x = torch.randint(0, 255, (20, 3, 7, 9), dtype=torch.uint8)
    padded = pad_images(x, 2)
    assert padded.shape == (20, 3, 11, 13) and torch.equal(unpadded(padded, 2), x)
    idx = torch.tensor([17, 3, 3, 0, 19, 8])
    draws = crop_flip_draws(len(idx), 2, True, torch.Generator().manual_seed(2))
    out = crop_flip_padded(padded, idx, draws, 2, True)
    assert out.shape == (6, 3, 7, 9) and out.dtype == torch.uint8
    for k, i in enumerate(idx):
        dy, dx, flip = draws[:, k].tolist()
        window = torch.nn.functional.pad(x[i], (2, 2, 2, 2))[:, dy:dy + 7, dx:dx + 9]
        assert torch.equal(out[k], window.flip(2) if flip else window)
    assert 0 < int(draws[2].sum()) < 6  # both branches checked
    assert torch.equal(crop_flip_padded(pad_images(x, 0), idx, draws, 0, False), x[idx])


def test_resized_crops_keep_full_precision_under_bf16_autocast():
    """The training step runs under autocast; the crop's sampling grid must not drop to bf16."""
    from harness.augment import resized_crop, resized_crop_draws

    x = torch.rand(6, 3, 64, 64)
    theta = resized_crop_draws(6, torch.Generator().manual_seed(0), scale=(0.08, 0.1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = resized_crop(x, theta, 64)
    assert under.dtype == torch.float32 and torch.equal(under, resized_crop(x, theta, 64))
