#!/usr/bin/env python3
"""Test material for the tracing watermark: attacked copies of marked images,
unmarked look-alikes, and PSNR/SSIM of marked images against their originals.

  trace-attacks.py attack MARKED_DIR OUT_DIR [--seed N]
      For every MARKED_DIR/<stem>.png|.jpg write OUT_DIR/<attack>/<stem>.<ext>
      for each attack in ATTACKS, and OUT_DIR/attacks.tsv with the parameters.
  trace-attacks.py unmarked PHOTOS_DIR OUT_DIR COUNT [--seed N]
      Write COUNT distinct unmarked JPEGs OUT_DIR/u00000.jpg ... made by
      random crops, scales, qualities and greyscale of the photos.
  trace-attacks.py quality REFERENCE_DIR MARKED_DIR
      For each <stem>.png in both, print "stem<TAB>psnr_db<TAB>ssim" on
      luminance, then "mean" and "min" lines.

Run with the venv of scripts/python-env (Pillow and numpy only). Output is a
function of the inputs and --seed alone.
"""
import argparse
import hashlib
import io
import multiprocessing
import random
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

R = Image.Resampling
RESIZE_FILTERS = [R.LANCZOS, R.BICUBIC, R.BILINEAR, R.BOX, R.HAMMING]
ATTACKS = ["none", "png", "jpeg50", "jpeg75", "jpeg95", "resize50", "resize70", "resize90",
           "crop", "grey", "bright+20", "bright-20", "contrast+20", "contrast-20"]


def images_in(folder, suffixes=(".png", ".jpg")):
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in suffixes)
    if not files:
        sys.exit(f"trace-attacks: no {'/'.join(suffixes)} files in {folder}")
    return files


def jpeg_bytes(im, quality):
    # Pillow's defaults otherwise (4:2:0 chroma subsampling, baseline), as a
    # typical re-encoding site would do. JPEG holds only L and RGB.
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def attack_one(name, im, index, rng):
    """Returns (bytes, extension, parameters) of attack `name` applied to im."""
    w, h = im.size
    if name == "png":
        buf = io.BytesIO()
        im.save(buf, "PNG")
        return buf.getvalue(), "png", ""
    if name.startswith("jpeg"):
        q = int(name[4:])
        return jpeg_bytes(im, q), "jpg", f"quality={q}"
    if name.startswith("resize"):
        pct = int(name[6:])
        # Rotate through the filters per image, shifted per scale, so that
        # each image meets several filters and each scale all of them.
        f = RESIZE_FILTERS[(index + ATTACKS.index(name)) % len(RESIZE_FILTERS)]
        size = (max(1, round(w * pct / 100)), max(1, round(h * pct / 100)))
        return (jpeg_bytes(im.resize(size, f), 75), "jpg",
                f"filter={f.name} size={size[0]}x{size[1]} quality=75")
    if name == "crop":
        # 0-10 % off each side independently.
        box = (round(w * rng.uniform(0, 0.1)), round(h * rng.uniform(0, 0.1)),
               w - round(w * rng.uniform(0, 0.1)), h - round(h * rng.uniform(0, 0.1)))
        return jpeg_bytes(im.crop(box), 85), "jpg", "box=%d,%d,%d,%d quality=85" % box
    if name == "grey":
        return jpeg_bytes(im.convert("L"), 90), "jpg", "quality=90"
    kind, sign = name[:-3], name[-3]
    factor = 1.2 if sign == "+" else 0.8
    enhancer = ImageEnhance.Brightness if kind == "bright" else ImageEnhance.Contrast
    rgb = im if im.mode in ("L", "RGB") else im.convert("RGB")
    return (jpeg_bytes(enhancer(rgb).enhance(factor), 90), "jpg",
            f"{enhancer.__name__.lower()}={factor} quality=90")


def cmd_attack(marked_dir, out_dir, seed):
    out = Path(out_dir)
    rows = []
    for index, src in enumerate(images_in(marked_dir)):
        im = Image.open(src)
        im.load()
        for name in ATTACKS:
            (out / name).mkdir(parents=True, exist_ok=True)
            if name == "none":
                shutil.copyfile(src, out / name / src.name)
                rows.append((name, src.stem, ""))
                continue
            # One generator per (seed, attack, image): an image's parameters
            # do not change when other images are added or removed.
            rng = random.Random(f"{seed}/{name}/{src.stem}")
            data, ext, params = attack_one(name, im, index, rng)
            (out / name / f"{src.stem}.{ext}").write_bytes(data)
            rows.append((name, src.stem, params))
    rows.sort(key=lambda r: (ATTACKS.index(r[0]), r[1]))
    with open(out / "attacks.tsv", "w") as f:
        f.write("attack\tstem\tparams\n")
        f.writelines("\t".join(r) + "\n" for r in rows)


