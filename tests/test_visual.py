"""What a screenshot looks like: hashes, thumbnails, diffs, ignore regions and look-alike
groups, on generated images and hashes with known answers."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from screenshots.core.errors import InvalidOption
from screenshots.core.options import CaptureOptions
from screenshots.visual import groups
from screenshots.visual.diff import diff_images
from screenshots.visual.hashing import distance, open_image
from screenshots.visual.look import look_of
from screenshots.visual.regions import scaled, selectors


def page(title: str, *, color: str = "#1d4ed8", width: int = 1280, height: int = 800) -> bytes:
    """A page-like PNG: a coloured banner, a title and paragraphs of grey bars."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 120), fill=color)
    draw.text((40, 40), title, fill="white")
    for row in range(12):
        draw.rectangle((40, 180 + row * 40, 40 + 900 - (row * 37) % 300, 200 + row * 40),
                       fill="#999")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def parked(n: int) -> bytes:
    """A 'parked domain' page: the same template with a different domain name."""
    image = Image.new("RGB", (1280, 800), "#f5f5f5")
    draw = ImageDraw.Draw(image)
    draw.text((560, 300), f"domain{n}.example is for sale", fill="black")
    draw.rectangle((540, 340, 740, 380), fill="#16a34a")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_look_is_a_16_digit_hash_and_a_small_webp_thumbnail() -> None:
    look = look_of(page("Home"))
    assert look is not None and len(look.phash) == 16 and int(look.phash, 16) >= 0
    thumbnail = open_image(look.thumbnail)
    assert thumbnail.format == "WEBP" and thumbnail.size == (240, 150)  # 1280×800, scaled
    tall = look_of(page("Long", height=5000))  # a full-page shot: its first 4:3 screen
    assert tall is not None and open_image(tall.thumbnail).size == (240, 180)
    assert look_of(b"not an image") is None


def test_the_same_template_hashes_close_and_different_pages_far() -> None:
    hashes = [look_of(parked(n)) for n in range(5)]
    assert all(h is not None for h in hashes)
    first = hashes[0].phash  # type: ignore[union-attr]
    assert all(distance(first, h.phash) <= groups.DEFAULT_DISTANCE for h in hashes)  # type: ignore[union-attr]
    other = look_of(page("Home"))
    assert other is not None and distance(first, other.phash) > 10


def test_a_diff_counts_changed_pixels_leaves_out_ignored_ones_and_shows_them_in_red() -> None:
    before = Image.new("RGB", (100, 50), "white")
    after = before.copy()
    ImageDraw.Draw(after).rectangle((0, 0, 9, 9), fill="black")  # 100 pixels
    ImageDraw.Draw(after).rectangle((50, 0, 59, 9), fill="black")  # 100 more, ignored below
    found = diff_images(before, after)
    assert found.changed_pct == 4.0  # 200 of 5,000
    ignored = diff_images(before, after, [(50, 0, 10, 10)])
    assert ignored.changed_pct == round(100 * 100 / 4900, 3)
    shown = np.asarray(open_image(ignored.image_png(after, [(50, 0, 10, 10)])))
    assert tuple(shown[5, 5]) == (230, 20, 20) and tuple(shown[5, 55]) != (230, 20, 20)
    assert diff_images(before, before.copy()).changed_pct == 0.0


def test_a_page_that_grew_changed_by_what_only_one_image_has() -> None:
    short = Image.new("RGB", (100, 50), "white")
    tall = Image.new("RGB", (100, 100), "white")
    assert diff_images(short, tall).changed_pct == 50.0


def test_ignore_is_rectangles_in_css_pixels_scaled_to_the_image() -> None:
    options = CaptureOptions.from_dict({"ignore": "0,0,200,50; 10,20,30,40", "scale": 2})
    assert options.ignore == ("0,0,200,50", "10,20,30,40")
    assert scaled(options.ignore, options.scale) == [(0, 0, 400, 100), (20, 40, 60, 80)]
    assert CaptureOptions().ignore == () and CaptureOptions().changed_above == 0.1
    # Anything else is a CSS selector, measured in the page at capture time, not scaled here.
    mixed = CaptureOptions.from_dict({"ignore": [" .clock ", "10,20,30,40", "#ad > iframe"]})
    assert mixed.ignore == (".clock", "10,20,30,40", "#ad > iframe")
    assert selectors(mixed.ignore) == (".clock", "#ad > iframe")
    assert scaled(mixed.ignore, 1) == [(10, 20, 30, 40)]
    for bad, why in [("1,2,-3,4", "not an x,y,w,h rectangle"), ("0,0,0,5", "must be positive"),
                     ("  ", "empty entry"), ("a\x00b", "control characters"),
                     ("p" * 301, "longer than 300")]:
        with pytest.raises(InvalidOption, match=why):
            CaptureOptions.from_dict({"ignore": [bad]})
    with pytest.raises(InvalidOption, match="changed_above"):
        CaptureOptions.from_dict({"changed_above": "101"})


