"""Model files made elsewhere, read as hostile input: a pickle that runs code, a safetensors
header that lies, a zip that climbs out of its folder. Each is refused with one line that says
why, and nothing it asks for happens."""

from __future__ import annotations

import json
import os
import pickle
import re
import shlex
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy

from studio.core.errors import InputError
from studio.core.registry.transfer import safe_zip
from studio.core.registry.transfer.safetensors_file import load_numpy, read_header, read_metadata
from studio.core.registry.transfer.sniff import detect
from studio.core.registry.transfer.torch_weights import torch_to_safetensors

# ---------------------------------------------------------------- pickles that run code


class _RunsShell:
    """Unpickled, this calls os.system (pickled as posix.system) with ``command``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _RunsEval:
    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        return (eval, (self.source,))


def shell_payload(canary: Path) -> bytes:
    # protocol 2, as a legacy torch.save writes: the file starts with 0x80 like a checkpoint
    return pickle.dumps(_RunsShell(f"touch {shlex.quote(str(canary))}"), protocol=2)


def test_the_payload_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    # the control: without weights_only this payload creates its canary, so the refusals
    # below are what keeps it from doing so
    canary = tmp_path / "control-canary"
    pickle.loads(shell_payload(canary))
    assert canary.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".safetensors", ".onnx"])
def test_a_pickle_that_runs_a_shell_command_is_refused_whatever_its_name(
        tmp_path: Path, suffix: str) -> None:
    canary = tmp_path / "canary"
    src = tmp_path / f"weights{suffix}"
    src.write_bytes(shell_payload(canary))
    assert detect(src) == "torch"  # by its bytes: the name says nothing
    dest = tmp_path / "out.safetensors"
    with pytest.raises(InputError) as caught:
        torch_to_safetensors(src, dest)
    message = str(caught.value)
    assert f"weights{suffix}" in message
    assert "would run code" in message and f"{os.system.__module__}.system" in message
    assert "never opens" in message
    assert not canary.exists()
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == [src.name]  # no partial file left


def test_a_zip_checkpoint_calling_eval_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    src = tmp_path / "model.pt"
    with zipfile.ZipFile(src, "w") as z:  # torch.save's layout, with a hostile data.pkl
        z.writestr("model/data.pkl", pickle.dumps(
            _RunsEval(f"open({str(canary)!r}, 'w')"), protocol=2))
        z.writestr("model/version", "3\n")
    assert detect(src) == "torch"
    with pytest.raises(InputError, match=r"would run code \(it calls eval"):
        torch_to_safetensors(src, tmp_path / "out.safetensors")
    assert not canary.exists()


def test_a_saved_state_dict_converts_with_its_values(tmp_path: Path) -> None:
    linear = torch.nn.Linear(3, 2)
    tied = torch.randn(4, 3)
    state = {**linear.state_dict(), "embed.weight": tied, "head.weight": tied,
             "steps": torch.arange(5)[1::2]}  # a view of a bigger storage, not contiguous
    src = tmp_path / "checkpoint.bin"
    # a training checkpoint: the model's weights beside the optimizer and the epoch
    torch.save({"model": state, "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}},
                "epoch": 7}, src)
    dest = tmp_path / "weights.safetensors"
    names = torch_to_safetensors(src, dest)
    assert sorted(names) == sorted(["weight", "bias", "embed.weight", "head.weight", "steps"])
    loaded = load_numpy(dest)
    np.testing.assert_array_equal(loaded["weight"], linear.weight.detach().numpy())
    np.testing.assert_array_equal(loaded["bias"], linear.bias.detach().numpy())
    np.testing.assert_array_equal(loaded["embed.weight"], tied.numpy())
    np.testing.assert_array_equal(loaded["head.weight"], tied.numpy())
    np.testing.assert_array_equal(loaded["steps"], [1, 3])
    assert read_header(dest)["weight"].spec.to_dict() == {
        "name": "weight", "datatype": "FP32", "shape": [2, 3]}


def test_a_legacy_checkpoint_with_nested_modules_gets_dotted_names(tmp_path: Path) -> None:
    src = tmp_path / "old.pth"
    torch.save({"state_dict": {"encoder": {"w": torch.ones(2, 2)}, "b": torch.zeros(3)}},
               src, _use_new_zipfile_serialization=False)
    assert detect(src) == "torch"
    dest = tmp_path / "w.safetensors"
    assert torch_to_safetensors(src, dest) == ["encoder.w", "b"]
    assert load_numpy(dest)["encoder.w"].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_a_reader_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    src = tmp_path / "big.pt"
    torch.save({"w": torch.ones(2)}, src)
    dest = tmp_path / "out.safetensors"
    with pytest.raises(InputError, match=r"big\.pt: opening it took longer than 0\.05 s"):
        torch_to_safetensors(src, dest, timeout_s=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pt"]


# ---------------------------------------------------------------- safetensors headers


def safetensors_bytes(header: dict | bytes, data: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def write(tmp_path: Path, content: bytes, name: str = "x.safetensors") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_a_good_safetensors_file_reads_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_numpy({"a": np.arange(6, dtype=np.float32).reshape(2, 3),
                "b": np.array([1, 2], dtype=np.int64), "empty": np.zeros((0, 4), np.float16)},
               str(path), metadata={"format": "np"})
    header = read_header(path)
    assert {n: t.spec.to_dict() for n, t in header.items()} == {
        "a": {"name": "a", "datatype": "FP32", "shape": [2, 3]},
        "b": {"name": "b", "datatype": "INT64", "shape": [2]},
        "empty": {"name": "empty", "datatype": "FP16", "shape": [0, 4]},
    }
    assert read_metadata(path) == {"format": "np"}
    assert load_numpy(path)["a"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_a_header_length_of_2_to_the_62_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, safetensors_bytes({}, b"", length=2**62))
    assert detect(path) == "safetensors"  # routed to the reader that explains what is wrong
    with pytest.raises(InputError, match=r"x\.safetensors: .*claims 4,611,686,018,427,387,904 "
                                         r"bytes, over the 100,000,000"):
        read_header(path)


def test_a_header_longer_than_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, safetensors_bytes(b'{"a": 1}', b"", length=5000))
    with pytest.raises(InputError, match="claims 5,000 bytes but the file holds only 8"):
        read_header(path)


def test_offsets_past_the_data_are_refused(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    path = write(tmp_path, safetensors_bytes(header, bytes(8)))
    with pytest.raises(InputError, match="tensor 'a' ends at byte 16 of a data area of 8"):
        read_header(path)


def test_overlapping_tensors_are_refused(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    path = write(tmp_path, safetensors_bytes(header, bytes(12)))
    with pytest.raises(InputError, match="tensors 'a' and 'b' overlap"):
        read_header(path)


def test_bytes_that_belong_to_no_tensor_are_refused(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    path = write(tmp_path, safetensors_bytes(header, bytes(16)))
    with pytest.raises(InputError, match="bytes 0–8 of its data belong to no tensor"):
        read_header(path)
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    path = write(tmp_path, safetensors_bytes(header, bytes(12)))
    with pytest.raises(InputError, match="its last 4 bytes belong to no tensor"):
        read_header(path)


def test_a_size_that_does_not_match_the_shape_is_refused(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    path = write(tmp_path, safetensors_bytes(header, bytes(8)))
    with pytest.raises(InputError, match=r"F32 \[3\] needs 12 bytes but its data_offsets "
                                         r"hold 8"):
        read_header(path)


def test_an_unknown_dtype_is_refused(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}
    path = write(tmp_path, safetensors_bytes(header, bytes(16)))
    with pytest.raises(InputError, match="tensor 'a' has an unknown dtype 'F128'"):
        read_header(path)


@pytest.mark.parametrize("shape", [[-1], [True], [1.0], "4"])
def test_a_shape_that_is_not_counts_is_refused(tmp_path: Path, shape: object) -> None:
    header = {"a": {"dtype": "U8", "shape": shape, "data_offsets": [0, 1]}}
    path = write(tmp_path, safetensors_bytes(header, bytes(1)))
    with pytest.raises(InputError, match="shape that is not a list of non-negative integers"):
        read_header(path)


def test_a_header_naming_a_tensor_twice_is_refused(tmp_path: Path) -> None:
    one = '{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    path = write(tmp_path, safetensors_bytes(f'{{"a": {one}, "a": {one}}}'.encode(), bytes(1)))
    with pytest.raises(InputError, match="names 'a' twice"):
        read_header(path)


@pytest.mark.parametrize("raw, expected", [
    (b'{"a": [', "not valid JSON"),
    (b'{"\xff": 1}', "not UTF-8"),
    (b"[1, 2]", "not an object"),
    (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not valid JSON"),  # too deep
    (b'{"__metadata__": {"k": 1}}', "__metadata__ must map text to text"),
])
def test_a_header_that_is_not_a_json_object_is_refused(
        tmp_path: Path, raw: bytes, expected: str) -> None:
    path = write(tmp_path, safetensors_bytes(raw, b""))
    with pytest.raises(InputError, match=expected):
        read_header(path)


# ---------------------------------------------------------------- zips


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]],
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of a duplicate name
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in members:
                z.writestr(name, data)
    return path


def refused(tmp_path: Path, archive: Path, pattern: str, **limits: int) -> None:
    """``archive`` is refused with ``pattern``, and nothing of it is left on disk."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    with pytest.raises(InputError, match=pattern):
        safe_zip.extract(archive, out / "unpacked", **limits)
    assert list(out.iterdir()) == []


