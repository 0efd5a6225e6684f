"""shequ's PROJ transformations agree with pyproj (independent build of PROJ) to a millimetre."""

import os
import pathlib
import subprocess

import pytest
from pyproj import Transformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))

# Longitude/latitude points around Chongqing (GK zone CM 108E, UTM 48N) and across China.
LOCAL = [(106.55, 29.56), (107.9, 30.2), (109.4, 28.1), (106.6, 31.0)]
CHINA = LOCAL + [(116.404, 39.915), (87.6, 43.8), (126.6, 45.75), (109.5, 18.25)]


def shequ_transform(src, dst, pts):
    text = "".join(f"{x!r} {y!r}\n" for x, y in pts)
    out = subprocess.run(
        [BIN, "transform", "--from", src, "--to", dst],
        input=text, capture_output=True, text=True, check=True,
    ).stdout
    return [tuple(map(float, line.split())) for line in out.splitlines()]


def projected(crs):
    return crs not in ("EPSG:4326", "EPSG:4490", "OGC:CRS84")


CASES = [
    ("EPSG:4326", "EPSG:4490", CHINA),
    ("EPSG:4326", "EPSG:4545", LOCAL),   # CGCS2000 3-degree Gauss-Kruger CM 108E
    ("EPSG:4490", "EPSG:4545", LOCAL),
    ("EPSG:4326", "EPSG:32648", LOCAL),  # UTM zone 48N
    ("EPSG:4490", "EPSG:4527", LOCAL),   # GK 3-degree zone 36 with zone prefix
]


@pytest.mark.parametrize("src,dst,pts", CASES, ids=[f"{a}->{b}" for a, b, _ in CASES])
def test_forward_and_inverse_match_pyproj(src, dst, pts):
    ref = Transformer.from_crs(src, dst, always_xy=True)
    got = shequ_transform(src, dst, pts)
    tol = 1e-3 if projected(dst) else 1e-8  # 1 mm (1e-8 degrees is about 1 mm)
    for (x, y), (gx, gy) in zip(pts, got):
        ex, ey = ref.transform(x, y)
        assert abs(gx - ex) < tol and abs(gy - ey) < tol, (src, dst, x, y, gx, gy, ex, ey)
    # Inverse: from the reference's projected coordinates back.
    back_pts = [ref.transform(x, y) for x, y in pts]
    back = shequ_transform(dst, src, back_pts)
    inv = Transformer.from_crs(dst, src, always_xy=True)
    tol = 1e-3 if projected(src) else 1e-8
    for (x, y), (gx, gy) in zip(back_pts, back):
        ex, ey = inv.transform(x, y)
        assert abs(gx - ex) < tol and abs(gy - ey) < tol, (dst, src, x, y, gx, gy, ex, ey)


def test_axis_order_is_never_flipped():
    # EPSG:4326 is latitude-first in its definition; shequ keeps x = longitude.
    (x, y), = shequ_transform("EPSG:4326", "EPSG:4490", [(106.55, 29.56)])
    assert abs(x - 106.55) < 1e-6 and abs(y - 29.56) < 1e-6


def test_gcj02_matches_published_value_and_leaves_hong_kong_alone():
    got = shequ_transform("EPSG:4326", "gcj02", [(116.404, 39.915), (114.1694, 22.3193)])
    assert abs(got[0][0] - 116.41024449916938) < 1e-9 and abs(got[0][1] - 39.91640428150164) < 1e-9
    assert got[1] == (114.1694, 22.3193)