def test_options_of_a_comparison_are_not_in_the_key_nor_sent_at_their_default() -> None:
    from screenshots.core.keys import storage_key

    plain = CaptureOptions()
    compared = CaptureOptions.from_dict({"ignore": "0,0,1,1", "changed_above": 3})
    assert storage_key("http://a.example/", plain) == storage_key("http://a.example/", compared)
    assert "ignore" not in plain.to_dict() and "changed_above" not in plain.to_dict()
    assert CaptureOptions.from_dict(compared.to_dict()) == compared


def near_duplicates(seed: int, bases: int, variants: int) -> tuple[list[str], list[int]]:
    """``bases`` random hashes, each with ``variants`` copies 1 or 2 bits away; shuffled.
    Returns the hashes and each one's base number."""
    rng = random.Random(seed)
    rows: list[tuple[str, int]] = []
    for number in range(bases):
        base = rng.getrandbits(64)
        rows.append((f"{base:016x}", number))
        for _ in range(variants):
            flipped = base
            for bit in rng.sample(range(64), rng.choice((1, 2))):
                flipped ^= 1 << bit
            rows.append((f"{flipped:016x}", number))
    rng.shuffle(rows)
    return [h for h, _ in rows], [n for _, n in rows]


def test_near_duplicates_make_one_group_per_original() -> None:
    hashes, origin = near_duplicates(seed=12, bases=200, variants=20)
    found = groups.group_rows(hashes)
    assert found.count == 200
    assert set(found.size.tolist()) == {21}
    for number in range(200):
        members = [i for i, o in enumerate(origin) if o == number]
        leaders = {int(found.representative[i]) for i in members}
        assert len(leaders) == 1 and origin[leaders.pop()] == number


def test_rows_without_a_hash_are_in_no_group_and_distance_zero_is_exact_equality() -> None:
    hashes = ["00000000000000ff", None, "00000000000000fe", "", "00000000000000ff"]
    found = groups.group_rows(hashes, 0)
    assert found.representative.tolist() == [0, -1, 2, -1, 0]
    assert found.size.tolist() == [2, 0, 1, 0, 2]


def photo() -> bytes:
    """A page unlike the others: dark, with a diagonal band."""
    image = Image.new("RGB", (1280, 800), "#111")
    ImageDraw.Draw(image).polygon([(0, 800), (400, 0), (700, 0), (300, 800)], fill="#eee")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_screenshots_of_one_template_group_together() -> None:
    # Two pages of one site template (banner colours differ: the hash is of the greyscale
    # layout) are look-alikes too.
    images = [parked(n) for n in range(6)] + [page("Home"), page("Shop", color="#b91c1c")]
    images.append(photo())
    hashes = [look.phash if (look := look_of(data)) else None for data in images]
    found = groups.group_rows(hashes)
    assert found.representative.tolist()[:6] == [0] * 6
    assert found.representative.tolist()[6:] == [6, 6, 8]
    assert found.size.tolist() == [6] * 6 + [2, 2, 1]


def test_compare_rows_without_a_browser() -> None:
    """Run against run over memory storage: the very same stored image is unchanged without
    reading it, an image deleted since is new again, a URL only in the earlier run is gone."""
    from screenshots.batch.compare import Comparer, Earlier, Rules, compare_rows
    from screenshots.core.result import Result
    from screenshots.storage.memory import MemoryStorage

    storage = MemoryStorage()
    storage.put("v/a.png", page("A"), "image/png")
    storage.put("v/b1.png", page("B"), "image/png")
    storage.put("v/b2.png", page("B changed", color="#b91c1c"), "image/png")
    earlier = {
        "http://a.example/": Earlier(1, "v/a.png", None),
        "http://b.example/": Earlier(2, "v/b1.png", None),
        "http://c.example/": Earlier(3, "v/deleted.png", None),
        "http://d.example/": Earlier(4, "v/d.png", None),
    }
    rows = [
        Result(line=1, url="http://a.example/", status="ok", version_key="v/a.png"),
        Result(line=2, url="http://b.example/", status="ok", version_key="v/b2.png"),
        Result(line=3, url="http://c.example/", status="ok", version_key="v/a.png"),
        Result(line=5, url="http://e.example/", status="ok", version_key="v/a.png"),
    ]
    comparer = Comparer(storage, storage, lambda row: Rules())
    found = {r.url: r for r in compare_rows(iter(rows), earlier, comparer, workers=2)}
    assert (found["http://a.example/"].change, found["http://a.example/"].changed_pct) == (
        "unchanged", 0.0
    )
    b = found["http://b.example/"]
    assert b.change == "changed" and b.changed_pct is not None and b.changed_pct > 0.1
    assert b.diff_link == "memory://v/b2.diff.png" and storage.exists("v/b2.diff.png")
    assert found["http://c.example/"].change == "new"  # nothing left to compare with
    assert found["http://e.example/"].change == "new"
    gone = found["http://d.example/"]
    assert (gone.change, gone.status, gone.line) == ("gone", "error", 4)