def test_a_good_zip_unpacks_in_one_piece(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "b.zip", [("manifest.json", b"{}"), ("sub/", b""),
                                            ("sub/model.onnx", b"x" * 3000)])
    dest = tmp_path / "out" / "bundle"
    files = safe_zip.extract(archive, dest)
    assert files == [dest / "manifest.json", dest / "sub" / "model.onnx"]
    assert (dest / "sub" / "model.onnx").read_bytes() == b"x" * 3000
    assert [p.name for p in dest.parent.iterdir()] == ["bundle"]


def test_a_member_climbing_out_with_dot_dot_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("ok.txt", b"1"), ("sub/../../evil.txt", b"2")])
    refused(tmp_path, archive, r"member 'sub/\.\./\.\./evil\.txt' climbs out")
    assert not (tmp_path / "out" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name", ["/tmp/evil.txt", "C:/evil.txt", "c:evil.txt"])
def test_a_member_with_an_absolute_path_is_refused(tmp_path: Path, name: str) -> None:
    refused(tmp_path, make_zip(tmp_path / "a.zip", [(name, b"x")]), "has an absolute path")


def test_a_member_with_backslashes_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("..\\..\\evil.txt", b"x")])
    refused(tmp_path, archive, "has a backslash")


def test_a_symlink_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("weights.bin")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip(tmp_path / "a.zip", [(link, b"/etc/passwd")])
    refused(tmp_path, archive, "member 'weights.bin' is a symbolic link")


