"""Layout readers: MuSe-2022, ABAW5 and generic CSV trees built in tmp_path with tiny fake media."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tfds_hume.layouts import LayoutError, detect_layout, read_layout
from tfds_hume.records import HUME_EMOTIONS

EMO = "Joy,Awe,Dread"  # not the Hume emotions: the csv reader must take them from the header
HUME = ",".join(HUME_EMOTIONS)  # muse and abaw5 require exactly these
A = "0.1,0.2,0.3,0.4,0.5,0.6,0.7"
B = "0,1,0.5,0.5,0.5,0.5,0.5"
C = "0.25,0.5,0.75,0,0,0,0"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def touch(root: Path, *names: str) -> None:
    for name in names:
        write(root / name, b"not really media")


def muse_tree(root: Path) -> Path:
    write(root / "labels.csv",
          f"File_ID,{HUME}\n[00001],{A}\n[00002],{B}\n[00003],{C}\n")
    write(root / "partition.csv",
          "Id,Partition\n[00001],train\n[00002],devel\n[00003],test\n[00004],test\n")
    touch(root, "raw/mp4/00001.mp4", "raw/wav/00001.wav", "mp4/00002.mp4", "00003.mkv",
          "raw/mp4/00004.mp4", "feats/FAU/00001.csv", "feats/FAU/00004.csv",
          "feats/VGGFace2/00001.csv")
    return root


def abaw_tree(root: Path) -> Path:
    write(root / "data_info.csv",
          f"File_ID,Split,{HUME},Age,Country\n"
          f"[00001],Train,{A},25,US\n"
          f"[00002],Val,{B},31,ZA\n"
          "[00003],Test,,,,,,,,40,US\n"
          "[00004],Train,1,1,1,1,1,1,1,,\n")
    touch(root, "train/mp4/00001.mp4", "train/wav/00001.wav", "Val/mp4/00002.mp4",
          "Test/mp4/00003.mp4", "mp4/00004.mp4", "wav/00004.wav")
    return root


def csv_tree(root: Path) -> Path:
    write(root / "labels.csv",
          f"id,split,{EMO}\nclipA,train,0.1,0.2,0.3\nclipB,val,0.4,0.5,0.6\nclipC,test,,,\n")
    touch(root, "media/clipA.MOV", "media/clipA.wav", "videos/clipB.webm", "videos/clipB.mp4",
          "videos/clipC.avi", "audio/clipC.wav", "feats/FAU/clipB.csv")
    return root


def by_id(records):
    return {r.id: r for r in records.records}


# --- the three layouts -------------------------------------------------------------------------

def test_muse_layout(tmp_path):
    ds = read_layout(muse_tree(tmp_path), "muse")
    assert ds.layout == "muse" and ds.root == tmp_path.absolute()
    assert ds.emotions == list(HUME_EMOTIONS)
    assert not ds.skipped
    clips = by_id(ds)
    assert [r.id for r in ds.records] == ["00001", "00002", "00003", "00004"]  # brackets stripped
    assert [r.split for r in ds.records] == ["train", "dev", "test", "test"]
    for r in ds.records:
        assert r.labels.dtype == np.float32 and r.labels.shape == (7,)
    np.testing.assert_array_equal(clips["00001"].labels, np.float32(A.split(",")))
    np.testing.assert_array_equal(clips["00002"].labels, np.float32(B.split(",")))
    # A labelled test clip keeps its labels; a test clip absent from labels.csv gets NaN.
    np.testing.assert_array_equal(clips["00003"].labels, np.float32(C.split(",")))
    assert np.isnan(clips["00004"].labels).all()
    assert clips["00001"].video == tmp_path / "raw/mp4/00001.mp4"
    assert clips["00001"].audio == tmp_path / "raw/wav/00001.wav"
    assert clips["00002"].video == tmp_path / "mp4/00002.mp4"
    assert clips["00003"].video == tmp_path / "00003.mkv"
    assert clips["00002"].audio is None  # extraction reads the container's audio track then
    assert clips["00001"].feature_csvs == {"FAU": tmp_path / "feats/FAU/00001.csv",
                                           "VGGFace2": tmp_path / "feats/VGGFace2/00001.csv"}
    assert clips["00004"].feature_csvs == {"FAU": tmp_path / "feats/FAU/00004.csv"}
    assert clips["00002"].feature_csvs == {}
    assert [r.id for r in ds.split("test")] == ["00003", "00004"]


def test_muse_hume_emotions_and_file_id_partition_header(tmp_path):
    emotions = ",".join(HUME_EMOTIONS)
    write(tmp_path / "labels.csv", f"File_ID,{emotions}\n[1],{','.join(['0.5'] * 7)}\n")
    write(tmp_path / "partition.csv", "File_ID,Partition\n[1],Train\n")
    touch(tmp_path, "raw/mp4/1.mp4")
    ds = read_layout(tmp_path)
    assert ds.emotions == list(HUME_EMOTIONS) and ds.records[0].labels.shape == (7,)


def test_abaw5_layout_per_split_folders(tmp_path):
    ds = read_layout(abaw_tree(tmp_path), "abaw5")
    assert ds.emotions == list(HUME_EMOTIONS)  # Age and Country are metadata
    clips = by_id(ds)
    assert [r.split for r in ds.records] == ["train", "dev", "test", "train"]
    assert clips["00001"].video == tmp_path / "train/mp4/00001.mp4"
    assert clips["00001"].audio == tmp_path / "train/wav/00001.wav"
    assert clips["00002"].video == tmp_path / "Val/mp4/00002.mp4"
    assert clips["00003"].video == tmp_path / "Test/mp4/00003.mp4"
    assert clips["00004"].video == tmp_path / "mp4/00004.mp4"
    assert clips["00004"].audio == tmp_path / "wav/00004.wav"
    assert np.isnan(clips["00003"].labels).all()
    np.testing.assert_array_equal(clips["00004"].labels, np.ones(7, np.float32))


def test_abaw5_looks_only_in_the_clips_own_split_folder(tmp_path):
    write(tmp_path / "data_info.csv", f"File_ID,Split,{HUME}\n[7],Train,{A}\n")
    touch(tmp_path, "validation/mp4/7.mp4")
    ds = read_layout(tmp_path)
    assert ds.records == [] and [s.id for s in ds.skipped] == ["7"]


def test_csv_layout(tmp_path):
    ds = read_layout(csv_tree(tmp_path), "csv")
    clips = by_id(ds)
    assert ds.layout == "csv" and ds.emotions == ["Joy", "Awe", "Dread"]
    assert [r.split for r in ds.records] == ["train", "dev", "test"]
    assert clips["clipA"].video == tmp_path / "media/clipA.MOV"  # extension in any case
    assert clips["clipA"].audio == tmp_path / "media/clipA.wav"
    assert clips["clipB"].video == tmp_path / "videos/clipB.mp4"  # .mp4 preferred over .webm
    assert clips["clipB"].audio is None
    assert clips["clipC"].audio == tmp_path / "audio/clipC.wav"
    assert clips["clipB"].feature_csvs == {"FAU": tmp_path / "feats/FAU/clipB.csv"}
    assert np.isnan(clips["clipC"].labels).all()


def test_media_folder_order_first_wins(tmp_path):
    muse_tree(tmp_path)
    touch(tmp_path, "mp4/00001.mp4", "00001.mp4")
    assert by_id(read_layout(tmp_path))["00001"].video == tmp_path / "raw/mp4/00001.mp4"


@pytest.mark.parametrize("tree", [muse_tree, abaw_tree, csv_tree])
def test_missing_video_is_skipped_not_fatal(tmp_path, tree):
    tree(tmp_path)
    first = read_layout(tmp_path).records[0]
    first.video.unlink()
    first.video.parent.joinpath(f"{first.id}.webm").mkdir()  # a folder is not media
    ds = read_layout(tmp_path)
    assert first.id not in by_id(ds)
    [skip] = ds.skipped
    assert skip.id == first.id
    assert skip.path.endswith(f"{first.id}.mp4") and str(tmp_path) in skip.path
    assert "no video file" in skip.reason and first.id in skip.reason


def test_broken_symlink_is_missing_media(tmp_path):
    muse_tree(tmp_path)
    (tmp_path / "raw/mp4/00001.mp4").unlink()
    (tmp_path / "raw/mp4/00001.mp4").symlink_to(tmp_path / "gone.mp4")
    assert [s.id for s in read_layout(tmp_path).skipped] == ["00001"]


def test_muse_as_shipped(tmp_path):
    """The real MuSe-2022 shapes: root `c2_muse_reaction/`, a labels.csv row for every clip with empty
    or NaN test labels, partition.csv read by position (header names free), the four feats folders."""
    root = tmp_path / "c2_muse_reaction"
    write(root / "labels.csv", f"File_ID,{HUME}\n[00001],{A}\n[00002],{B}\n[00003],,,,,,,\n"
                               "[00004],NaN,NaN,NaN,NaN,NaN,NaN,NaN\n")
    write(root / "partition.csv", "subject,fold,set\n[00001],1,train\n[00002],2,devel\n[00003],1,test\n"
                                  "[00004],2,test\n")
    touch(root, *(f"raw/mp4/0000{i}.mp4" for i in range(1, 5)),
          *(f"feats/{name}/00001.csv" for name in ("FAUs", "VGGFace2", "DeepSpectrum", "eGeMAPS")))
    ds = read_layout(root)
    assert ds.layout == "muse" and ds.emotions == list(HUME_EMOTIONS)
    assert [(r.id, r.split) for r in ds.records] == [("00001", "train"), ("00002", "dev"), ("00003", "test"),
                                                    ("00004", "test")]
    assert all(np.isnan(r.labels).all() for r in ds.split("test"))
    assert set(ds.records[0].feature_csvs) == {"FAUs", "VGGFace2", "DeepSpectrum", "eGeMAPS"}


@pytest.mark.parametrize("tree,name", [(muse_tree, "labels.csv"), (abaw_tree, "data_info.csv")])
def test_hume_layouts_require_the_seven_emotions(tmp_path, tree, name):
    tree(tmp_path)
    path = tmp_path / name
    lines = path.read_text().splitlines()
    at = lines[0].split(",").index("Fear")
    drop = "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != at) for line in lines) + "\n"
    write(path, drop)
    with pytest.raises(LayoutError) as e:
        read_layout(tmp_path)
    assert str(e.value).startswith(f"{path}, line 1: no emotion column 'Fear'; expected the emotions Adoration, ")
    assert e.value.line == 1 and "7 Hume-Reaction emotions" in str(e.value)
    write(path, lines[0].replace("Fear", "Fear,Joy") + "\n")
    with pytest.raises(LayoutError, match=rf"{name}, line 1: column 'Joy' is neither one of the emotions"):
        read_layout(tmp_path)
    # --emotions reads another set from the same layout.
    write(path, "\n".join([lines[0].replace("Fear", "Joy"), *lines[1:]]) + "\n")
    other = [e if e != "Fear" else "Joy" for e in HUME_EMOTIONS]
    assert read_layout(tmp_path, emotions=other).emotions == other


def test_two_folders_for_one_feature_are_an_error(tmp_path):
    muse_tree(tmp_path)
    touch(tmp_path, "feats/FAUs/00001.csv")
    with pytest.raises(LayoutError, match=r"feats: feats/FAU/ and feats/FAUs/ both give the feature 'fau'"):
        read_layout(tmp_path)


# --- detection and splits ----------------------------------------------------------------------

def test_detect_layout(tmp_path):
    assert detect_layout(muse_tree(tmp_path / "m")) == "muse"
    assert detect_layout(abaw_tree(tmp_path / "a")) == "abaw5"
    assert detect_layout(csv_tree(tmp_path / "c")) == "csv"
    both = abaw_tree(tmp_path / "b")
    write(both / "labels.csv", "id,split,Joy\n")
    assert detect_layout(both) == "abaw5"  # data_info.csv decides first
    assert read_layout(tmp_path / "c").layout == "csv"


def test_detect_layout_says_what_it_looked_for(tmp_path):
    with pytest.raises(LayoutError, match="data_info.csv.*labels.csv.*partition.csv"):
        detect_layout(tmp_path)
    write(tmp_path / "labels.csv", "File_ID,Joy\n[1],0.5\n")
    with pytest.raises(LayoutError, match=r"labels.csv, line 1: .*partition.csv.*a split column"):
        detect_layout(tmp_path)
    with pytest.raises(LayoutError, match="not found"):
        read_layout(tmp_path / "nowhere")
    with pytest.raises(LayoutError, match="unknown layout 'muse2022'"):
        read_layout(tmp_path, "muse2022")


def test_the_parent_of_a_dataset_folder_names_it(tmp_path):
    """--data-root one level too high (the folder an archive was unpacked into) names the folder to pass."""
    muse_tree(tmp_path / "c2_muse_reaction")
    (tmp_path / "notes").mkdir()
    (tmp_path / "deeper" / "c2_muse_reaction").mkdir(parents=True)  # only one level is looked at
    muse_tree(tmp_path / "deeper" / "c2_muse_reaction")
    with pytest.raises(LayoutError, match=re.escape(
            f"c2_muse_reaction/ has the muse layout: pass that folder (--data-root {tmp_path / 'c2_muse_reaction'})")):
        detect_layout(tmp_path)
    with pytest.raises(LayoutError) as e:
        detect_layout(tmp_path / "notes")
    assert "pass that folder" not in str(e.value)


@pytest.mark.parametrize("spelling,split", [
    ("train", "train"), ("Train", "train"), ("TRAINING", "train"), ("devel", "dev"), ("Devel", "dev"),
    ("dev", "dev"), ("val", "dev"), ("Val", "dev"), ("validation", "dev"), ("test", "test"),
    ("Test", "test"), (" test ", "test")])
def test_split_normalisation(tmp_path, spelling, split):
    write(tmp_path / "labels.csv", f"id,split,Joy\nx,{spelling},0.5\n")
    touch(tmp_path, "media/x.mp4")
    assert read_layout(tmp_path).records[0].split == split


def test_emotions_argument_checks_and_orders(tmp_path):
    csv_tree(tmp_path)
    ds = read_layout(tmp_path, emotions=["Dread", "Joy", "Awe"])
    assert ds.emotions == ["Dread", "Joy", "Awe"]
    np.testing.assert_array_equal(by_id(ds)["clipA"].labels, np.float32([0.3, 0.1, 0.2]))
    with pytest.raises(LayoutError, match=r"labels.csv, line 1: no emotion column 'Fear'; expected the emotions "
                                          r"Joy, Awe, Dread, Fear$"):
        read_layout(tmp_path, emotions=["Joy", "Awe", "Dread", "Fear"])
    with pytest.raises(LayoutError, match=r"labels.csv, line 1: column 'Dread' is neither one of the emotions "
                                          r"Joy, Awe nor known metadata"):
        read_layout(tmp_path, emotions=["Joy", "Awe"])
    with pytest.raises(LayoutError, match=r"no emotion column 'awe' \(found 'Awe': names are case-sensitive\)"):
        read_layout(tmp_path, emotions=["Joy", "awe", "Dread"])


def test_bom_blank_lines_and_multiline_cells_keep_line_numbers(tmp_path):
    write(tmp_path / "labels.csv",
          "\ufeffid,split,Joy,Country\n\nx,train,0.5,US\n,,,\nz,train,0.5,\"multi\nline\"\ny,train,7,US\n")
    touch(tmp_path, "media/x.mp4")
    with pytest.raises(LayoutError) as e:
        read_layout(tmp_path)
    assert e.value.line == 7 and e.value.path == tmp_path / "labels.csv"  # y's row, physical line 7
    assert str(e.value).startswith(f"{tmp_path / 'labels.csv'}, line 7: label 'Joy' is '7'")


# --- bad input: the message names the file and the line ----------------------------------------

BAD_CSV = [  # (labels.csv text of a csv-layout tree, line, message pattern)
    ("id,split,Joy,\nx,train,0.5,\n", 1, "column 4 has no name"),
    ("id,split,Joy,joy\nx,train,0.5,0.5\n", 1, "'joy' repeats column 3"),
    ("id,split\nx,train\n", 1, "no emotion columns"),
    ("id,Joy\nx,0.5\n", 1, "no split column"),
    ("split,Joy\ntrain,0.5\n", 1, "no clip ID column"),
    ("id,split,Joy\nx,train,0.5,0.1\n", 2, "4 cells, more than the 3 columns"),
    ("id,split,Joy,Awe\nx,train,0.5,0.5\ny,train,0.5\n", 3, "3 cells, fewer than the 4 columns"),
    ("id,split,Joy\nx,train,0.5\ny,dev,0.5\nx,test,\n", 4, "duplicate clip ID 'x' \\(first on line 2\\)"),
    ("id,split,Joy\n[x],train,0.5\nx,test,\n", 3, "duplicate clip ID 'x'"),
    ("id,split,Joy\n../x,train,0.5\n", 2, "contains '/'"),
    ("id,split,Joy\n/abs,train,0.5\n", 2, "contains '/'"),
    ("id,split,Joy\na\\b,train,0.5\n", 2, "contains '\\\\\\\\'"),
    ("id,split,Joy\na\x00b,train,0.5\n", 2, "contains '\\\\x00'"),
    ("id,split,Joy\nC:x,train,0.5\n", 2, "contains ':'"),
    ("id,split,Joy\n,train,0.5\n", 2, "empty clip ID"),
    ("id,split,Joy\n[],train,0.5\n", 2, "empty clip ID"),
    ("id,split,Joy\n..,train,0.5\n", 2, "not a file name"),
    ("id,split,Joy\n[.],train,0.5\n", 2, "not a file name"),
    ("id,split,Joy\nx,train,1.5\n", 2, "label 'Joy' is '1.5', outside \\[0, 1\\]"),
    ("id,split,Joy\nx,train,-0.1\n", 2, "outside \\[0, 1\\]"),
    ("id,split,Joy\nx,train,nan\n", 2, "no labels for a train clip"),  # pandas' NaN is an empty cell
    ("id,split,Joy,Awe\nx,test,0.5,NaN\n", 2, "labels \\['Awe'\\] are empty while others are given"),
    ("id,split,Joy\nx,train,inf\n", 2, "'inf', outside"),
    ("id,split,Joy\nx,train,high\n", 2, "label 'Joy' is 'high', not a number"),
    ("id,split,Joy\nx,train,\n", 2, "no labels for a train clip; only test clips may be unlabelled"),
    ("id,split,Joy\nx,val,\n", 2, "no labels for a dev clip"),
    ("id,split,Joy,Awe\nx,test,0.5,\n", 2, "labels \\['Awe'\\] are empty while others are given"),
    ("id,split,Joy\nx,train,0.5\ny,holdout,0.5\n", 3, "unknown split 'holdout'"),
    ("id,split,Joy\nx,,0.5\n", 2, "unknown split ''"),
]


@pytest.mark.parametrize("text,line,pattern", BAD_CSV)
def test_bad_labels_csv(tmp_path, text, line, pattern):
    write(tmp_path / "labels.csv", text)
    touch(tmp_path, "media/x.mp4")
    with pytest.raises(LayoutError) as e:
        read_layout(tmp_path, "csv")
    assert str(e.value).startswith(f"{tmp_path / 'labels.csv'}, line {line}: "), str(e.value)
    assert re.search(pattern, str(e.value)), str(e.value)
    assert isinstance(e.value, ValueError) and e.value.line == line


def test_bad_abaw5_row_and_metadata_is_not_checked_as_label(tmp_path):
    abaw_tree(tmp_path)
    with open(tmp_path / "data_info.csv", "a") as f:
        f.write(f"[00005],Train,{A},33\n")
    with pytest.raises(LayoutError, match=r"data_info.csv, line 6: row has 10 cells, fewer than the 11"):
        read_layout(tmp_path)
    write(tmp_path / "data_info.csv",
          f"File_ID,Split,{HUME},Age,Country\n[1],Train,{A},unknown,\n[2],Val,{B.replace('1', '2')},30,US\n")
    with pytest.raises(LayoutError, match=r"data_info.csv, line 3: label 'Amusement' is '2'"):
        read_layout(tmp_path)


def test_muse_labels_header_without_emotions(tmp_path):
    muse_tree(tmp_path)
    write(tmp_path / "labels.csv", "File_ID\n[00001]\n")
    with pytest.raises(LayoutError, match=r"labels.csv, line 1: no emotion column 'Adoration', .*'Surprise'; "
                                          r"expected the emotions Adoration, .*Surprise \(the muse layout"):
        read_layout(tmp_path)


def test_muse_partition_and_labels_disagree(tmp_path):
    muse_tree(tmp_path)
    with open(tmp_path / "partition.csv", "a") as f:
        f.write("[00009],devel\n")
    with pytest.raises(LayoutError,
                       match=r"partition.csv, line 6: dev clip '00009' has no row in labels.csv"):
        read_layout(tmp_path)
    muse_tree(tmp_path)
    with open(tmp_path / "labels.csv", "a") as f:
        f.write(f"[00008],{A}\n")
    with pytest.raises(LayoutError, match=r"labels.csv, line 5: clip '00008' is not listed in partition"):
        read_layout(tmp_path)


def test_muse_unlabelled_train_row_in_labels_csv(tmp_path):
    muse_tree(tmp_path)
    write(tmp_path / "labels.csv", f"File_ID,{HUME}\n[00001],,,,,,,\n[00002],{B}\n")
    with pytest.raises(LayoutError, match=r"labels.csv, line 2: no labels for a train clip"):
        read_layout(tmp_path)


def test_muse_partition_errors(tmp_path):
    muse_tree(tmp_path)
    write(tmp_path / "partition.csv", "Id\n[00001]\n")
    with pytest.raises(LayoutError, match=r"partition.csv, line 1: header \['Id'\] has one column"):
        read_layout(tmp_path)
    write(tmp_path / "partition.csv", "[00001],train\n[00002],devel\n")
    with pytest.raises(LayoutError, match=r"partition.csv, line 1: the first row .* looks like data"):
        read_layout(tmp_path)
    write(tmp_path / "partition.csv", "Id,Partition\n[00001],train\n[00002],Devel\n[00001],test\n")
    with pytest.raises(LayoutError, match=r"partition.csv, line 4: duplicate clip ID '00001'"):
        read_layout(tmp_path)
    (tmp_path / "partition.csv").unlink()
    with pytest.raises(LayoutError, match=r"partition.csv: file not found"):
        read_layout(tmp_path, "muse")


def test_unreadable_files(tmp_path):
    write(tmp_path / "labels.csv", "")
    with pytest.raises(LayoutError, match=r"labels.csv: file is empty"):
        detect_layout(tmp_path)
    write(tmp_path / "labels.csv", "id,split,Joy\nx,train,0.5\n".encode("utf-16"))
    with pytest.raises(LayoutError, match=r"labels.csv: not UTF-8"):
        read_layout(tmp_path, "csv")