def unmarked_from(job):
    """Writes the unmarked images u<k>.jpg for the ks that use this photo."""
    photo, ks, out, seed = job
    im = Image.open(photo)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    im.load()
    w, h = im.size
    seen = set()  # equal bytes need equal pixels, so only this photo's can repeat
    for k in ks:
        # A generator per image: u00042.jpg is the same whatever COUNT is.
        rng = random.Random(f"{seed}/{k}")
        while True:
            cw, ch = round(w * rng.uniform(0.5, 1)), round(h * rng.uniform(0.5, 1))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            scale = rng.randint(512, 2048) / max(cw, ch)
            size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
            # resize(box=...) crops and scales in one pass; reducing_gap lets
            # Pillow shrink big sources by a fast integer reduce() first.
            small = im.resize(size, rng.choice(RESIZE_FILTERS),
                              box=(x, y, x + cw, y + ch), reducing_gap=2.0)
            if rng.random() < 0.2:
                small = small.convert("L")
            data = jpeg_bytes(small, rng.randint(60, 95))
            digest = hashlib.sha256(data).digest()
            if digest not in seen:  # "distinct": draw again on a repeat
                break
        seen.add(digest)
        (out / f"u{k:05d}.jpg").write_bytes(data)


def cmd_unmarked(photos_dir, out_dir, count, seed):
    photos = images_in(photos_dir, (".png", ".jpg", ".jpeg"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Image k comes from photo k mod n, so each photo is decoded once, and
    # the photos are shared out over all cores (resizing dominates the time).
    jobs = [(photo, range(p, count, len(photos)), out, seed)
            for p, photo in enumerate(photos) if p < count]
    with multiprocessing.Pool() as pool:
        pool.map(unmarked_from, jobs, chunksize=1)


def luma(path):
    """ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B, in float64 0..255."""
    im = Image.open(path)
    if im.mode == "L":
        return np.asarray(im, dtype=np.float64)
    rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114])


def gaussian_valid(x, taps):
    """Separable 2-D filter keeping only the 'valid' part (no padding): the
    image shrinks by len(taps)-1. Same values as skimage's reflect-padded
    filter followed by its crop of the border, without scipy."""
    n = len(taps)
    rows = sum(t * x[i:x.shape[0] - n + 1 + i] for i, t in enumerate(taps))
    return sum(t * rows[:, j:x.shape[1] - n + 1 + j] for j, t in enumerate(taps))


def ssim(a, b, sigma=1.5, radius=5, k1=0.01, k2=0.03, data_range=255.0):
    """Mean SSIM (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5,
    and population (not sample) covariances, as the paper does."""
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    mu_a, mu_b = gaussian_valid(a, taps), gaussian_valid(b, taps)
    var_a = gaussian_valid(a * a, taps) - mu_a * mu_a
    var_b = gaussian_valid(b * b, taps) - mu_b * mu_b
    cov = gaussian_valid(a * b, taps) - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / \
        ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def psnr(a, b):
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def cmd_quality(reference_dir, marked_dir):
    refs = {p.stem: p for p in Path(reference_dir).glob("*.png")}
    stems = sorted(refs.keys() & {p.stem for p in Path(marked_dir).glob("*.png")})
    if not stems:
        sys.exit(f"trace-attacks: no .png stem in both {reference_dir} and {marked_dir}")
    results = []
    for stem in stems:
        a, b = luma(refs[stem]), luma(Path(marked_dir) / f"{stem}.png")
        if a.shape != b.shape:
            sys.exit(f"trace-attacks: {stem}: sizes differ, {a.shape[::-1]} vs {b.shape[::-1]}")
        results.append((psnr(a, b), ssim(a, b)))
        print(f"{stem}\t{results[-1][0]:.3f}\t{results[-1][1]:.5f}", flush=True)
    p, s = np.array(results).T
    print(f"mean\t{p.mean():.3f}\t{s.mean():.5f}")
    print(f"min\t{p.min():.3f}\t{s.min():.5f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("attack")
    a.add_argument("marked_dir")
    a.add_argument("out_dir")
    a.add_argument("--seed", type=int, default=0)
    u = sub.add_parser("unmarked")
    u.add_argument("photos_dir")
    u.add_argument("out_dir")
    u.add_argument("count", type=int)
    u.add_argument("--seed", type=int, default=0)
    q = sub.add_parser("quality")
    q.add_argument("reference_dir")
    q.add_argument("marked_dir")
    args = ap.parse_args()
    if args.cmd == "attack":
        cmd_attack(args.marked_dir, args.out_dir, args.seed)
    elif args.cmd == "unmarked":
        cmd_unmarked(args.photos_dir, args.out_dir, args.count, args.seed)
    else:
        cmd_quality(args.reference_dir, args.marked_dir)


if __name__ == "__main__":
    main()