def test_a_zip_bomb_is_refused_before_it_is_written(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", [("zeros.bin", bytes(50 << 20))])
    assert archive.stat().st_size < 200_000
    refused(tmp_path, archive, r"would expand [\d,]+ times \(to 52,428,800 bytes\): a zip bomb")


def test_a_total_over_the_limit_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("a", os.urandom(600)), ("b", os.urandom(600))])
    refused(tmp_path, archive, "unpack to 1,200 bytes, over the 1,000 allowed", max_bytes=1000)


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [(f"f{i}", b"") for i in range(5)])
    refused(tmp_path, archive, "holds 5 members, over the 4 allowed", max_members=4)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("model.onnx", b"good"), ("model.onnx", b"evil")])
    refused(tmp_path, archive, "member 'model.onnx' has the same name as 'model.onnx'")
    archive = make_zip(tmp_path / "b.zip", [("Model.onnx", b"good"), ("model.onnx", b"evil")])
    refused(tmp_path, archive, "same name as 'Model.onnx'")


def test_a_name_that_is_a_file_and_a_folder_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("data", b"x"), ("data/w.bin", b"y")])
    refused(tmp_path, archive, "member 'data' is a file and also a folder")


def test_a_name_with_a_nul_byte_is_refused(tmp_path: Path) -> None:
    # zipfile cuts a name at NUL when it makes one: write a placeholder, then patch the bytes
    archive = make_zip(tmp_path / "a.zip", [("evil.txt#.onnx", b"x")])
    archive.write_bytes(archive.read_bytes().replace(b"evil.txt#.onnx", b"evil.txt\0.onnx"))
    refused(tmp_path, archive, "has control characters in its name")


