import gzip

import numpy as np
import pytest

from chainrule.data import DataError, load, read_idx, write_idx
from chainrule.data.mnist import IDX_FILES


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-3, 0, 7], dtype=np.int8),
        np.arange(6, dtype=np.int16).reshape(3, 2) - 2,
        np.array([1, -70000], dtype=np.int32),
        np.linspace(-1, 1, 5, dtype=np.float32),
        np.linspace(-1, 1, 4).reshape(2, 2),
    ],
)
def test_round_trip(tmp_path, array, suffix):
    path = tmp_path / f"a-idx-ubyte{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # writeable


def test_header_is_the_standard_big_endian_layout(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))
    raw = path.read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert raw[4:16] == (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    assert len(raw) == 16 + 2 * 28 * 28


def test_gzip_detected_by_content(tmp_path):
    plain = tmp_path / "p-idx1-ubyte"
    write_idx(plain, np.arange(5, dtype=np.uint8))
    disguised = tmp_path / "no-suffix"
    disguised.write_bytes(gzip.compress(plain.read_bytes()))
    np.testing.assert_array_equal(read_idx(disguised), np.arange(5))


def _good_bytes() -> bytes:
    return b"\x00\x00\x08\x02" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6))


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (_good_bytes()[:-1], "truncated.*needs 6 payload bytes but only 5"),
        (_good_bytes()[:9], "truncated: the header needs 12 bytes"),
        (b"\x00\x00", "too short"),
        (_good_bytes() + b"\x00\x00", "2 trailing bytes"),
        (b"\x01\x00" + _good_bytes()[2:], "bad magic number"),
        (b"\x00\x00\x07" + _good_bytes()[3:], "unknown dtype code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
    ],
)
def test_corrupt_files_raise_data_error_naming_the_file(tmp_path, blob, message):
    for path, data in [
        (tmp_path / "bad-idx", blob),
        (tmp_path / "bad-idx.gz", gzip.compress(blob)),
    ]:
        path.write_bytes(data)
        with pytest.raises(DataError, match=message) as info:
            read_idx(path)
        assert str(path) in str(info.value)


def test_corrupt_gzip(tmp_path):
    blob = gzip.compress(_good_bytes() * 50)
    path = tmp_path / "cut-idx.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_gz_name_without_gzip_content(tmp_path):
    path = tmp_path / "fake-idx.gz"
    path.write_bytes(_good_bytes())
    with pytest.raises(DataError, match="not gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nothing-idx")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def _write_mnist(directory, n_train=60, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    parts = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for key, arr in parts.items():
        write_idx(directory / (IDX_FILES[key] + suffix), arr)
    return parts


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_a_directory(tmp_path, gz):
    parts = _write_mnist(tmp_path, gz=gz)
    ds = load("mnist", data_dir=tmp_path, standardize=False, val_fraction=0.5)
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (30, 30, 20)
    np.testing.assert_array_equal(ds.X_test, parts["test_images"].reshape(20, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_test, parts["test_labels"])
    assert np.bincount(ds.y_val).tolist() == [3] * 10  # stratified


@pytest.mark.parametrize("missing", list(IDX_FILES.values()))
def test_mnist_missing_file_is_named(tmp_path, missing):
    _write_mnist(tmp_path)
    (tmp_path / f"{missing}.gz").unlink()
    with pytest.raises(DataError, match=f"{missing}.*not found.*data_dir"):
        load("mnist", data_dir=tmp_path)


def test_mnist_inconsistent_files(tmp_path):
    _write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(59, dtype=np.uint8))
    with pytest.raises(DataError, match="60 images but .* 59 labels"):
        load("mnist", data_dir=tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((60, 2), dtype=np.uint8))
    with pytest.raises(DataError, match="should hold labels"):
        load("mnist", data_dir=tmp_path)
