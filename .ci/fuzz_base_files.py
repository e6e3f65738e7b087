"""Writes small valid .moric files for the CI decoder fuzz (no training: random integer
weights and symbols through the real writer, ``tests.test_bitstream.synthetic_file``).

    python .ci/fuzz_base_files.py DIR      # prints the paths it wrote

One-region files (learned and bilinear upsampling, RGB and grey) and a three-region
file with contours, a GMN and object layers: every decoder kernel runs on them.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from moric_jax.coding import bitstream  # noqa: E402
from tests.test_bitstream import _object_masks, synthetic_file  # noqa: E402


def main() -> None:
  out = pathlib.Path(sys.argv[1])
  out.mkdir(parents=True, exist_ok=True)
  learned = bitstream.Architecture(upsampling="learned")
  files = {"one_region": synthetic_file(24, 20, seed=1)[0],
           "one_region_learned": synthetic_file(17, 13, arch=learned, seed=2)[0],
           "one_region_grey": synthetic_file(9, 11, seed=3, mode=bitstream.MODE_L8)[0],
           "three_regions": synthetic_file(16, 14, masks=_object_masks(16, 14), arch=learned,
                                           modulation="progressive_concat")[0]}
  for name, data in files.items():
    path = out / f"{name}.moric"
    path.write_bytes(data)
    print(path)


if __name__ == "__main__":
  main()