def test_members_sharing_bytes_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "overlap.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a", os.urandom(100))
        z.writestr("b", os.urandom(100))
        z.infolist()[1].header_offset = 40  # the central directory says b starts inside a
    refused(tmp_path, archive, "member 'a' overlaps 'b'")


def test_a_member_damaged_mid_way_leaves_nothing(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("first.bin", b"1" * 100), ("second.bin", b"2" * 100)],
                       zipfile.ZIP_STORED)
    raw = bytearray(archive.read_bytes())
    raw[raw.rindex(b"2" * 100) + 50] = ord("3")  # the CRC no longer matches
    archive.write_bytes(bytes(raw))
    refused(tmp_path, archive, "damaged or unsupported zip file: Bad CRC-32 for file 'second")


# ---------------------------------------------------------------- sniffing by content


def test_sniff_tells_each_kind_by_its_bytes(tmp_path: Path) -> None:
    st = tmp_path / "weights.bin"  # safetensors under another name
    save_numpy({"w": np.ones(2, np.float32)}, str(st))
    assert detect(st) == "safetensors"

    checkpoint = tmp_path / "model.safetensors"  # a torch zip under a safetensors name
    torch.save({"w": torch.ones(2)}, checkpoint)
    assert detect(checkpoint) == "torch"

    bundle = make_zip(tmp_path / "bundle.zip", [("bundle.json", b"{}"),
                                                ("manifest.json", b"{}")])
    assert detect(bundle) == "bundle"

    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    save_numpy({"w": np.ones(2, np.float32)}, str(hf / "model-00001-of-00002.safetensors"))
    (hf / "model.safetensors.index.json").write_text("{}")
    assert detect(hf) == "hf-folder"


def test_sniff_names_what_it_found_and_what_it_accepts(tmp_path: Path) -> None:
    text = tmp_path / "model.onnx"
    text.write_text("hello, this is not a model\n")
    with pytest.raises(InputError, match=r"model\.onnx: not a model file .*text starting "
                                         r"'hello, this '.*accepts an ONNX model"):
        detect(text)
    other = make_zip(tmp_path / "pics.zip", [("cat.png", b"x")])
    with pytest.raises(InputError, match=r"a zip archive holding cat\.png, neither a Model "
                                         "Studio bundle"):
        detect(other)
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=re.escape("a folder holding notes.txt, which is no")):
        detect(folder)
    (folder / "config.json").symlink_to(folder / "notes.txt")
    (folder / "model.safetensors").symlink_to(st_elsewhere := tmp_path / "w.safetensors")
    save_numpy({"w": np.ones(2, np.float32)}, str(st_elsewhere))
    with pytest.raises(InputError, match=r"notes\.txt and 2 symbolic links, which are not "
                                         "followed"):
        detect(folder)


@pytest.mark.parametrize("shape", [[int("9" * 400)], [4294967295] * 200_000, [2**40] * 4])
def test_an_impossible_shape_is_refused_at_once(tmp_path: Path, shape: list[int]) -> None:
    import time

    path = write(tmp_path, safetensors_bytes(
        {"a": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}}, b"\0" * 4))
    started = time.process_time()
    with pytest.raises(InputError, match="refused: tensor 'a'"):
        read_header(path)
    assert time.process_time() - started < 2  # no product of 200,000 huge numbers
